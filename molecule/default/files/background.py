"""Start a command in the background for molecule verify, in its own session (so its whole process
group can be stopped later), with stdout and stderr to a file; print its pid and return at once.

  background.py LOGFILE -- COMMAND [ARG...]
"""

from __future__ import annotations

import subprocess
import sys


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[0], "ab") as log:
        proc = subprocess.Popen(argv[2:], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    print(proc.pid)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
