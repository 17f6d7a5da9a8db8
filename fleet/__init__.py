"""Day-2 operations over the cluster nodes with pyinfra, on the Ansible inventory (docs/fleet.md)."""
