"""Benchmark: the console's pages at 1,000,000 decisions (issue 18), not a test.

Bulk-loads a SQLite decision log (bench/log_bench.py's rows: the chain verifies) of ``--total``
decisions over ``--models`` model versions, starts a real ``policygate serve`` on it (loopback, no
authentication, the managed OPA), and times server-rendered pages over HTTP: the models list (first
page, a page deep in the list, a search, an outcome filter), a model page and a decision page.

    .venv/bin/python bench/console_bench.py [--total 1000000] [--models 20000] [--n 30] [--markdown]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import requests
from log_bench import bulk_load, model, ref_of
from percentiles import pct

from policygate.decisions.log import DecisionLog
from policygate.demo.mlflow_server import free_port

ROOT = Path(__file__).resolve().parents[1]


def serve(db: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "POLICYGATE_DB_URL": db, "POLICYGATE_POLICY_DIR": str(ROOT / "rego")}
    cmd = [sys.executable, "-m", "policygate.cli", "serve", "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if requests.get(base + "/readyz", timeout=1).status_code == 200:
                return proc, base
        except requests.RequestException:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("policygate serve did not become ready")


def timed(session: requests.Session, urls: list[str]) -> list[float]:
    times = []
    for url in urls:
        t0 = time.perf_counter()
        answer = session.get(url, timeout=60)
        times.append((time.perf_counter() - t0) * 1000)
        assert answer.status_code == 200, (url, answer.status_code, answer.text[:300])
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--total", type=int, default=1_000_000)
    parser.add_argument("--models", type=int, default=20_000, help="model versions the decisions spread over")
    parser.add_argument("--n", type=int, default=30, help="requests per page kind")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()

    rng = random.Random(3)
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite:///{tmp}/decisions.db"
        log = DecisionLog(db)
        t0 = time.perf_counter()
        rate = bulk_load(log, args.total, args.models)
        print(
            f"loaded {args.total} decisions over {args.models} model versions in "
            f"{time.perf_counter() - t0:.0f} s ({rate:.0f}/s)",
            file=sys.stderr,
        )
        log.close()
        proc, base = serve(db)
        try:
            session = requests.Session()
            refs = [ref_of(*model(rng.randrange(args.models))) for _ in range(args.n)]
            middles = sorted(refs)
            ids = [f"bulk-{rng.randrange(1, args.total)}" for _ in range(args.n)]
            pages = {
                "models list, first page": [base + "/ui"] * args.n,
                "models list, a page deep in the list": [
                    base + "/ui?after=" + quote(r, safe="") for r in middles
                ],
                "models list, search": [
                    base + f"/ui?q=bench-model-{rng.randrange(args.models // 10)}/" for _ in range(args.n)
                ],
                "models list, latest outcome deny": [base + "/ui?outcome=deny"] * args.n,
                "model page": [base + "/ui/models/" + quote(r, safe="") for r in refs],
                "decision page": [base + "/ui/decisions/" + i for i in ids],
            }
            for urls in pages.values():  # warm up
                timed(session, urls[:2])
            rows = [(name, timed(session, urls)) for name, urls in pages.items()]
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    if args.markdown:
        print(f"| page ({args.total:,} decisions, {args.models:,} model versions) | median ms | p95 ms |")
        print("|---|---:|---:|")
        for name, times in rows:
            print(f"| {name} | {statistics.median(times):.1f} | {pct(times, 95):.1f} |")
    else:
        for name, times in rows:
            print(f"{name}: median {statistics.median(times):.1f} ms, p95 {pct(times, 95):.1f} ms")


if __name__ == "__main__":
    main()
