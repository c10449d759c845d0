"""Run a command and report, on stderr, its own wall time and peak resident memory.

    python bench/peak.py PROGRAM [ARGS...]

Prints `wall_s SECONDS`, `peak_rss_kb KB` (wait4's ru_maxrss of that child alone, so the
figure is the command's, not this wrapper's) and `cpu_s SECONDS` (user and system time of the
command and of the processes it waited for, such as its sweep workers) after the command's own
output; exits with the command's exit code.
"""

import os
import subprocess
import sys
import time

began = time.perf_counter()
child = subprocess.Popen(sys.argv[1:])
_, status, usage = os.wait4(child.pid, 0)
wall = time.perf_counter() - began
child.returncode = os.waitstatus_to_exitcode(status)
# CPU seconds of the command and of the children it waited for (its worker processes).
cpu = usage.ru_utime + usage.ru_stime
print(f"wall_s {wall:.6f}\npeak_rss_kb {usage.ru_maxrss}\ncpu_s {cpu:.3f}", file=sys.stderr)
sys.exit(child.returncode)
