"""Jobmon: a workflow manager for Grid Engine clusters."""

__version__ = "0.1.0"
