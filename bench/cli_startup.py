"""Benchmark: how long a cold CLI takes, against `opa eval` of the same document, in one run (not a test).

Times, as separate processes, wall clock, N runs each (best and median):

1. ``policygate --help``;
2. ``policygate evaluate examples/evidence/compliant.json`` on a fresh SQLite log (every load check
   of rego/ included: that is what a CI job runs), on each engine (``POLICYGATE_ENGINE=http``: a
   managed ``opa run`` server; ``inprocess``: OPA linked in);
3. ``opa eval -d rego -i examples/evidence/compliant.json data.policygate.decision`` (no checks,
   no record: the floor for "evaluate one document").

    .venv/bin/python bench/cli_startup.py              # 10 runs each
    .venv/bin/python bench/cli_startup.py --runs 20 --markdown
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EVIDENCE = ROOT / "examples" / "evidence" / "compliant.json"


def timed(cmd: list[str], runs: int, expect: set[int], engine: str | None = None) -> list[float]:
    took = []
    env = {**os.environ, **({"POLICYGATE_ENGINE": engine} if engine else {})}
    for _ in range(runs):
        started = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, cwd=ROOT, check=False, env=env)
        took.append(time.perf_counter() - started)
        if proc.returncode not in expect:
            sys.exit(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr.decode()[-2000:]}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--markdown", action="store_true", help="a table for docs/benchmarks.md")
    args = parser.parse_args()
    policygate = str(Path(sys.executable).with_name("policygate"))
    opa = str(ROOT / ".bin" / "opa")
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite:///{tmp}/decisions.db"
        rows = [
            ("policygate --help", timed([policygate, "--help"], args.runs, {0})),
            *(
                (
                    f"policygate evaluate compliant.json ({engine})",
                    timed([policygate, "evaluate", str(EVIDENCE), "--db", db], args.runs, {0}, engine),
                )
                for engine in ("http", "inprocess")  # POLICYGATE_ENGINE: an opa run server, or OPA linked in
            ),
            (
                "opa eval (same document)",
                timed(
                    [opa, "eval", "-d", "rego", "-i", str(EVIDENCE), "data.policygate.decision"],
                    args.runs,
                    {0},
                ),
            ),
        ]
    if args.markdown:
        print("| command | best (s) | median (s) |\n|---|---|---|")
        for name, took in rows:
            print(f"| `{name}` | {min(took):.2f} | {statistics.median(took):.2f} |")
    else:
        for name, took in rows:
            best, median = min(took), statistics.median(took)
            print(f"{name:40} best {best:.3f} s  median {median:.3f} s  ({len(took)} runs)")


if __name__ == "__main__":
    main()
