"""The reaper daemon end to end: a real client killed mid-run, a real uWSGI service, the fake Slack."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
import time

import pytest
import requests

from fake_slack import FakeSlack
from harness import free_port
from harness.uwsgi import write_config
from jobmon.core.config import ClientConfig, JobmonConfig, ReaperConfig
from jobmon.core.requester import Requester
from jobmon.reaper.daemon import PassResult, Reaper
from jobmon.reaper.slack import SlackNotifier, run_message
from waiting import wait_until


def _reaper_config(slack: FakeSlack | None, **kw: float) -> ReaperConfig:
    values: dict[str, object] = {"poll_interval": 0.5, "loss_threshold": 0.0, "overdue_threshold": 0.0}
    values.update(kw)
    if slack is not None:
        values.update(slack_token="xoxb-test", slack_base_url=slack.base_url, slack_channel="#jobmon")
    return ReaperConfig(**values)  # type: ignore[arg-type]


class CountingReaper(Reaper):
    """A reaper that counts its passes (failed ones too), so a test can wait for the next few."""

    passes = 0

    def reap_once(self) -> PassResult:
        try:
            return super().reap_once()
        finally:
            self.passes += 1


def _run_status(service_url: str, run_id: int) -> str:
    return str(requests.get(f"{service_url}/api/query/workflow_run/{run_id}", timeout=30).json()["status"])


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)])
def any_service_url(request: pytest.FixtureRequest) -> str:
    name = "service_url" if request.param == "sqlite" else "service_url_mariadb"
    return str(request.getfixturevalue(name))


# any_service_url starts uWSGI through getfixturevalue, which the conftest's automatic marking cannot see.
@pytest.mark.e2e
def test_killed_client_run_is_reaped_once_and_posted_once(any_service_url, killed_client, fake_slack,
                                                          tmp_path):
    service_url = any_service_url
    workflow_id, run_id = killed_client(service_url, tmp_path / "out", 3)
    config = _reaper_config(fake_slack)
    # Two reapers at once: each move must still happen, and be posted, exactly once.
    reapers = [CountingReaper(config, Requester(service_url, retries=2), SlackNotifier(config))
               for _ in range(2)]
    stop = threading.Event()
    threads = [threading.Thread(target=r.run, args=(stop,), daemon=True) for r in reapers]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: _run_status(service_url, run_id) == "E", 6.2 + 10, "the lost run to be reaped",
                   interval=0.2)
        # Two more passes of each reaper (the first may be the one that moved the run; the second began
        # after it): nothing more may be posted.
        seen = [r.passes for r in reapers]
        wait_until(lambda: all(r.passes >= n + 2 for r, n in zip(reapers, seen, strict=True)), 10,
                   "two more passes of each reaper")
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    workflow = requests.get(f"{service_url}/api/query/workflow/{workflow_id}", timeout=30).json()
    assert workflow["status"] == "F"
    about_run = [m for m in fake_slack.messages() if f"run {run_id} " in m["text"]]
    assert len(about_run) == 1, fake_slack.messages()
    text = about_run[0]["text"]
    assert f"workflow {workflow_id} \"resume\"" in text
    assert "R (running) -> E (error)" in text
    assert "workflow R (running) -> F (failed)" in text
    assert about_run[0]["channel"] == "#jobmon"
    alive = [m for m in fake_slack.messages() if "reaper alive" in m["text"]]
    assert len(alive) == 2  # once per reaper, at its start


def _lost_run_move(run_id: int = 7) -> dict[str, object]:
    return {"workflow_id": 3, "workflow_name": "nightly", "workflow_run_id": run_id, "user": "ana",
            "old_status": "R", "new_status": "E", "workflow_old_status": "R", "workflow_new_status": "F"}


@pytest.mark.slow  # waits out the fake Slack's Retry-After of 1 s
def test_rate_limited_post_is_retried_after_retry_after(fake_slack):
    notifier = SlackNotifier(_reaper_config(fake_slack))
    fake_slack.fail(429, count=1, retry_after=1)
    started = time.monotonic()
    assert notifier.post(run_message(_lost_run_move()))
    assert time.monotonic() - started >= 0.9
    assert [c["status"] for c in fake_slack.calls] == [429, 200]
    assert len(fake_slack.messages()) == 1


def test_slack_failure_is_logged_and_dropped(fake_slack, caplog):
    notifier = SlackNotifier(_reaper_config(fake_slack))
    fake_slack.fail(500, count=1)
    with caplog.at_level(logging.ERROR):
        assert notifier.post("hello") is False
    assert "Slack post to #jobmon failed" in caplog.text
    assert notifier.post("again")
    # Slack refusing connections entirely is only logged too.
    port = free_port()
    down = SlackNotifier(ReaperConfig(slack_token="x", slack_base_url=f"http://127.0.0.1:{port}/api/",
                                      slack_timeout=2))
    assert down.post("nobody listens") is False


def test_no_token_means_notifications_off_with_one_warning(caplog):
    with caplog.at_level(logging.WARNING):
        notifier = SlackNotifier(ReaperConfig(slack_token=""))
        assert notifier.post("ignored") is False
        assert notifier.post("ignored") is False
    assert caplog.text.count("Slack notifications are off") == 1
    assert not notifier.enabled


def test_reaper_survives_the_service_being_down(fake_slack, caplog):
    url = f"http://127.0.0.1:{free_port()}"
    config = _reaper_config(fake_slack, poll_interval=0.2)
    reaper = Reaper(config, Requester(url, retries=0), SlackNotifier(config))
    stop = threading.Event()
    thread = threading.Thread(target=reaper.run, args=(stop,), daemon=True)
    with caplog.at_level(logging.ERROR):
        thread.start()
        # Two failed passes: the loop outlived the first failure and tried again.
        wait_until(lambda: caplog.text.count("reaper pass failed") >= 2, 10, "two failed reaper passes")
        assert thread.is_alive()
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    assert caplog.text.count("reaper pass failed") >= 2


def test_reaper_process_announces_itself_and_stops_on_sigterm(service_url, fake_slack, tmp_path):
    health = tmp_path / "healthy"
    config = JobmonConfig(client=ClientConfig(service_url=service_url),
                          reaper=_reaper_config(fake_slack, poll_interval=0.3))
    path = write_config(config, tmp_path / "reaper.toml")
    # write_config writes [client]/[server]/[worker]; the reaper's section is appended here.
    with path.open("a") as fh:
        fh.write(f'[reaper]\npoll_interval = 0.3\nloss_threshold = 0.0\nslack_token = "xoxb-test"\n'
                 f'slack_base_url = "{fake_slack.base_url}"\nslack_channel = "#jobmon"\n'
                 f'health_file = "{health}"\n')
    proc = subprocess.Popen([sys.executable, "-m", "jobmon.reaper.cli", "--config", str(path)],
                            stderr=subprocess.PIPE, text=True)
    try:
        def healthy() -> bool:
            assert proc.poll() is None
            return health.exists()

        wait_until(healthy, 30, "the reaper to write its health file", interval=0.1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.stderr is not None
    log = proc.stderr.read()
    assert "SIGTERM received" in log
    assert "reaper stopped" in log
    assert next(m["text"] for m in fake_slack.messages()).startswith("Jobmon reaper alive")
