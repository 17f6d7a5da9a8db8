"""What every Jobmon process shares: configuration, status letters, hashing, compute resources, the HTTP
requester and the route paths it calls, and the daemons' health file.

Imports only the standard library and ``requests``: this runs on cluster nodes.
"""
