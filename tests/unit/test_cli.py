"""The `jobmon` CLI against a real HTTP server (werkzeug in a thread serving every service on SQLite):
tables for people, JSON for scripts, and one line on stderr with a non-zero exit for every failure."""

from __future__ import annotations

import getpass
import io
import json
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from werkzeug.serving import make_server

from dbseed import Seeder
from harness import serve_in_thread
from jobmon import cli
from jobmon.core.config import ClientConfig, JobmonConfig, ServerConfig
from jobmon.server.app import create_app


@dataclass
class Live:
    url: str
    seeder: Seeder


@pytest.fixture
def live(service_db) -> Iterator[Live]:
    app = create_app(JobmonConfig(server=ServerConfig(db_url=service_db.read_write), client=ClientConfig()))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = serve_in_thread(server)
    try:
        yield Live(f"http://127.0.0.1:{server.server_port}", Seeder(app.extensions["jobmon"].read_write))
    finally:
        server.shutdown()
        thread.join(10)


@dataclass
class Result:
    code: int
    out: str
    err: str


def run(*argv: str, url: str | None = None) -> Result:
    out, err = io.StringIO(), io.StringIO()
    args = [*argv, "--url", url] if url else list(argv)
    code = cli.main(args, out=out, err=err)
    return Result(code, out.getvalue(), err.getvalue())


def assert_one_line_error(result: Result, code: int, text: str) -> None:
    assert result.code == code, result
    assert result.out == ""
    assert result.err.count("\n") == 1, result.err
    assert result.err.endswith("\n"), result.err
    assert result.err.startswith("jobmon: ")
    assert text in result.err, result.err
    assert "Traceback" not in result.err


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---- workflow_status -----------------------------------------------------------------------------


def test_workflow_status_table(live):
    wf = live.seeder.workflow(name="nightly", task_statuses=["G", "Q", "R", "E", "D", "D", "D", "F"],
                              user="alice")
    r = run("workflow_status", "-u", "alice", url=live.url)
    assert r.code == 0, r.err
    header, row, *rest = r.out.splitlines()
    assert rest == []
    assert header.split() == ["WF_ID", "NAME", "STATUS", "USER", "CREATED", "TASKS", "PENDING", "RUNNING",
                              "RETRYING", "DONE", "FATAL", "%DONE"]
    cells = row.split()
    assert cells[:4] == [str(wf.workflow_id), "nightly", "RUNNING", "alice"]
    # CREATED is "date time"; then totals and groups: 2 pending, 1 running, 1 retrying, 3 done, 1 fatal.
    assert cells[6:] == ["8", "2", "1", "1", "3", "1", "37.5"]
    # Columns are aligned: every header starts where its column starts.
    assert header.index("TASKS") + len("TASKS") == row.index(" 8 ") + 2


def test_workflow_status_defaults_to_own_user(live):
    live.seeder.workflow(name="mine", user=getpass.getuser())
    live.seeder.workflow(name="theirs", user="someone-else")
    r = run("workflow_status", url=live.url)
    assert "mine" in r.out
    assert "theirs" not in r.out
    r = run("workflow_status", "--all-users", url=live.url)
    assert "mine" in r.out
    assert "theirs" in r.out


def test_workflow_status_by_id_and_limit(live):
    ids = [live.seeder.workflow(name=f"w{i}", user="u").workflow_id for i in range(4)]
    r = run("workflow_status", "-w", str(ids[0]), str(ids[2]), url=live.url)
    assert r.code == 0
    assert [line.split()[0] for line in r.out.splitlines()[1:]] == [str(ids[2]), str(ids[0])]
    r = run("workflow_status", "-u", "u", "-l", "2", url=live.url)
    assert [line.split()[0] for line in r.out.splitlines()[1:]] == [str(ids[3]), str(ids[2])]


def test_workflow_status_json(live):
    wf = live.seeder.workflow(task_statuses=["D", "F"], user="alice")
    r = run("workflow_status", "-w", str(wf.workflow_id), "--json", url=live.url)
    assert r.code == 0
    [w] = json.loads(r.out)["workflows"]
    assert w["workflow_id"] == wf.workflow_id
    assert w["tasks"]["D"] == 1
    assert w["tasks"]["F"] == 1
    assert w["total"] == 2
    # Shared options may also come before the command.
    r2 = run("--json", "workflow_status", "-w", str(wf.workflow_id), url=live.url)
    assert json.loads(r2.out) == json.loads(r.out)


def test_workflow_status_unknown_id(live):
    wf = live.seeder.workflow()
    assert_one_line_error(run("workflow_status", "-w", "4242", url=live.url), 1, "workflow 4242 not found")
    r = run("workflow_status", "-w", str(wf.workflow_id), "4242", "4343", url=live.url)
    assert_one_line_error(r, 1, "workflows 4242, 4343 not found")
    r = run("workflow_status", "-w", str(wf.workflow_id), "-u", "mallory", url=live.url)
    assert_one_line_error(r, 1, f"workflow {wf.workflow_id} not found for user mallory")


def test_workflow_status_none(live):
    r = run("workflow_status", "-u", "nobody", url=live.url)
    assert (r.code, r.out) == (0, "no workflows for user nobody\n")


def test_names_cannot_break_the_table(live):
    live.seeder.workflow(name="evil\nname\x1b[31m", user="alice")
    r = run("workflow_status", "-u", "alice", url=live.url)
    assert len(r.out.splitlines()) == 2
    assert "\x1b" not in r.out


# ---- workflow_tasks ------------------------------------------------------------------------------


def test_workflow_tasks_table_and_filter(live):
    wf = live.seeder.workflow(task_statuses=["D", "F", "E", "D"], task_names=["a", "b", "c", "d"])
    r = run("workflow_tasks", "-w", str(wf.workflow_id), url=live.url)
    assert r.code == 0
    lines = r.out.splitlines()
    assert lines[0].split() == ["TASK_ID", "NAME", "STATUS", "ATTEMPTS"]
    assert [line.split() for line in lines[1:]] == [
        [str(wf.task_ids[0]), "a", "DONE", "1/3"],
        [str(wf.task_ids[1]), "b", "ERROR_FATAL", "1/3"],
        [str(wf.task_ids[2]), "c", "ERROR_RECOVERABLE", "1/3"],
        [str(wf.task_ids[3]), "d", "DONE", "1/3"],
    ]
    # Statuses by letter or by name, in any case.
    r = run("workflow_tasks", "-w", str(wf.workflow_id), "-s", "error_fatal", "E", url=live.url)
    assert [line.split()[1] for line in r.out.splitlines()[1:]] == ["b", "c"]
    r = run("workflow_tasks", "-w", str(wf.workflow_id), "-s", "Q", url=live.url)
    assert r.out == f"workflow {wf.workflow_id} has no tasks in status QUEUED\n"


def test_workflow_tasks_limit_and_all_pages(live, monkeypatch):
    wf = live.seeder.workflow(task_statuses=["D"] * 12)
    r = run("workflow_tasks", "-w", str(wf.workflow_id), "-l", "5", url=live.url)
    lines = r.out.splitlines()
    assert len(lines) == 1 + 5 + 1
    assert lines[-1] == "(showing 5 of 12 tasks; -l 0 lists all)"
    monkeypatch.setattr("jobmon.cli.workflows.TASK_PAGE", 5)  # several pages
    r = run("workflow_tasks", "-w", str(wf.workflow_id), "-l", "0", "--json", url=live.url)
    body = json.loads(r.out)
    assert body["total"] == 12
    assert [t["task_id"] for t in body["tasks"]] == wf.task_ids


def test_workflow_tasks_unknown_workflow(live):
    assert_one_line_error(run("workflow_tasks", "-w", "999", url=live.url), 1, "workflow 999 not found")


# ---- task_status ---------------------------------------------------------------------------------


def test_task_status_table(live):
    wf = live.seeder.workflow(task_statuses=["D", "G"], task_names=["align", "merge"])
    t1, t2 = wf.task_ids
    ti = live.seeder.instance(t1, wf.workflow_run_id, "Z", executor_id="5001", node_name="node-1",
                              exit_code=137, wallclock=75.0, maxrss=1536 * 1024**2)
    live.seeder.error(ti, "out of memory\nmore detail")
    live.seeder.instance(t1, wf.workflow_run_id, "D", executor_id="5002", node_name="node-2", exit_code=0,
                         wallclock=30.0, maxrss=2048)
    r = run("task_status", "-t", str(t1), str(t2), url=live.url)
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[0].split() == ["TASK_ID", "WF_ID", "NAME", "STATUS", "ATTEMPTS", "INSTANCES", "TI_ID",
                                "TI_STATUS", "EXECUTOR_ID", "NODE", "EXIT", "WALLCLOCK", "MAXRSS",
                                "LAST_ERROR"]
    assert len(lines) == 4
    assert "RESOURCE_ERROR" in lines[1]
    assert "5001" in lines[1]
    assert "1.5 GiB" in lines[1]
    assert "1m15s" in lines[1]
    assert lines[1].rstrip().endswith("out of memory")
    assert "2 KiB" in lines[2]
    assert "DONE" in lines[2]
    assert lines[3].split()[:5] == [str(t2), str(wf.workflow_id), "merge", "REGISTERED", "0/3"]


def test_task_status_shows_attempts_of_this_run_and_instances_of_all(live):
    """A resume starts the attempt count again: 1/3 beside three instances must not look like a bug."""
    wf = live.seeder.workflow(task_statuses=["D"], task_names=["resumed"])
    [task] = wf.task_ids
    for status in ("E", "E"):  # two instances of earlier runs
        ti = live.seeder.instance(task, wf.workflow_run_id, status, exit_code=2)
        live.seeder.error(ti, "exit code 2; stderr tail:\nTraceback (most recent call last):\n"
                              "  File \"x.py\", line 1\nValueError: no input for 2024")
    live.seeder.instance(task, wf.workflow_run_id, "D", exit_code=0)
    r = run("task_status", "-t", str(task), url=live.url)
    assert r.code == 0, r.err
    rows = [line.split() for line in r.out.splitlines()[1:]]
    assert [row[4:6] for row in rows] == [["1/3", "3"]] * 3
    # The line after "stderr tail:" is kept: the message, not only its heading.
    assert r.out.splitlines()[1].endswith("exit code 2; stderr tail: ValueError: no input for 2024")


def test_task_status_json(live):
    wf = live.seeder.workflow(task_statuses=["D"])
    live.seeder.instance(wf.task_ids[0], wf.workflow_run_id, "D", maxrss=10)
    r = run("task_status", "-t", str(wf.task_ids[0]), "--json", url=live.url)
    [task] = json.loads(r.out)["tasks"]
    assert task["task_id"] == wf.task_ids[0]
    assert task["instances"][0]["maxrss"] == 10


def test_task_status_unknown_id(live):
    wf = live.seeder.workflow()
    r = run("task_status", "-t", str(wf.task_ids[0]), "777777", url=live.url)
    assert_one_line_error(r, 1, "jobmon: task 777777 not found")


# ---- operator writes -----------------------------------------------------------------------------


def test_concurrency_limit(live):
    wf = live.seeder.workflow(max_concurrently_running=10)
    r = run("concurrency_limit", "-w", str(wf.workflow_id), "-m", "3", url=live.url)
    assert (r.code, r.err) == (0, "")
    assert r.out == f"workflow {wf.workflow_id}: at most 3 task(s) run at once\n"
    r = run("workflow_status", "-w", str(wf.workflow_id), "--json", url=live.url)
    assert json.loads(r.out)["workflows"][0]["max_concurrently_running"] == 3
    r = run("concurrency_limit", "-w", str(wf.workflow_id), "-m", "5", "--json", url=live.url)
    assert json.loads(r.out) == {"workflow_id": wf.workflow_id, "max_concurrently_running": 5}
    assert_one_line_error(run("concurrency_limit", "-w", "999", "-m", "3", url=live.url), 1,
                          "workflow 999 not found")


def test_workflow_reset(live):
    wf = live.seeder.workflow(status="F", task_statuses=["D", "F"], run_status="E")
    r = run("workflow_reset", "-w", str(wf.workflow_id), url=live.url)
    assert r.code == 0, r.err
    assert f"workflow {wf.workflow_id} reset" in r.out
    assert "REGISTERED" in r.out
    r = run("workflow_tasks", "-w", str(wf.workflow_id), "--json", url=live.url)
    assert {t["status"] for t in json.loads(r.out)["tasks"]} == {"G"}


def test_workflow_reset_refused_while_a_run_is_active(live):
    wf = live.seeder.workflow(run_status="R")
    r = run("workflow_reset", "-w", str(wf.workflow_id), url=live.url)
    assert_one_line_error(r, 1, f"workflow {wf.workflow_id} has an active run {wf.workflow_run_id}")


def test_update_task_status(live):
    wf = live.seeder.workflow(status="F", task_statuses=["F", "F", "D"], run_status="E")
    r = run("update_task_status", "-w", str(wf.workflow_id), "-t", str(wf.task_ids[0]), str(wf.task_ids[1]),
            "-s", "D", url=live.url)
    assert (r.code, r.err) == (0, "")
    assert r.out == f"workflow {wf.workflow_id}: 2 task(s) set to DONE\n"
    r = run("update_task_status", "-w", str(wf.workflow_id), "-t", str(wf.task_ids[2]), "-s", "G", "--json",
            url=live.url)
    assert json.loads(r.out) == {"updated": 1}
    r = run("workflow_tasks", "-w", str(wf.workflow_id), "--json", url=live.url)
    assert [t["status"] for t in json.loads(r.out)["tasks"]] == ["D", "D", "G"]
    assert_one_line_error(
        run("update_task_status", "-w", str(wf.workflow_id), "-t", "999999", "-s", "D", url=live.url),
        1, "999999")


@pytest.mark.parametrize("status", ["F", "QUEUED"])
def test_update_task_status_only_d_or_g(live, status):
    r = run("update_task_status", "-w", "1", "-t", "1", "-s", status, url=live.url)
    assert_one_line_error(r, 2, "status must be D (DONE) or G (REGISTERED)")


# ---- failures ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "text"),
    [
        (["workflow_status", "-w", "abc"],
         "argument -w/--workflow_id/--workflow-id: must be a positive integer"),
        (["workflow_status", "-w", "0"], "must be a positive integer, got '0'"),
        (["workflow_tasks"], "the following arguments are required: -w/--workflow_id/--workflow-id"),
        (["workflow_tasks", "-w", "1", "-s", "BOGUS"], "unknown task status 'BOGUS'"),
        (["task_status", "-t"], "expected at least one argument"),
        (["concurrency_limit", "-w", "1", "-m", "-5"], "must be a non-negative integer"),
        (["no_such_command"], "invalid choice: 'no_such_command'"),
        ([], "the following arguments are required: COMMAND"),
        (["workflow_status", "--timeout", "0"], "must be a positive number of seconds, got '0'"),
        (["workflow_status", "--timeout", "nan"], "must be a positive number of seconds, got 'nan'"),
        (["workflow_status", "-l", "1001"], "workflow_status: argument -l/--limit: must be at most 1000"),
    ],
)
def test_bad_arguments(argv, text):
    assert_one_line_error(run(*argv, url="http://127.0.0.1:1"), 2, text)


def test_bad_url():
    assert_one_line_error(run("workflow_status", url="127.0.0.1:8070"), 2,
                          "service URL must start with http:// or https://")


def test_unreachable_service():
    port = closed_port()
    r = run("workflow_status", "-u", "x", url=f"http://127.0.0.1:{port}")
    assert_one_line_error(r, 3, f"cannot reach the Jobmon service at http://127.0.0.1:{port}: ")
    assert "connection refused" in r.err


def test_not_the_jobmon_service(live):
    r = run("workflow_status", "-u", "x", url=f"{live.url}/elsewhere")
    assert_one_line_error(r, 1, "is " + live.url + "/elsewhere the Jobmon service?")


@pytest.fixture
def stub_server() -> Iterator[Callable[[int, str, str], str]]:
    """Factory: a server answering every request with one status, content type and body."""
    servers = []

    def start(status: int, content_type: str, body: str) -> str:
        def wsgi(environ, start_response):
            start_response(f"{status} X", [("Content-Type", content_type)])
            return [body.encode()]

        server = make_server("127.0.0.1", 0, wsgi, threaded=True)
        serve_in_thread(server)
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server in servers:
        server.shutdown()


@pytest.mark.parametrize(
    ("status", "content_type", "body", "code", "text"),
    [
        (500, "application/json", '{"error": "internal_error", "reason": "internal server error"}', 3,
         "the Jobmon service failed (HTTP 500): internal server error"),
        (503, "application/json", '{"error": "database_unavailable", "reason": "db down"}', 3,
         "the Jobmon service failed (HTTP 503): gave up after 3 attempt(s)"),
        (404, "text/html", "<h1>nginx</h1>", 1, "(is http://127.0.0.1:"),
        (200, "text/html", "<h1>hello</h1>", 3, "unexpected answer from"),
        (200, "application/json", "[1, 2]", 3, "not a JSON object"),
    ],
)
def test_server_failures_are_one_line(stub_server, status, content_type, body, code, text):
    url = stub_server(status, content_type, body)
    assert_one_line_error(run("workflow_status", "-u", "x", url=url), code, text)


def test_service_url_comes_from_the_config(live, monkeypatch, tmp_path):
    live.seeder.workflow(name="configured", user="cfg")
    config = tmp_path / "jobmon.toml"
    config.write_text(f'[client]\nservice_url = "{live.url}"\n')
    monkeypatch.setenv("JOBMON_CONFIG", str(config))
    monkeypatch.delenv("JOBMON_CLIENT_SERVICE_URL", raising=False)
    assert "configured" in run("workflow_status", "-u", "cfg").out
    # The environment overrides the file, --url overrides both.
    monkeypatch.setenv("JOBMON_CLIENT_SERVICE_URL", f"http://127.0.0.1:{closed_port()}")
    assert run("workflow_status", "-u", "cfg").code == 3
    assert "configured" in run("workflow_status", "-u", "cfg", url=live.url).out


def test_broken_config_is_one_line(monkeypatch, tmp_path):
    config = tmp_path / "jobmon.toml"
    config.write_text("[client\n")
    monkeypatch.setenv("JOBMON_CONFIG", str(config))
    assert_one_line_error(run("workflow_status"), 2, "is not valid TOML")


def test_console_script_prints_no_traceback(tmp_path):
    """The installed entry point, as a person runs it."""
    port = closed_port()
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from jobmon.cli import main; sys.exit(main())",
         "task_status", "-t", "1", "--url", f"http://127.0.0.1:{port}"],
        capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert proc.returncode == 3
    assert proc.stdout == ""
    assert proc.stderr.startswith("jobmon: cannot reach the Jobmon service")
    assert proc.stderr.count("\n") == 1


def test_against_uwsgi(service_url, service_db):
    """The same commands against the production server stack (uWSGI; marked e2e by the conftest)."""
    from jobmon.server.db import make_engine, make_sessionmaker

    seeder = Seeder(make_sessionmaker(make_engine(service_db.read_write)))
    wf = seeder.workflow(name="via-uwsgi", task_statuses=["D", "F"], user="alice", run_status="E")
    r = run("workflow_status", "-u", "alice", url=service_url)
    assert "via-uwsgi" in r.out
    r = run("task_status", "-t", str(wf.task_ids[1]), url=service_url)
    assert "ERROR_FATAL" in r.out
    r = run("concurrency_limit", "-w", str(wf.workflow_id), "-m", "2", url=service_url)
    assert r.code == 0, r.err
    assert_one_line_error(run("task_status", "-t", "98765", url=service_url), 1, "task 98765 not found")
