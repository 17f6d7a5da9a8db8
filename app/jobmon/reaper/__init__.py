"""The workflow reaper: a daemon that moves lost, stuck and finished-resumed workflow runs and lost task
instances through the service (like any client), and posts each run it moves to Slack."""
