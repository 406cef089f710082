"""Benchmark: ``policy replay`` of N recorded decisions under a candidate policy, on each engine.

A SQLite log is filled with N decision records (the example evidence documents, as the service
records them: the evidence input and the decision with its reasons), then the same candidate
(a copy of rego/) replays them twice: on the managed ``opa run`` server (HTTP, the engine before
issue 30) and in process (OPA linked in). Decisions per second of each, and whether the two replays
found the same changes.

    .venv/bin/python bench/replay_bench.py [--decisions 100000] [--workers 4] [--markdown]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from policygate.config import Settings
from policygate.decisions.log import DecisionLog
from policygate.engine.result import PolicyResult
from policygate.evidence import EvidenceV1
from policygate.policy.load import load_policy
from policygate.policy.replay import replay

ROOT = Path(__file__).resolve().parents[1]


def documents() -> list[dict[str, Any]]:
    return [
        EvidenceV1.model_validate_json(p.read_text()).to_input()
        for p in sorted((ROOT / "examples" / "evidence").glob("*.json"))
    ]


def fill(log: DecisionLog, n: int, engine: Any) -> None:
    """N decision records, cycling through the examples, each with the decision the engine gives."""
    docs = documents()
    decided = []
    for doc in docs:
        result = PolicyResult.from_opa(engine.evaluate(doc))
        decided.append(
            {
                "outcome": result.outcome,
                "allow": result.outcome == "allow",
                "reasons": [r.model_dump() for r in result.deny],
                "warnings": [r.model_dump() for r in result.warn],
                "policy_revision": engine.policy_revision,
            }
        )

    def one(i: int) -> None:
        doc, decision = docs[i % len(docs)], decided[i % len(docs)]
        decision_id = str(uuid.uuid4())
        log.append(
            "decision",
            decision_id,
            {"decision": {**decision, "decision_id": decision_id}, "evidence": doc},
            model_ref=doc["subject"]["ref"],
            target_stage=doc["request"]["target"]["stage"],
            outcome=decision["outcome"],
            policy_revision=decision["policy_revision"],
        )

    with ThreadPoolExecutor(max_workers=64) as pool:  # the log's group commit batches them
        list(pool.map(one, range(n)))


def cpu_s(engine: Any) -> float:
    """CPU seconds so far of this process (Go's threads included: OPA in process) and of the engine's
    managed OPA server (HTTP), from /proc: what a replay costs, whatever else the machine runs."""
    used = time.process_time()
    managed = getattr(engine, "managed", None)
    proc = getattr(managed, "proc", None)
    if proc is not None:
        fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        used += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return used


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--decisions", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    settings = Settings()
    work = Path(tempfile.mkdtemp(prefix="policygate-replay-bench-"))
    try:
        candidate = work / "rego"
        shutil.copytree(ROOT / "rego", candidate)
        shutil.copytree(ROOT / "examples" / "evidence", work / "examples" / "evidence")
        log = DecisionLog(f"sqlite:///{work}/decisions.db")
        rows: dict[str, dict[str, Any]] = {}
        try:
            started = time.perf_counter()
            for kind in ("http", "inprocess"):
                report, engine = load_policy(settings.opa_binary, candidate, engine=kind)
                assert engine is not None, report.summary()
                with engine:
                    if not rows:
                        fill(log, args.decisions, engine)
                        print(f"filled {args.decisions} decisions in {time.perf_counter() - started:.1f} s")
                    cpu = cpu_s(engine)
                    r = replay(log, engine, candidate=str(candidate), workers=args.workers)
                    cpu = cpu_s(engine) - cpu
                rows[kind] = {
                    "replayed": r.replayed,
                    "elapsed_s": round(r.elapsed_s, 2),
                    "decisions_per_s": round(r.replayed / r.elapsed_s) if r.elapsed_s else 0,
                    "changes": r.changed,
                    "cpu_ms_per_decision": round(cpu * 1000 / max(1, r.replayed), 2),
                }
        finally:
            log.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    speedup = rows["inprocess"]["decisions_per_s"] / max(1, rows["http"]["decisions_per_s"])
    cpu_ratio = rows["http"]["cpu_ms_per_decision"] / max(0.01, rows["inprocess"]["cpu_ms_per_decision"])
    if args.markdown:
        print(
            "| engine | replayed | seconds | decisions/s | CPU ms per decision | changes |\n"
            "|---|---:|---:|---:|---:|---:|"
        )
        for kind, row in rows.items():
            cells = [
                kind,
                row["replayed"],
                row["elapsed_s"],
                row["decisions_per_s"],
                row["cpu_ms_per_decision"],
                row["changes"],
            ]
            print("| " + " | ".join(map(str, cells)) + " |")
        print(f"\nin process / HTTP: {speedup:.1f}x the decisions per second, {cpu_ratio:.1f}x less CPU")
        print(f"load average {os.getloadavg()[0]:.1f} at the end, {os.cpu_count()} CPUs")
    else:
        out = {"engines": rows, "speedup": round(speedup, 2), "cpu_ratio": round(cpu_ratio, 2)}
        print(json.dumps({**out, "load_average": os.getloadavg()[0]}, indent=2))


if __name__ == "__main__":
    main()
