"""The figures of the README's Reliability section, from an actual run of its tests.

    .venv/bin/python bench/reliability_figures.py [--json FILE]

Runs tests/test_crash.py, test_faults.py, test_bad_input.py, test_concurrency.py,
test_soak.py, test_security.py, test_sim_crash.py, test_disk_failures.py,
test_simbroker_hostile.py, test_state_integrity.py, test_history_paging.py, test_doubt.py,
test_session_close.py and test_rerun_announcements.py once (they
print each figure as a line `FIGURE {...}` and, with RELIABILITY_FIGURES set, append it to a
file), then prints the totals: kill
points survived, faults injected and survived, inputs tried, soak days, faults and partial
fills, and the tests' pass counts and wall time per file. Exits 1 if any test failed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FILES = ["test_crash.py", "test_faults.py", "test_bad_input.py", "test_concurrency.py",
         "test_soak.py", "test_security.py", "test_sim_crash.py", "test_disk_failures.py",
         "test_simbroker_hostile.py", "test_state_integrity.py", "test_history_paging.py",
         "test_doubt.py", "test_session_close.py", "test_rerun_announcements.py"]


def run_tests(figures: Path, junit: Path) -> tuple[int, float]:
    env = {**os.environ, "RELIABILITY_FIGURES": str(figures)}
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           f"--junitxml={junit}", *[f"tests/{f}" for f in FILES]],
                          cwd=ROOT, env=env)
    return done.returncode, time.monotonic() - started


def per_file(junit: Path) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = defaultdict(lambda: {"passed": 0, "failed": 0,
                                                            "seconds": 0.0})
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = case.get("classname", "").split(".")[-1] + ".py"
        row = out[name]
        failed = any(child.tag in ("failure", "error") for child in case)
        row["failed" if failed else "passed"] += 1
        row["seconds"] += float(case.get("time", 0))
    return dict(out)


def summarise(lines: list[dict]) -> dict[str, object]:
    by = defaultdict(list)
    for line in lines:
        by[line["test"]].append(line)
    crash = by["crash"]
    faults, outages = by["faults"], by["outages"]
    summary: dict[str, object] = {
        "kill_points": sum(c["points"] for c in crash),
        "kill_points_survived": sum(c["survived"] for c in crash),
        "kill_points_by_scenario": {
            s: {c["kind"]: c["points"] for c in crash if c["scenario"] == s}
            for s in sorted({c["scenario"] for c in crash})},
        "fault_kinds": len(faults),
        "faulted_runs": sum(f["requests"] for f in faults),
        "faulted_runs_survived": sum(f["survived"] for f in faults),
        "outage_runs": sum(o["requests"] for o in outages),
        "outage_runs_recovered": sum(o["survived"] for o in outages),
    }
    for name in ("sim-crash", "disk-full"):
        if by[name]:
            summary[name] = {"points": sum(x["points"] for x in by[name]),
                             "survived": sum(x["survived"] for x in by[name])}
    for name in ("bad_input", "soak", "storm"):
        if by[name]:
            summary[name] = {k: v for k, v in by[name][-1].items() if k != "test"}
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", help="also write the summary to this file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        figures, junit = Path(tmp) / "figures.jsonl", Path(tmp) / "junit.xml"
        code, seconds = run_tests(figures, junit)
        lines = [json.loads(x) for x in figures.read_text().splitlines()] \
            if figures.exists() else []
        files = per_file(junit)
    summary = summarise(lines)
    summary["tests"] = files
    summary["wall_seconds"] = round(seconds, 1)
    summary["cpus"] = os.cpu_count()
    text = json.dumps(summary, indent=2, sort_keys=True)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
