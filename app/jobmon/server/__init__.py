"""The Jobmon service: State Manager, Query Service and Visualization server (needs the `server` extra)."""
