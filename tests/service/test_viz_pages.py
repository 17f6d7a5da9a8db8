"""Visualization HTML pages (/viz): they render, link workflows to tasks to instances, show usage for
people, and escape everything a user named."""

from __future__ import annotations

import re

import pytest

from dbseed import Seeder

EVIL = "<script>alert('x')</script>"


@pytest.fixture
def seeder(app) -> Seeder:
    return Seeder(app.extensions["jobmon"].read_write)


def _html(client, url: str, status: int = 200) -> str:
    resp = client.get(url)
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == "text/html"
    return resp.get_data(as_text=True)


def test_index_lists_workflows_with_counts(client, seeder):
    wf = seeder.workflow(name="nightly-build", task_statuses=["D", "D", "D", "F"], user="alice")
    html = _html(client, "/viz/")
    assert "nightly-build" in html
    assert f'href="/viz/workflow/{wf.workflow_id}"' in html
    assert "alice" in html
    assert "RUNNING" in html  # the workflow's status by name, not only its letter
    assert "75.0" in html  # percent done
    # The count of DONE tasks links to the workflow's DONE tasks.
    assert f'href="/viz/workflow/{wf.workflow_id}?status=D">3</a>' in html


def test_index_filters_by_user(client, seeder):
    seeder.workflow(name="alices", user="alice")
    seeder.workflow(name="bobs", user="bob")
    html = _html(client, "/viz/?user=bob")
    assert "bobs" in html
    assert "alices" not in html
    assert "No workflows for user nobody" in _html(client, "/viz/?user=nobody")


def test_index_redirects_without_slash(client):
    resp = client.get("/viz")
    assert resp.status_code in (301, 308)
    assert resp.headers["Location"].endswith("/viz/")


def test_pages_escape_names(client, seeder):
    wf = seeder.workflow(name=EVIL, task_statuses=["E"], task_names=[EVIL], user=EVIL)
    ti = seeder.instance(wf.task_ids[0], wf.workflow_run_id, "E", node_name=EVIL, executor_id="x")
    seeder.error(ti, EVIL)
    for url in ("/viz/", f"/viz/workflow/{wf.workflow_id}", f"/viz/task/{wf.task_ids[0]}"):
        html = _html(client, url)
        assert "<script>" not in html, url
        assert "&lt;script&gt;" in html, url
    assert "<script>" not in _html(client, f"/viz/?user={EVIL}")


def test_workflow_page_lists_tasks_and_pages(client, seeder):
    wf = seeder.workflow(name="big", task_statuses=["D"] * 5 + ["F"], task_names=[f"t{i}" for i in range(6)])
    html = _html(client, f"/viz/workflow/{wf.workflow_id}?limit=2")
    assert "Workflow" in html
    assert "big" in html
    assert f'href="/viz/task/{wf.task_ids[0]}"' in html
    assert f'href="/viz/task/{wf.task_ids[2]}"' not in html
    assert "6 matching task(s); showing 2" in html
    # Keyset paging link carries the last id of this page.
    assert f"after={wf.task_ids[1]}" in html

    html = _html(client, f"/viz/workflow/{wf.workflow_id}?status=F")
    assert "1 matching task(s)" in html
    assert "FATAL" in html
    assert f'href="/viz/task/{wf.task_ids[5]}"' in html
    assert f'href="/viz/task/{wf.task_ids[0]}"' not in html


def test_task_page_shows_instances_and_usage(client, seeder):
    wf = seeder.workflow(task_statuses=["D"], task_names=["sort"])
    task_id = wf.task_ids[0]
    seeder.resources(task_id, memory_mb=4096, runtime_s=5400)
    ti1 = seeder.instance(task_id, wf.workflow_run_id, "Z", executor_id="7001", node_name="node-a",
                          exit_code=137, wallclock=3723.0, maxrss=1536 * 1024**2)
    seeder.error(ti1, "out of memory\nsecond line")
    seeder.instance(task_id, wf.workflow_run_id, "D", executor_id="7002", node_name="node-b", exit_code=0,
                    wallclock=42.0, maxrss=512 * 1024)
    html = _html(client, f"/viz/task/{task_id}")
    assert "sort" in html
    assert "1.5 GiB" in html  # max RSS for people
    assert "512 KiB" in html
    assert "1h02m03s" in html
    assert "RESOURCE ERROR" in html
    assert "7001" in html
    assert "node-b" in html
    assert "out of memory" in html
    assert "4 GiB" in html
    assert "1h30m00s" in html
    assert f'href="/viz/workflow/{wf.workflow_id}"' in html
    # The attempt count restarts with a resume; the instances of every run are counted beside it.
    assert re.search(r"1 of 3 in the current run;\s+2 instances in all runs", html)


def test_task_page_without_instances(client, seeder):
    wf = seeder.workflow(task_statuses=["G"])
    html = _html(client, f"/viz/task/{wf.task_ids[0]}")
    assert "No instance has run yet" in html
    assert re.search(r"0 of 3 in the current run;\s+0 instances in all runs", html)


@pytest.mark.parametrize(
    "url", ["/viz/workflow/999999", "/viz/task/999999", "/viz/task/99999999999999999999"]
)
def test_unknown_ids_are_404_pages(client, seeder, url):
    seeder.workflow()
    html = _html(client, url, 404)
    assert re.search(r"(workflow|task) \d+ not found", html)


@pytest.mark.parametrize("url", ["/viz/?limit=0", "/viz/?limit=abc", "/viz/workflow/{id}?status=X",
                                 "/viz/workflow/{id}?after=-3"])
def test_bad_parameters_are_400_pages(client, seeder, url):
    wf = seeder.workflow()
    html = _html(client, url.format(id=wf.workflow_id), 400)
    assert "query parameter" in html
