"""Capture what the testbed's Grid Engine prints, as fixtures for tests/unit/test_sge_output.py.

    python tests/gridengine/capture_fixtures.py [--container jobmon-sge] [--user jobmon] [--out DIR]

Submits a handful of jobs in the testbed container (docker exec, as the unprivileged user): a job that
succeeds, one over its h_vmem (two processes, so execd kills the job), one whose single process hits the
address-space limit (MemoryError), one over h_rt, one deleted with qdel, one exiting 1, an array job, and
a job that lands in Eqw; then saves qsub -terse, qstat -xml, qstat -j and qacct -j output. Takes ~40 s.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HOG = ("import os, time\n"
       "for _ in range(2):\n"
       "    if os.fork() == 0:\n"
       "        b = bytearray(200 << 20)\n"
       "        b[::4096] = bytes(len(b) // 4096 * [1])\n"
       "        time.sleep(10)\n"
       "        os._exit(0)\n"
       "[os.wait() for _ in range(2)]\n")
SINGLE = "b = bytearray(400 << 20)\n"


class Testbed:
    def __init__(self, container: str, user: str) -> None:
        self.container = container
        self.user = user

    def run(self, command: str, stdin: str | None = None,
            check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            ["docker", "exec", "-i", "-u", self.user, "-w", f"/home/{self.user}", self.container,
             "bash", "-lc", command],
            input=stdin, capture_output=True, text=True, timeout=120)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{command}: {proc.stderr or proc.stdout}")
        return proc

    def qsub(self, args: str, stdin: str | None = None) -> str:
        return self.run(f"qsub -terse -o /dev/null -e /dev/null {args}", stdin=stdin).stdout.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--container", default="jobmon-sge")
    parser.add_argument("--user", default="jobmon")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).resolve().parents[1] / "unit" / "fixtures" / "sge")
    args = parser.parse_args(argv)
    tb = Testbed(args.container, args.user)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    def save(name: str, text: str) -> None:
        (out / name).write_text(text)
        print(f"wrote {out / name} ({len(text)} bytes)")

    tb.run("cat > hog.py", stdin=HOG)
    tb.run("cat > single.py", stdin=SINGLE)
    # A job that cannot chdir lands in Eqw as soon as it is dispatched (before the queue is full).
    eqw = tb.qsub("-N eqw -wd /nonexistent -l h_vmem=100M -b y true")
    time.sleep(3)
    jobs = {
        "ok": tb.qsub("-N ok -l h_vmem=300M,h_rt=60 -b y true"),
        "exit1": tb.qsub("-N exit1 -l h_vmem=300M -b y false"),
        "h_vmem": tb.qsub("-N h_vmem -l h_vmem=300M,h_rt=60 -b y python3 hog.py"),
        "memoryerror": tb.qsub("-N memoryerror -l h_vmem=300M -b y python3 single.py"),
        "h_rt": tb.qsub("-N h_rt -l h_vmem=300M,h_rt=0:0:3 -b y sleep 30"),
        "qdel": tb.qsub("-N qdel -l h_vmem=300M -b y sleep 60"),
    }
    save("qsub_terse.txt", jobs["ok"] + "\n")
    array = tb.qsub("-N arr -l h_vmem=300M -t 1-3 -b y true")
    save("qsub_terse_array.txt", array + "\n")
    save("qsub_error.txt", tb.run("qsub -terse -q nosuch.q -b y true", check=False).stderr)
    # More tasks than slots (some pending as a range) and a held job.
    busy = tb.qsub("-N busy -l h_vmem=100M -t 1-12 -b y sleep 20")
    held = tb.qsub("-N held -h -l h_vmem=100M -b y true")
    time.sleep(6)
    save("qstat.xml", tb.run("qstat -xml -u '*'").stdout)
    save("qstat_j_eqw.txt", tb.run(f"qstat -j {eqw}").stdout)
    tb.run(f"qdel {jobs['qdel']} {held} {eqw} {busy.split('.')[0]}")
    time.sleep(14)
    for name, job_id in jobs.items():
        save(f"qacct_{name}.txt", tb.run(f"qacct -j {job_id}").stdout)
    save("qacct_array.txt", tb.run(f"qacct -j {array.split('.')[0]}").stdout)
    save("qacct_missing.txt", tb.run("qacct -j 999999", check=False).stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
