"""What the six entry points share (jobmon.core.cli_support) and the daemons' loop (jobmon.core.daemon)."""

from __future__ import annotations

import argparse
import io
import logging
import os
import signal
import subprocess
import sys
import threading

import pytest

from jobmon.core.cli_support import (
    int_argument,
    non_negative_int,
    positive_int,
    positive_seconds,
    print_table,
)
from jobmon.core.daemon import run_passes, stop_on_signals


@pytest.mark.parametrize(
    ("parse", "text", "message"),
    [
        (positive_int, "0", "must be a positive integer, got '0'"),
        (positive_int, "lots", "must be a positive integer, got 'lots' (expected an integer)"),
        (non_negative_int, "-1", "must be a non-negative integer, got '-1'"),
        (int_argument(1, 65535), "70000", "must be at most 65535, got '70000'"),
        (int_argument(5), "4", "must be an integer of at least 5, got '4'"),
        (positive_seconds, "0", "must be a positive number of seconds, got '0'"),
        (positive_seconds, "inf", "must be a positive number of seconds, got 'inf'"),
        (positive_seconds, "soon", "must be a positive number of seconds, got 'soon'"),
    ],
)
def test_argument_types_refuse_with_the_bound_they_broke(parse, text, message):
    with pytest.raises(argparse.ArgumentTypeError) as caught:
        parse(text)
    assert str(caught.value) == message


def test_argument_types_accept_their_range():
    assert positive_int("7") == 7
    assert non_negative_int("0") == 0
    assert int_argument(1, 65535)("65535") == 65535
    assert positive_seconds("0.5") == 0.5


def test_tables_align_numbers_right_and_keep_control_characters_out():
    out = io.StringIO()
    print_table(["NAME", "N"], [["a\nb", 5], [None, 123]], {1}, out)
    assert out.getvalue().splitlines() == ["NAME    N", "a b     5", "-     123"]


def test_every_process_logs_its_name_and_pid():
    code = ("from jobmon.core.cli_support import setup_logging; import logging; "
            "setup_logging('jobmon-test'); logging.getLogger('jobmon.x').warning('hello')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert " jobmon-test[" in done.stderr
    assert "] WARNING jobmon.x: hello" in done.stderr


def test_the_support_modules_need_only_the_standard_library():
    # They run on cluster nodes, and in every entry point before anything else is imported.
    code = ("import sys; import jobmon.core.cli_support, jobmon.core.daemon, jobmon.core.display; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'requests', 'flask', 'sqlalchemy', 'slack_sdk', 'urllib3'}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


# ---- the daemons' loop ---------------------------------------------------------------------------


class Outage(Exception):
    pass


def test_passes_survive_failures_and_touch_the_health_file_after_good_ones(tmp_path, caplog):
    health = tmp_path / "alive"
    stop = threading.Event()
    outcomes = iter([Outage("database down\nSQL: SELECT 1"), KeyError("bug"), "pass 3 moved 2", None])

    def one_pass() -> str | None:
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        if outcome is None:
            stop.set()
        return outcome

    with caplog.at_level(logging.INFO):
        run_passes(one_pass, name="jobmon-test", interval=0.01, stop=stop, log=logging.getLogger("t"),
                   health_file=str(health), known_failures={Outage: "database unavailable?"})
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == ("jobmon-test pass failed (database unavailable?), retrying in 0.01 s: "
                           "database down")
    assert caplog.records[0].exc_info is None
    assert messages[1] == "jobmon-test pass failed, retrying in 0.01 s"
    assert caplog.records[1].exc_info is not None  # a bug is logged with its traceback
    assert messages[2:] == ["pass 3 moved 2", "jobmon-test stopped"]
    assert health.exists()


def test_a_failing_pass_does_not_touch_the_health_file(tmp_path):
    health = tmp_path / "alive"
    stop = threading.Event()

    def one_pass() -> str | None:
        stop.set()
        raise Outage("down")

    run_passes(one_pass, name="t", interval=0, stop=stop, log=logging.getLogger("t"),
               health_file=str(health), known_failures={Outage: "down?"})
    assert not health.exists()


def test_sigterm_sets_the_stop_event(caplog):
    previous = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    try:
        with caplog.at_level(logging.INFO):
            stop = stop_on_signals(logging.getLogger("t"))
            os.kill(os.getpid(), signal.SIGTERM)
            assert stop.wait(5)
        assert "SIGTERM received: stopping after the current pass" in caplog.text
    finally:
        signal.signal(signal.SIGTERM, previous[0])
        signal.signal(signal.SIGINT, previous[1])
