"""Benchmark of the decision log at scale (not a test): append rate, then queries at 1,000,000 decisions.

For each backend (SQLite file, PostgreSQL):
  1. append rate: ``--appends`` decisions through the real ``DecisionLog.append``
     (hash chain, lock, commit per decision), one writer, then ``--writers`` threads;
  2. bulk load: continue the same chain to ``--total`` records (bodies shaped like the
     service's, hashes computed exactly as ``append`` does; COPY on PostgreSQL, batched
     INSERT on SQLite) so that the chain still verifies;
  3. latency of the per-model query (``GET /v1/decisions?model=``: newest 50 of one model)
     and of the governed record (``GET /v1/models/{ref}/record``), over random models;
  4. time of ``log verify`` over the whole chain.

    scripts/ensure-postgres.sh && .venv/bin/python bench/log_bench.py
    .venv/bin/python bench/log_bench.py --backends sqlite --total 200000   # quicker

PostgreSQL is the test server (.policygate/pg/test-url, or --pg-url); the bench works in
a schema of its own, dropped afterwards. The SQLite file goes to a temporary directory.
About 8 minutes and 6 GB of disk on 2 cores for both backends at the defaults.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from percentiles import pct
from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from policygate.decisions.chain import chain_hash
from policygate.decisions.log import DecisionLog
from policygate.decisions.record import governed_record
from policygate.decisions.schema import Record
from policygate.evidence import canonical_json

ROOT = Path(__file__).resolve().parents[1]
EVIDENCE: dict[str, Any] = json.loads((ROOT / "examples" / "evidence" / "compliant.json").read_text())
REVISION = "sha256:" + "ab" * 32
OUTCOMES = ["allow"] * 6 + ["deny"] * 3 + ["error"]
TARGETS = ["production", "production", "staging", "development"]


def model(m: int) -> tuple[str, str]:
    """Name and version of the m-th model version (10 versions per registered model)."""
    return f"bench-model-{m // 10}", str(m % 10 + 1)


def ref_of(name: str, version: str) -> str:
    return f"mlflow:models:/{name}/{version}"


def payload(decision_id: str, name: str, version: str, outcome: str, target: str) -> dict[str, Any]:
    """A decision and its evidence, shaped as DecisionService.record stores them (~3.5 kB)."""
    ref = ref_of(name, version)
    evidence = {
        **EVIDENCE,
        "subject": {**EVIDENCE["subject"], "name": name, "version": version, "ref": ref},
        "request": {**EVIDENCE["request"], "target": {"stage": target, "environment": None}},
    }
    reasons = [] if outcome == "allow" else [{"id": "APR-001", "message": "needs two approvals"}]
    decision = {
        "decision_id": decision_id,
        "outcome": outcome,
        "allow": outcome == "allow",
        "reasons": reasons,
        "warnings": [],
        "dryrun": [],
        "policy_revision": REVISION,
        "evidence_digest": "sha256:" + "cd" * 32,
        "subject": {"ref": ref, "platform": "mlflow", "name": name, "version": version},
        "target": {"stage": target, "environment": None},
        "requested_by": "bench@corp",
        "rules_checked": [],
        "evaluated_at": "2026-11-20T12:00:00Z",
    }
    return {"decision": decision, "evidence": evidence}


def append_rate(log: DecisionLog, n: int, models: int, writers: int) -> float:
    """Decisions per second through the real append path, with ``writers`` threads."""
    rng = random.Random(1)
    work = [(str(uuid.uuid4()), *model(rng.randrange(models))) for _ in range(n)]
    chunks = [work[i::writers] for i in range(writers)]

    def write(chunk: list[tuple[str, str, str]]) -> None:
        for decision_id, name, version in chunk:
            outcome, target = rng.choice(OUTCOMES), rng.choice(TARGETS)
            log.append(
                "decision",
                decision_id,
                payload(decision_id, name, version, outcome, target),
                model_ref=ref_of(name, version),
                target_stage=target,
                outcome=outcome,
                policy_revision=REVISION,
            )

    t0 = time.perf_counter()
    threads = [threading.Thread(target=write, args=(c,)) for c in chunks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return n / (time.perf_counter() - t0)


MARK = "@@"  # around placeholders in a body template; never in the example evidence


def bulk_rows(log: DecisionLog, total: int, models: int) -> Iterator[dict[str, Any]]:
    """Rows continuing the chain from its head, exactly as ``append`` would have written them."""
    seq, prev = log.head()
    assert MARK not in json.dumps(EVIDENCE)
    # one canonical template per (outcome, target); only seq, id, model and time vary
    templates: dict[tuple[str, str], list[str]] = {}
    for outcome in set(OUTCOMES):
        for target in set(TARGETS):
            body = payload("@@ID@@", "@@NAME@@", "@@VER@@", outcome, target)
            rendered = canonical_json(
                {"seq": "@@SEQ@@", "kind": "decision", "id": "@@ID@@", "recorded_at": "@@AT@@", **body}
            ).decode()
            templates[(outcome, target)] = rendered.replace('"@@SEQ@@"', "@@SEQ@@").split(MARK)
    rng = random.Random(2)
    start = datetime.now(UTC)
    for i in range(total - seq):
        seq += 1
        name, version = model(rng.randrange(models))
        outcome, target = rng.choice(OUTCOMES), rng.choice(TARGETS)
        at = start + timedelta(milliseconds=i)
        decision_id = f"bulk-{seq}"
        values = {"SEQ": str(seq), "ID": decision_id, "NAME": name, "VER": version, "AT": at.isoformat()}
        parts = templates[(outcome, target)]
        text_body = "".join(values[p] if k % 2 else p for k, p in enumerate(parts))
        record_hash = chain_hash(prev, text_body)
        yield {
            "seq": seq,
            "kind": "decision",
            "decision_id": decision_id,
            "recorded_at": at,
            "model_ref": ref_of(name, version),
            "target_stage": target,
            "outcome": outcome,
            "policy_revision": REVISION,
            "evidence_origin": None,  # the bench's decisions carry no origin: release decisions
            "body": text_body,
            "prev_hash": prev,
            "record_hash": record_hash,
        }
        prev = record_hash


def bulk_load(log: DecisionLog, total: int, models: int) -> float:
    """Rows per second loaded (COPY on PostgreSQL, batched INSERT on SQLite)."""
    t0 = time.perf_counter()
    rows = bulk_rows(log, total, models)
    n = 0
    if log.backend == "postgresql":
        columns = [c.name for c in Record.__table__.columns]
        raw = log.engine.raw_connection()
        try:
            cur = raw.cursor()
            with cur.copy(f"COPY decision_log ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row([row[c] for c in columns])
                    n += 1
            raw.commit()
            cur.execute("ANALYZE decision_log")
            raw.commit()
        finally:
            raw.close()
    else:
        batch: list[dict[str, Any]] = []
        with log.engine.connect() as conn:
            conn = conn.execution_options(sqlite_begin="IMMEDIATE")
            for row in rows:
                batch.append(row)
                if len(batch) == 20_000:
                    with conn.begin():
                        conn.execute(insert(Record), batch)
                    n += len(batch)
                    batch = []
            if batch:
                with conn.begin():
                    conn.execute(insert(Record), batch)
                n += len(batch)
            with conn.begin():
                conn.execute(text("ANALYZE"))
    return n / (time.perf_counter() - t0)


def latency_ms(fn: Callable[[str], object], refs: list[str]) -> dict[str, float]:
    for ref in refs[:10]:  # warm the pool and caches
        fn(ref)
    samples = []
    for ref in refs:
        t0 = time.perf_counter()
        fn(ref)
        samples.append((time.perf_counter() - t0) * 1000)
    return {
        "p50": statistics.median(samples),
        "p95": pct(samples, 95),
        "p99": pct(samples, 99),
        "max": max(samples),
    }


def bench(url: str, args: argparse.Namespace) -> dict[str, Any]:
    log = DecisionLog(url)
    out: dict[str, Any] = {"backend": log.backend}
    try:
        half = args.appends // 2
        out["append_per_s_1_writer"] = append_rate(log, half, args.models, 1)
        out[f"append_per_s_{args.writers}_writers"] = append_rate(
            log, args.appends - half, args.models, args.writers
        )
        print(f"  {log.backend}: appends done {out}", flush=True)
        out["bulk_rows_per_s"] = bulk_load(log, args.total, args.models)
        seq, _ = log.head()
        out["records"] = seq
        print(f"  {log.backend}: bulk load done, {seq} records", flush=True)
        rng = random.Random(3)
        refs = [ref_of(*model(rng.randrange(args.models))) for _ in range(args.queries)]
        per_model = log.query(model=refs[0], limit=50)
        out["per_model_rows"] = len(per_model)
        out["per_model_query_ms"] = latency_ms(lambda r: log.query(model=r, limit=50), refs)
        out["per_model_query_deny_ms"] = latency_ms(
            lambda r: log.query(model=r, outcome="deny", limit=50), refs
        )
        out["governed_record_ms"] = latency_ms(lambda r: governed_record(log, r), refs)
        t0 = time.perf_counter()
        result = log.verify()
        out["verify_s"] = time.perf_counter() - t0
        out["verify_ok"] = result.ok and result.records == seq
    finally:
        log.close()
    return out


def pg_url(args: argparse.Namespace) -> tuple[str, Callable[[], None]]:
    base = args.pg_url or (ROOT / ".policygate" / "pg" / "test-url").read_text().strip()
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, poolclass=NullPool)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))

    def drop() -> None:
        if not args.keep:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False), drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--appends", type=int, default=20_000, help="through the real append path")
    parser.add_argument("--writers", type=int, default=4, help="threads for the concurrent append rate")
    parser.add_argument("--total", type=int, default=1_000_000, help="records for the query part")
    parser.add_argument("--models", type=int, default=5_000, help="distinct model versions")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--pg-url", default=None)
    parser.add_argument("--dir", type=Path, default=None, help="where the SQLite file goes")
    parser.add_argument("--keep", action="store_true", help="keep the data afterwards")
    args = parser.parse_args()

    results = []
    for backend in args.backends.split(","):
        print(f"{backend}: {args.appends} appends, then {args.total} records ...", flush=True)
        if backend == "sqlite":
            tmp = Path(tempfile.mkdtemp(prefix="policygate-bench-", dir=args.dir))
            results.append(bench(f"sqlite:///{tmp}/decisions.db", args))
            if not args.keep:
                for f in tmp.iterdir():
                    f.unlink()
                tmp.rmdir()
        else:
            url, drop = pg_url(args)
            try:
                results.append(bench(url, args))
            finally:
                drop()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
