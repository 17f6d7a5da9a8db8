"""``jobmon-server queue list|set``: the queue table an operator keeps in line with the cluster, without SQL.

Run in-process against each backend's migrated database, and checked through the State Manager: a task
naming a queue the table lacks is refused until the queue is added, and the limits cap what it gets."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from state_calls import RESOURCES, StateApi

from harness.uwsgi import write_config
from jobmon.core.config import JobmonConfig
from jobmon.server import cli
from jobmon.server.models import Task, TaskResources


@pytest.fixture
def config_path(server_config: JobmonConfig, tmp_path: Path) -> Path:
    return write_config(server_config, tmp_path / "cli" / "jobmon.toml")


def server_cli(config_path: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(["--config", str(config_path), *args])
    out, err = capsys.readouterr()
    return code, out, err


def rows(out: str) -> list[list[str]]:
    return [line.split() for line in out.splitlines()]


def test_list_shows_the_seeded_queues(config_path, capsys):
    code, out, err = server_cli(config_path, capsys, "queue", "list")
    assert (code, err) == (0, "")
    assert rows(out) == [
        ["NAME", "MAX_CORES", "MAX_MEMORY_MB", "MAX_RUNTIME_S"],
        ["all.q", "64", "262144", "259200"],
        ["long.q", "64", "262144", "1209600"],
    ]


def test_set_changes_only_the_limits_given(config_path, capsys):
    code, out, err = server_cli(config_path, capsys, "queue", "set", "all.q", "--max-memory-mb", "131072")
    assert (code, err) == (0, "")
    assert out == "queue all.q changed: at most 64 cores, 131072 MiB (128 GiB), 259200 s (72h00m00s)\n"
    _, out, _ = server_cli(config_path, capsys, "queue", "list")
    assert rows(out)[1] == ["all.q", "64", "131072", "259200"]


def test_a_new_queue_needs_every_limit(config_path, capsys):
    code, out, err = server_cli(config_path, capsys, "queue", "set", "gpu.q", "--max-cores", "8")
    assert (code, out) == (1, "")
    assert err == ("jobmon-server: queue gpu.q does not exist; a new queue needs --max-memory-mb, "
                   "--max-runtime-s too\n")
    code, out, err = server_cli(config_path, capsys, "queue", "set", "gpu.q", "--max-cores", "8",
                                "--max-memory-mb", "65536", "--max-runtime-s", "86400")
    assert (code, err) == (0, "")
    assert out.startswith("queue gpu.q added: at most 8 cores, 65536 MiB (64 GiB), 86400 s")
    _, out, _ = server_cli(config_path, capsys, "queue", "list")
    assert ["gpu.q", "8", "65536", "86400"] in rows(out)


def test_set_without_a_limit_is_refused(config_path, capsys):
    code, out, err = server_cli(config_path, capsys, "queue", "set", "all.q")
    assert (code, out) == (1, "")
    assert "give at least one of --max-cores, --max-memory-mb, --max-runtime-s" in err


@pytest.mark.parametrize("value", ["0", "-1", "many", str(2**31)])
def test_limits_must_be_positive_integers_an_int_column_holds(config_path, capsys, value):
    with pytest.raises(SystemExit) as caught:
        cli.main(["--config", str(config_path), "queue", "set", "all.q", "--max-cores", value])
    assert caught.value.code == 2
    assert "argument --max-cores: must be" in capsys.readouterr().err


def test_binding_follows_the_queue_table(config_path, capsys, client, app):
    api = StateApi(client, app)
    bound = api.bind(1, chain=False)
    [node] = api.nodes(bound.task_template_version_id, [500])
    spec = api.task_spec(node, resources={**RESOURCES, "queue": "gpu.q", "num_cores": 16})
    body = {"workflow_run_id": bound.workflow_run_id, "tasks": [spec]}
    assert "unknown queue 'gpu.q'" in api.post(f"/workflow/{bound.workflow_id}/tasks", body, 400)["reason"]

    code, _, err = server_cli(config_path, capsys, "queue", "set", "gpu.q", "--max-cores", "8",
                              "--max-memory-mb", "65536", "--max-runtime-s", "86400")
    assert (code, err) == (0, "")
    [task] = api.post(f"/workflow/{bound.workflow_id}/tasks", body)["tasks"]
    with api.session() as session:
        resources_id = session.execute(select(Task.task_resources_id).where(Task.id == task["task_id"]))
        validated = session.get(TaskResources, resources_id.scalar_one())
        assert validated is not None
        assert (validated.queue, validated.num_cores) == ("gpu.q", 8)  # capped at the queue's limit
