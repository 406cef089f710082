"""Soak: N evaluations on the in-process OPA (a decision and a strict-builtin error alternately, from
4 threads), the resident set size sampled every tenth of the way: it should stay flat.

    .venv/bin/python bench/inproc_soak.py [--evaluations 1000000]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from policygate.config import Settings
from policygate.engine.errors import EngineError
from policygate.evidence import EvidenceV1
from policygate.runtime.engines import start_engine

ROOT = Path(__file__).resolve().parents[1]


def rss_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--evaluations", type=int, default=1_000_000)
    args = parser.parse_args()
    doc = EvidenceV1.model_validate_json((ROOT / "examples/evidence/compliant.json").read_text()).to_input()
    broken = json.loads(json.dumps(doc))
    broken["request"]["requested_at"] = "2026-02-30T00:00:00Z"  # a strict builtin error each time
    engine = start_engine(None, Settings().opa_binary, ROOT / "rego", engine="inprocess")
    samples = [round(rss_mb(), 1)]
    step = max(1, args.evaluations // 10)
    started = time.perf_counter()

    def one(i: int) -> None:
        with contextlib.suppress(EngineError):
            engine.evaluate(doc if i % 2 else broken)

    with engine, ThreadPoolExecutor(max_workers=4) as pool:
        for start in range(0, args.evaluations, step):
            list(pool.map(one, range(start, min(start + step, args.evaluations)), chunksize=256))
            samples.append(round(rss_mb(), 1))
            done = min(start + step, args.evaluations)
            print(
                f"{done} evaluations, {time.perf_counter() - started:.0f} s, rss {samples[-1]} MB",
                file=sys.stderr,
                flush=True,
            )
    elapsed = time.perf_counter() - started
    print(
        json.dumps(
            {
                "evaluations": args.evaluations,
                "seconds": round(elapsed, 1),
                "per_s": round(args.evaluations / elapsed),
                "rss_mb": samples,
            }
        )
    )


if __name__ == "__main__":
    main()
