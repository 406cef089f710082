"""Benchmark: how long a cold CLI takes, against `opa eval` of the same document, in one run (not a test).

Times, as separate processes, wall clock, N runs each (best and median):

1. ``policygate --help``;
2. ``policygate evaluate examples/evidence/compliant.json`` on a fresh SQLite log, on each engine
   (``POLICYGATE_ENGINE=http``: a managed ``opa run`` server; ``inprocess``: OPA linked in), with
   every load check of rego/ run (an empty cache: a CI runner, or a changed policy) and with the
   checks remembered from an earlier run of the same revision (an author's next run);
3. ``opa eval -d rego -i examples/evidence/compliant.json data.policygate.decision`` (no checks,
   no record: the floor for "evaluate one document").

    .venv/bin/python bench/cli_startup.py              # 10 runs each
    .venv/bin/python bench/cli_startup.py --runs 20 --markdown
    .venv/bin/python bench/cli_startup.py --policy-commands     # policy check and policy test too
    PYTHONPATH=/tmp/before/src .venv/bin/python bench/cli_startup.py --engines http --policy-commands
                                                               # an older checkout (git worktree add)
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EVIDENCE = ROOT / "examples" / "evidence" / "compliant.json"


def timed(
    cmd: list[str], runs: int, expect: set[int], engine: str | None = None, fresh_cache: bool = False
) -> list[tuple[float, float]]:
    """(wall clock, CPU seconds of the process and every process it waited for) of each run: the CPU
    figure barely moves with the machine's load, the wall clock does. Python writes and reads its
    bytecode cache, as an installed policygate does (``PYTHONDONTWRITEBYTECODE`` is dropped: with it
    every run compiled policygate's modules again); one untimed run first writes it.
    ``fresh_cache``: every run on an empty cache directory, so the load checks run in full (the first
    run of a policy revision, or a CI runner without a kept cache); otherwise the checks a revision
    passed are remembered (policy/check_cache.py), as on an author's machine."""
    took = []
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update({"POLICYGATE_ENGINE": engine} if engine else {})
    cache = tempfile.mkdtemp(prefix="policygate-bench-cache-")
    env["XDG_CACHE_HOME"] = cache
    subprocess.run(cmd, capture_output=True, cwd=ROOT, check=False, env=env)
    for _ in range(runs):
        if fresh_cache:
            shutil.rmtree(cache, ignore_errors=True)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, cwd=ROOT, check=False, env=env)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        took.append((wall, cpu))
        if proc.returncode not in expect:
            sys.exit(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr.decode()[-2000:]}")
    shutil.rmtree(cache, ignore_errors=True)
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--markdown", action="store_true", help="a table for docs/benchmarks.md")
    parser.add_argument(
        "--engines",
        default="http,inprocess",
        help="POLICYGATE_ENGINE values to time (a checkout from before issue 30 knows only http)",
    )
    parser.add_argument(
        "--policy-commands", action="store_true", help="also `policygate policy check` and `policy test`"
    )
    args = parser.parse_args()
    engines = [e for e in args.engines.split(",") if e]
    policygate = str(Path(sys.executable).with_name("policygate"))
    opa = str(ROOT / ".bin" / "opa")
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite:///{tmp}/decisions.db"
        rows = [
            ("policygate --help", timed([policygate, "--help"], args.runs, {0})),
            *(
                (
                    f"policygate evaluate compliant.json ({engine}, "
                    + ("checks run)" if fresh else "remembered)"),
                    timed([policygate, "evaluate", str(EVIDENCE), "--db", db], args.runs, {0}, engine, fresh),
                )
                for engine in engines  # POLICYGATE_ENGINE: an opa run server, or OPA linked in
                for fresh in (True, False)
            ),
            *(
                (
                    f"policygate policy {command} ({engine}, " + ("checks run)" if fresh else "remembered)"),
                    timed([policygate, "policy", command], args.runs, {0}, engine, fresh),
                )
                for command in (("check", "test") if args.policy_commands else ())
                for engine in engines
                for fresh in (True, False)
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
    print(f"load average {os.getloadavg()[0]:.1f} (uptime) at the end, {os.cpu_count()} CPUs")
    if args.markdown:
        print("| command | best (s) | median (s) | CPU median (s) |\n|---|---|---|---|")
        for name, took in rows:
            wall, cpu = [w for w, _ in took], [c for _, c in took]
            print(
                f"| `{name}` | {min(wall):.2f} | {statistics.median(wall):.2f} "
                f"| {statistics.median(cpu):.2f} |"
            )
    else:
        for name, took in rows:
            wall, cpu = [w for w, _ in took], [c for _, c in took]
            print(
                f"{name:40} best {min(wall):.3f} s  median {statistics.median(wall):.3f} s  "
                f"CPU median {statistics.median(cpu):.3f} s  ({len(took)} runs)"
            )


if __name__ == "__main__":
    main()
