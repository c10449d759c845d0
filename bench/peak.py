"""Run a command and report, on stderr, its own wall time and peak resident memory.

    python bench/peak.py [--tree] PROGRAM [ARGS...]

Prints after the command's own output:
* `wall_s SECONDS`;
* `peak_rss_kb KB`: wait4's ru_maxrss of that child alone, so the figure is the command's, not
  this wrapper's;
* `tree_pss_kb KB`, with `--tree`: the largest sum, over the command and every process it
  forked (a helper process beside it, sweep workers), of their proportional set sizes
  (/proc/PID/smaps_rollup, Linux): memory shared after a fork counted once, split between
  the processes that share it.
  Sampled every 20 ms, so a peak shorter than that can be missed; absent where /proc has no
  smaps_rollup. The sampling slows the command (reading smaps_rollup walks its page tables;
  ~4% at 2.5 M bars), so time and this figure are best taken from different runs;
* `cpu_s SECONDS`: user and system time of the command and of the processes it waited for.
Exits with the command's exit code.
"""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

SAMPLE_S = 0.02


def _tree(pid: int) -> list[int]:
    """pid and its descendants, from /proc/PID/task/TID/children."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
        except OSError:  # ended meanwhile
            continue
    return found


def _pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _sample(pid: int, done: threading.Event, peak: list[int]) -> None:
    while not done.wait(SAMPLE_S):
        peak[0] = max(peak[0], sum(_pss_kb(p) for p in _tree(pid)))


argv = sys.argv[1:]
tree = argv[:1] == ["--tree"]
if tree:
    argv = argv[1:]
began = time.perf_counter()
child = subprocess.Popen(argv)
tree_peak = [0]
finished = threading.Event()
sampler = None
if tree and Path(f"/proc/{child.pid}/smaps_rollup").exists():
    sampler = threading.Thread(target=_sample, args=(child.pid, finished, tree_peak), daemon=True)
    sampler.start()
_, status, usage = os.wait4(child.pid, 0)
wall = time.perf_counter() - began
finished.set()
child.returncode = os.waitstatus_to_exitcode(status)
# CPU seconds of the command and of the children it waited for (its worker processes).
cpu = usage.ru_utime + usage.ru_stime
print(f"wall_s {wall:.6f}\npeak_rss_kb {usage.ru_maxrss}\ncpu_s {cpu:.3f}", file=sys.stderr)
if sampler is not None:
    sampler.join()
    print(f"tree_pss_kb {tree_peak[0]}", file=sys.stderr)
sys.exit(child.returncode)
