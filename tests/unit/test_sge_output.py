"""Parsers of Grid Engine's output, on output captured from the testbed
(tests/gridengine/capture_fixtures.py regenerates the fixtures)."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobmon.client.executors.sge_output import (
    MIB,
    SgeOutputError,
    classify_accounting,
    expand_task_range,
    format_memory_mb,
    format_runtime,
    job_name,
    parse_category,
    parse_memory_request,
    parse_qacct,
    parse_qstat_j_errors,
    parse_qstat_xml,
    parse_qsub_terse,
    parse_size,
    parse_time_request,
)

FIXTURES = Path(__file__).parent / "fixtures" / "sge"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def only(name: str):
    records = parse_qacct(fixture(name))
    assert len(records) == 1
    return records[0]


# ---- qsub --------------------------------------------------------------------------------------------


def test_qsub_terse_single_job():
    job_id, tasks = parse_qsub_terse(fixture("qsub_terse.txt"))
    assert job_id.isdigit()
    assert tasks is None


def test_qsub_terse_array_job():
    job_id, tasks = parse_qsub_terse(fixture("qsub_terse_array.txt"))
    assert job_id.isdigit()
    assert tasks == "1-3:1"


@pytest.mark.parametrize("text", ["", "Your job 12 (\"x\") has been submitted", "abc\n"])
def test_qsub_without_a_job_id_is_an_error(text):
    with pytest.raises(SgeOutputError):
        parse_qsub_terse(text)


def test_the_qsub_error_fixture_is_what_a_refused_job_prints():
    with pytest.raises(SgeOutputError):
        parse_qsub_terse(fixture("qsub_error.txt"))
    assert "unknown queue" in fixture("qsub_error.txt")


# ---- qstat -------------------------------------------------------------------------------------------


def test_qstat_xml_running_pending_array_held_and_error_jobs():
    jobs = parse_qstat_xml(fixture("qstat.xml"))
    by_name: dict[str, list] = {}
    for job in jobs:
        by_name.setdefault(job.name, []).append(job)
    busy = by_name["busy"]
    # 12 array tasks: the running ones one by one, the pending ones as a range, expanded.
    assert sorted(job.task_id for job in busy) == list(range(1, 13))
    assert {job.executor_id for job in busy} == {f"{busy[0].job_id}.{i}" for i in range(1, 13)}
    assert {job.state for job in busy} == {"r", "qw"}
    assert all(job.queue.startswith("all.q@") for job in busy if job.state == "r")
    (held,) = by_name["held"]
    assert held.state == "hqw"
    assert held.task_id is None
    assert not held.in_error
    (eqw,) = by_name["eqw"]
    assert eqw.state == "Eqw"
    assert eqw.in_error
    assert eqw.executor_id == eqw.job_id
    assert all(job.owner == "jobmon" for job in jobs)


def test_qstat_xml_with_no_jobs():
    text = ("<?xml version='1.0'?>\n<job_info  xmlns:xsd=\"x\">\n  <queue_info>\n  </queue_info>\n"
            "  <job_info>\n  </job_info>\n</job_info>")
    assert parse_qstat_xml(text) == []


@pytest.mark.parametrize("text", ["error: commlib error: got select error", "<other/>",
                                  "<job_info><job_list><state>r</state></job_list></job_info>"])
def test_qstat_xml_garbage_is_an_error(text):
    with pytest.raises(SgeOutputError):
        parse_qstat_xml(text)


def test_task_ranges():
    assert expand_task_range("8-12:1") == [8, 9, 10, 11, 12]
    assert expand_task_range("4,6,8-12:2") == [4, 6, 8, 10, 12]
    assert expand_task_range("7") == [7]
    with pytest.raises(SgeOutputError):
        expand_task_range("3-1")
    with pytest.raises(SgeOutputError):
        expand_task_range("1-10000000")


def test_qstat_j_error_reason_of_an_eqw_job():
    reasons = parse_qstat_j_errors(fixture("qstat_j_eqw.txt"))
    assert len(reasons) == 1
    assert "can't chdir to /nonexistent" in reasons[0]


# ---- qacct -------------------------------------------------------------------------------------------


def test_qacct_of_a_job_that_succeeded():
    record = only("qacct_ok.txt")
    assert record.job_name == "ok"
    assert record.task_id is None
    assert record.executor_id == record.job_id
    assert (record.failed, record.exit_status) == (0, 0)
    assert record.hostname == "jobmon-sge"
    assert record.requests() == {"h_rt": "60", "h_vmem": "300M"}
    # ru_maxrss is KiB printed as if bytes: "4.383KB" is 4488 KiB, about 4.4 MiB.
    assert 3 * MIB < record.maxrss < 6 * MIB
    usage = record.usage()
    assert usage["exit_code"] == 0
    assert usage["maxrss"] == record.maxrss


def test_qacct_of_a_job_killed_over_h_vmem():
    record = only("qacct_h_vmem.txt")
    assert record.failed == 37
    assert "h_vmem" in record.failed_reason
    assert record.exit_status == 137
    assert record.maxvmem > 300 * MIB
    verdict = classify_accounting(record)
    assert verdict.status == "Z"
    assert "over its memory limit (h_vmem 300 MiB)" in verdict.description
    assert "exit status 137" in verdict.description


def test_qacct_of_a_job_killed_over_h_rt():
    record = only("qacct_h_rt.txt")
    assert (record.failed, record.exit_status) == (37, 137)
    verdict = classify_accounting(record)
    assert verdict.status == "Z"
    assert "over its runtime limit (h_rt 3 s)" in verdict.description


def test_qacct_of_a_deleted_job():
    record = only("qacct_qdel.txt")
    assert (record.failed, record.failed_reason, record.exit_status) == (100, "assumedly after job", 137)
    verdict = classify_accounting(record)
    # SIGKILL without reaching a limit: most likely a resource kill, possibly qdel - retried with more.
    assert verdict.status == "Z"
    assert "killed by SIGKILL" in verdict.description
    assert "possibly qdel" in verdict.description


def test_qacct_of_a_job_that_exited_1_is_unknown():
    verdict = classify_accounting(only("qacct_exit1.txt"))
    assert verdict.status == "U"
    assert "exit status 1 before its worker reported" in verdict.description


def test_qacct_of_a_single_process_over_its_address_space_limit():
    # h_vmem is each process's RLIMIT_AS too: one process gets MemoryError (exit 1), execd kills nothing.
    record = only("qacct_memoryerror.txt")
    assert (record.failed, record.exit_status) == (0, 1)
    assert classify_accounting(record).status == "U"


def test_qacct_of_a_job_that_ended_normally_without_a_report():
    verdict = classify_accounting(only("qacct_ok.txt"))
    assert verdict.status == "U"
    assert "exit status 0" in verdict.description
    assert "never reported" in verdict.description


def test_qacct_of_an_array_job_has_a_record_per_task():
    records = parse_qacct(fixture("qacct_array.txt"))
    assert sorted(r.task_id for r in records) == [1, 2, 3]
    assert {r.executor_id for r in records} == {f"{records[0].job_id}.{i}" for i in (1, 2, 3)}


def test_qacct_of_an_unknown_job_prints_no_records():
    assert parse_qacct(fixture("qacct_missing.txt")) == []


def test_qacct_failed_codes_that_mean_the_job_never_ran():
    text = fixture("qacct_ok.txt").replace("failed       0", "failed       26  : opening input/output file")
    verdict = classify_accounting(only_text(text))
    assert verdict.status == "U"
    assert "could not run" in verdict.description
    assert "opening input/output file" in verdict.description


def only_text(text: str):
    (record,) = parse_qacct(text)
    return record


def test_the_executor_s_own_limits_win_over_the_category():
    record = only("qacct_h_vmem.txt")
    verdict = classify_accounting(record, memory_limit=10_000 * MIB, runtime_limit=3600)
    # Not near the limits it asked for: a limit kill all the same (failed 37), cause not pinned down.
    assert verdict.status == "Z"
    assert "for a limit (h_rt, h_cpu or h_vmem)" in verdict.description


# ---- values and requests -----------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "value"), [
    ("0.000B", 0), ("4.383KB", 4.383 * 1024), ("419.102MB", 419.102 * MIB), ("1.5G", 1.5 * 1024**3),
    ("12", 12),
])
def test_sizes(text, value):
    assert parse_size(text) == pytest.approx(value)


def test_requests():
    assert parse_memory_request("768M") == 768 * MIB
    assert parse_memory_request("1.5G") == int(1.5 * 1024**3)
    assert parse_memory_request("lots") is None
    assert parse_time_request("3600") == 3600
    assert parse_time_request("1:00:00") == 3600
    assert parse_time_request("0:0:3") == 3
    assert parse_time_request("soon") is None
    assert parse_category("-q all.q -l h_rt=900,h_vmem=1056M -pe smp 2") == {"h_rt": "900", "h_vmem": "1056M"}
    assert parse_category("NONE") == {}


def test_formatting():
    assert format_memory_mb(656) == "656M"
    assert format_runtime(600) == "0:10:00"
    assert format_runtime(90061.2) == "25:01:02"
    assert job_name("model 3/a:b@c") == "model_3_a_b_c"
    assert job_name("3rd") == "j3rd"
    assert job_name("") == "jobmon"
