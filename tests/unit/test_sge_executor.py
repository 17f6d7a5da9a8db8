"""The Grid Engine executor without a Grid Engine: command construction, settings, and how qstat/qacct
answers (captured from the testbed) become lost instances. tests/gridengine runs it against the real one."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from jobmon.client.executors import SGEExecutor, TaskInstanceSpec, get_executor
from jobmon.client.executors.base import ExecutorError
from jobmon.client.executors.sge import SGESettings

FIXTURES = Path(__file__).parent / "fixtures" / "sge"
WORKER = "/opt/jobmon/venv/bin/jobmon-worker"


def spec(ti: int, *, cores: int = 1, memory: int = 512, runtime: int = 600, queue: str = "all.q",
         name: str | None = None) -> TaskInstanceSpec:
    return TaskInstanceSpec(task_instance_id=ti, task_id=ti + 1000, name=name or f"model_{ti}",
                            command="true", queue=queue, num_cores=cores, memory_mb=memory, runtime_s=runtime)


def done(stdout: str = "", rc: int = 0, stderr: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.CompletedProcess([], rc, stdout, stderr)


class FakeGridEngine:
    """Stands in for SGEExecutor._run: records each command and answers from a script."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], str | None]] = []
        self.next_job = 100
        self.qstat_xml = "<job_info><queue_info/><job_info/></job_info>"
        self.qacct: dict[str, str] = {}
        self.qstat_j = ""
        self.fail_qsub = False

    def __call__(self, args, *, stdin=None, check=True):
        args = list(args)
        self.calls.append((args, stdin))
        tool = args[0]
        if tool == "qsub":
            if self.fail_qsub:
                if check:
                    from jobmon.client.executors.sge import SgeCommandError

                    raise SgeCommandError("qsub exited 1: Unable to run job")
                return done(rc=1, stderr="Unable to run job")
            self.next_job += 1
            if "-t" in args:
                last = args[args.index("-t") + 1].split("-")[1]
                return done(f"{self.next_job}.1-{last}:1\n")
            return done(f"{self.next_job}\n")
        if tool == "qstat" and "-xml" in args:
            return done(self.qstat_xml)
        if tool == "qstat" and "-j" in args:
            return done(self.qstat_j)
        if tool == "qacct":
            text = self.qacct.get(args[2])
            return done(text) if text else done(rc=1, stderr=f"error: job id {args[2]} not found")
        if tool == "qdel":
            return done("deleted\n")
        raise AssertionError(f"unexpected command {args}")

    def of(self, tool: str) -> list[list[str]]:
        return [args for args, _ in self.calls if args[0] == tool]


@pytest.fixture
def fake():
    return FakeGridEngine()


@pytest.fixture
def executor(fake, tmp_path, monkeypatch):
    monkeypatch.delenv("JOBMON_CONFIG", raising=False)
    settings = SGESettings(log_dir=str(tmp_path / "logs"), working_dir="/work", reconcile_interval=0,
                           accounting_grace=60)
    ex = SGEExecutor(settings, worker_executable=WORKER)
    ex.configure("http://127.0.0.1:8070")
    monkeypatch.setattr(ex, "_run", fake)
    ex.statuses = {}
    monkeypatch.setattr(ex, "_server_status", lambda ti: ex.statuses.get(ti, "R"))
    return ex


def option(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


# ---- building the submission --------------------------------------------------------------------------


def test_qsub_of_one_instance(executor, fake, tmp_path):
    executor_id = executor.submit(spec(7, name="model 7/x"))
    assert executor_id == "101"
    (args,) = fake.of("qsub")
    assert args[:2] == ["qsub", "-terse"]
    assert option(args, "-N") == "model_7_x"
    logs = str(next((tmp_path / "logs").iterdir()))
    assert option(args, "-o") == logs
    assert option(args, "-e") == logs
    assert option(args, "-wd") == "/work"
    assert option(args, "-q") == "all.q"
    # Memory: the task's 512 MiB plus the worker's 256; runtime as H:MM:SS.
    assert option(args, "-l") == "h_vmem=768M,h_rt=0:10:00"
    assert "-pe" not in args
    assert "-P" not in args
    assert "-w" not in args
    # The node's worker, without its own limits (Grid Engine enforces them).
    assert args[args.index("-b"):] == ["-b", "y", WORKER, "--task-instance-id", "7",
                                       "--service-url", "http://127.0.0.1:8070"]
    assert executor.active_executor_ids() == ["101"]
    assert executor.task_instance_ids() == {7}


def test_cores_memory_per_slot_project_and_site_options(fake, tmp_path, monkeypatch):
    settings = SGESettings(log_dir="none", parallel_environment="multi", project="burden",
                           memory_resources=("h_vmem", "mem_free"), worker_memory_mb=0, verify=True,
                           extra_qsub_args=("-l", "highmem=true"), queue="long.q", runtime_resource="",
                           worker_limits=True, env=(("PYTHONUNBUFFERED", "1"),))
    ex = SGEExecutor(settings, worker_executable=WORKER, worker_heartbeat_interval=15)
    ex.configure("http://svc:8070")
    monkeypatch.setattr(ex, "_run", fake)
    monkeypatch.setenv("JOBMON_CLIENT_REQUEST_RETRIES", "3")
    monkeypatch.setenv("JOBMON_SERVER_DB_URL", "mysql://secret")
    ex.submit(spec(1, cores=4, memory=4000, runtime=60, queue=""))
    (args,) = fake.of("qsub")
    assert option(args, "-q") == "long.q"
    assert args[args.index("-pe"):args.index("-pe") + 3] == ["-pe", "multi", "4"]
    assert option(args, "-l") == "h_vmem=1000M,mem_free=1000M"
    assert option(args, "-P") == "burden"
    assert option(args, "-o") == "/dev/null"
    assert args[args.index("-w") + 1] == "e"
    assert "highmem=true" in args
    env = option(args, "-v")
    assert "JOBMON_CLIENT_REQUEST_RETRIES=3" in env
    assert "PYTHONUNBUFFERED=1" in env
    assert "SERVER" not in env
    tail = args[args.index("-b") + 2:]
    assert tail[-6:] == ["--memory-limit-mb", "4000", "--runtime-limit-s", "60", "--heartbeat-interval", "15"]


def test_qsub_failure_gives_no_executor_id(executor, fake):
    fake.fail_qsub = True
    assert executor.submit(spec(1)) is None
    assert executor.active_executor_ids() == []


def test_array_submission_groups_instances_with_the_same_resources(executor, fake, tmp_path):
    specs = [spec(i) for i in range(1, 6)] + [spec(6, memory=2048), spec(7, memory=2048), spec(8, cores=2)]
    executor.prepare_submit(specs)
    ids = [executor.submit(s) for s in specs]
    qsubs = fake.of("qsub")
    arrays = [args for args in qsubs if "-t" in args]
    assert [option(a, "-t") for a in arrays] == ["1-5", "1-2"]
    assert ids[:5] == [f"{ids[0].split('.')[0]}.{i}" for i in range(1, 6)]
    assert ids[5:7] == [f"{ids[5].split('.')[0]}.{i}" for i in (1, 2)]
    assert "." not in ids[7]  # alone with its resources: a single job
    assert len(qsubs) == 3
    assert option(arrays[0], "-N") == "model"  # the names' common prefix
    assert executor.task_instance_ids() == set(range(1, 9))


def test_the_array_script_maps_task_ids_to_task_instances(executor, tmp_path):
    script = executor.array_script([spec(41), spec(42), spec(43)])
    path = tmp_path / "array.sh"
    # Run it with a stand-in worker that prints its arguments.
    path.write_text(script.replace(WORKER, "echo"))
    for task, ti in ((1, 41), (3, 43)):
        out = subprocess.run(["sh", str(path)], env={"SGE_TASK_ID": str(task), "PATH": "/usr/bin:/bin"},
                             capture_output=True, text=True, check=True).stdout
        assert out.split() == ["--task-instance-id", str(ti), "--service-url", "http://127.0.0.1:8070"]
    bad = subprocess.run(["sh", str(path)], env={"SGE_TASK_ID": "9", "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True)
    assert bad.returncode == 2
    assert "no task instance for array task 9" in bad.stderr


def test_parallel_mode_submits_one_job_each(fake, tmp_path, monkeypatch):
    ex = SGEExecutor(SGESettings(log_dir="none", submit_mode="parallel", submit_parallelism=3),
                     worker_executable=WORKER)
    ex.configure("http://svc:8070")
    monkeypatch.setattr(ex, "_run", fake)
    specs = [spec(i) for i in range(1, 8)]
    ex.prepare_submit(specs)
    ids = [ex.submit(s) for s in specs]
    assert len(fake.of("qsub")) == 7
    assert sorted(ids) == [str(n) for n in range(101, 108)]
    assert not any("-t" in args for args in fake.of("qsub"))


def test_serial_mode_submits_in_submit(fake, monkeypatch):
    ex = SGEExecutor(SGESettings(log_dir="none", submit_mode="serial"), worker_executable=WORKER)
    ex.configure("http://svc:8070")
    monkeypatch.setattr(ex, "_run", fake)
    ex.prepare_submit([spec(1), spec(2)])
    assert fake.of("qsub") == []
    assert ex.submit(spec(1)) == "101"


# ---- reconcile ---------------------------------------------------------------------------------------


def qacct_for(job_id: str, fixture: str) -> str:
    text = (FIXTURES / fixture).read_text()
    import re

    return re.sub(r"(?m)^jobnumber\s+\d+", f"jobnumber    {job_id}", text)


def test_a_job_killed_over_h_vmem_is_reported_z_with_qacct_and_its_stderr(executor, fake, tmp_path):
    job = executor.submit(spec(5, memory=44))  # h_vmem 300M, as in the fixture
    stderr = tmp_path / "logs"
    err_file = next(stderr.iterdir()) / f"model_5.e{job}"
    err_file.write_text("jobmon-worker[1] INFO: running\n")
    fake.qacct[job] = qacct_for(job, "qacct_h_vmem.txt")
    (lost,) = executor.reconcile()
    assert lost.task_instance_id == 5
    assert lost.status == "Z"
    assert "over its memory limit (h_vmem 300 MiB)" in lost.description
    assert "jobmon-worker[1] INFO: running" in lost.description
    assert executor.active_executor_ids() == []
    assert executor.reconcile() == []


def test_a_job_whose_worker_reported_is_forgotten_without_qacct(executor, fake):
    job = executor.submit(spec(5))
    executor.statuses[5] = "D"
    assert executor.reconcile() == []
    assert fake.of("qacct") == []
    assert job not in executor.active_executor_ids()


def test_a_running_job_is_left_alone(executor, fake):
    job = executor.submit(spec(5))
    fake.qstat_xml = (f"<job_info><queue_info><job_list state='running'><JB_job_number>{job}</JB_job_number>"
                      "<JB_name>model_5</JB_name><state>r</state></job_list></queue_info></job_info>")
    assert executor.reconcile() == []
    assert executor.active_executor_ids() == [job]


def test_accounting_not_written_yet_waits_then_gives_up(executor, fake, monkeypatch):
    job = executor.submit(spec(5))
    assert executor.reconcile() == []          # vanished, no qacct record yet: look again later
    assert executor.active_executor_ids() == [job]
    executor._jobs[job].vanished -= 61          # past accounting_grace
    (lost,) = executor.reconcile()
    assert lost.status == "U"
    assert "without an accounting record" in lost.description


def test_an_eqw_job_is_deleted_and_reported_u_with_the_reason(executor, fake):
    job = executor.submit(spec(9))
    fake.qstat_xml = (f"<job_info><job_info><job_list state='pending'><JB_job_number>{job}</JB_job_number>"
                      "<JB_name>model_9</JB_name><state>Eqw</state></job_list></job_info></job_info>")
    fake.qstat_j = (FIXTURES / "qstat_j_eqw.txt").read_text()
    (lost,) = executor.reconcile()
    assert lost.status == "U"
    assert lost.task_instance_id == 9
    assert "error state (Eqw)" in lost.description
    assert "can't chdir to /nonexistent" in lost.description
    assert fake.of("qdel") == [["qdel", job]]
    assert executor.active_executor_ids() == []


def test_qstat_failing_reports_nothing_lost(executor, fake, monkeypatch):
    executor.submit(spec(5))
    fake.qstat_xml = "error: commlib error: got select error (Connection refused)"
    assert executor.reconcile() == []
    assert len(executor.active_executor_ids()) == 1


def test_reconcile_is_rate_limited(executor, fake):
    executor.settings = SGESettings(log_dir="none", reconcile_interval=3600)
    executor.submit(spec(5))
    executor.reconcile()
    executor.reconcile()
    assert len([a for a in fake.of("qstat") if "-xml" in a]) == 1


def test_terminate_and_stop_use_qdel(executor, fake):
    a = executor.submit(spec(1))
    b = executor.submit(spec(2))
    executor.terminate([a])
    assert fake.of("qdel") == [["qdel", a]]
    assert executor.active_executor_ids() == [b]
    fake.qstat_xml = (f"<job_info><queue_info><job_list><JB_job_number>{b}</JB_job_number>"
                      "<state>r</state></job_list></queue_info></job_info>")
    executor.stop()
    assert fake.of("qdel")[-1] == ["qdel", b]
    assert executor.active_executor_ids() == []


def test_usage_reads_qacct(executor, fake):
    fake.qacct["55"] = qacct_for("55", "qacct_ok.txt")
    usage = executor.usage("55")
    assert usage is not None
    assert usage["exit_code"] == 0
    assert usage["maxrss"] > 0
    assert executor.usage("56") is None


# ---- settings ----------------------------------------------------------------------------------------


def test_settings_from_file_environment_and_arguments(tmp_path):
    path = tmp_path / "sge.toml"
    path.write_text('[sge]\nqueue = "all.q"\nmemory_resources = ["h_vmem", "mem_free"]\nverify = true\n'
                    'env = { A = "1" }\nsubmit_parallelism = 8\n')
    settings = SGESettings.load(path, environ={"JOBMON_SGE_PROJECT": "burden", "JOBMON_SGE_VERIFY": "no",
                                               "JOBMON_SGE_EXTRA_QSUB_ARGS": "-l highmem=true"},
                                submit_mode="parallel")
    assert settings.queue == "all.q"
    assert settings.memory_resources == ("h_vmem", "mem_free")
    assert settings.verify is False
    assert settings.project == "burden"
    assert settings.extra_qsub_args == ("-l", "highmem=true")
    assert settings.env == (("A", "1"),)
    assert settings.submit_parallelism == 8
    assert settings.submit_mode == "parallel"


def test_settings_reject_unknown_keys_and_bad_values(tmp_path):
    path = tmp_path / "sge.toml"
    path.write_text("[sge]\nqeue = 'all.q'\n")
    with pytest.raises(ExecutorError, match="unknown Grid Engine setting"):
        SGESettings.load(path, environ={})
    with pytest.raises(ExecutorError, match="submit_parallelism"):
        SGESettings.load(None, environ={"JOBMON_SGE_SUBMIT_PARALLELISM": "many"})
    with pytest.raises(ValueError, match="submit_mode"):
        SGESettings(submit_mode="bulk")


def test_sge_is_a_registered_executor(monkeypatch, tmp_path):
    monkeypatch.setenv("JOBMON_SGE_CONFIG", str(tmp_path / "none.toml"))
    (tmp_path / "none.toml").write_text("")
    assert isinstance(get_executor("sge"), SGEExecutor)


def test_start_fails_clearly_without_qsub(monkeypatch):
    ex = SGEExecutor(SGESettings(bin_dir="/nonexistent"), worker_executable=WORKER)
    with pytest.raises(ExecutorError, match="qsub not found"):
        ex.start()
