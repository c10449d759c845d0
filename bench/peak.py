"""Run a command and report, on stderr, its own wall time and peak resident memory.

    python bench/peak.py PROGRAM [ARGS...]

Prints `wall_s SECONDS` and `peak_rss_kb KB` (wait4's ru_maxrss of that child alone, so the
figure is the command's, not this wrapper's) after the command's own output; exits with the
command's exit code.
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
print(f"wall_s {wall:.6f}\npeak_rss_kb {usage.ru_maxrss}", file=sys.stderr)
sys.exit(child.returncode)
