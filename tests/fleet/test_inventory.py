"""fleet.inventory: Ansible's host list and connection variables become pyinfra host specs."""

from __future__ import annotations

from fleet.inventory import group_hosts, to_node

LISTING = {
    "all": {"children": ["grid_engine_nodes", "ungrouped"]},
    "grid_engine_nodes": {"hosts": ["a"], "children": ["rack2"]},
    "rack2": {"hosts": ["b", "a"]},
}


def test_group_hosts_takes_child_groups_once_each() -> None:
    assert group_hosts(LISTING, "grid_engine_nodes") == ["a", "b"]
    assert group_hosts(LISTING, "nothing") == []


def test_docker_connection_becomes_the_docker_connector() -> None:
    node = to_node("jobmon-sge", {"ansible_connection": "community.docker.docker", "ansible_host": "c1"})
    assert node.pyinfra_name == "@docker/c1"


def test_ssh_variables_are_carried_over() -> None:
    node = to_node("n1", {"ansible_host": "10.0.0.5", "ansible_user": "ops", "ansible_port": "2222",
                          "ansible_become": True})
    assert node.pyinfra_name == "n1"
    assert node.data["ssh_hostname"] == "10.0.0.5"
    assert node.data["ssh_user"] == "ops"
    assert node.data["ssh_port"] == 2222
    assert node.data["_sudo"] is True


def test_templated_role_settings_fall_back_to_the_role_defaults() -> None:
    node = to_node("n1", {"grid_engine_client_venv": "{{ grid_engine_client_prefix }}/venv",
                          "grid_engine_client_config_path": "/etc/site/jobmon.toml"})
    assert node.setting("grid_engine_client_venv") == "/opt/jobmon/venv"
    assert node.setting("grid_engine_client_config_path") == "/etc/site/jobmon.toml"
