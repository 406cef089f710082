"""Benchmark: one MLflow-backed decision (collect + evaluate + record) against a local MLflow server.

Reports REST calls to MLflow per decision (counted at the HTTP layer) and the
median / p95 latency of collect+evaluate, and of the whole decision.

    .venv/bin/python bench/mlflow_decision_bench.py [--n 200]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import requests
from percentiles import pct

from policygate.config import Settings
from policygate.demo.mlflow_server import MlflowServer
from policygate.demo.seed import ModelSpec, register
from policygate.evidence import Target
from policygate.refs import parse
from policygate.runtime import open_service


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200)
    args = parser.parse_args()

    calls: list[str] = []
    original_send = requests.Session.send

    def counting_send(
        self: requests.Session, request: requests.PreparedRequest, **kw: object
    ) -> requests.Response:
        calls.append(request.path_url)
        return original_send(self, request, **kw)  # type: ignore[arg-type]

    with tempfile.TemporaryDirectory() as tmp, MlflowServer(Path(tmp) / "mlflow") as server:
        register(server.url, ModelSpec("bench-model", alias="champion"), train=True)  # real files
        settings = Settings(db_url=f"sqlite:///{tmp}/decisions.db", mlflow_uri=server.url)
        with open_service(settings) as service:
            ref, target = parse("mlflow:models:/bench-model@champion"), Target(stage="production")
            for _ in range(5):  # warm up connections and the OPA
                service.decide(ref, target, "bench")
            requests.Session.send = counting_send  # type: ignore[method-assign]
            collect_ms, decide_ms, per_decision_calls = [], [], []
            for _ in range(args.n):
                before = len(calls)
                t0 = time.perf_counter()
                evidence = service.collect(ref, target, "bench")
                t1 = time.perf_counter()
                mlflow_calls = [
                    c for c in calls[before:] if "/api/2.0/mlflow/" in c or "/api/3.0/mlflow/" in c
                ]
                service.evaluate(evidence)
                t2 = time.perf_counter()
                collect_ms.append((t1 - t0) * 1000)
                decide_ms.append((t2 - t0) * 1000)
                per_decision_calls.append(len(mlflow_calls))
            requests.Session.send = original_send  # type: ignore[method-assign]
            assert evidence.collection.gaps == [], evidence.collection.gaps

    print(f"decisions: {args.n}")
    calls_max, calls_median = max(per_decision_calls), statistics.median(per_decision_calls)
    print(f"MLflow REST calls per decision: max {calls_max}, median {calls_median}")
    collect_median, collect_p95 = statistics.median(collect_ms), pct(collect_ms, 95)
    print(f"collect:                    median {collect_median:.1f} ms, p95 {collect_p95:.1f} ms")
    decide_median, decide_p95 = statistics.median(decide_ms), pct(decide_ms, 95)
    print(f"collect+evaluate+record:    median {decide_median:.1f} ms, p95 {decide_p95:.1f} ms")


if __name__ == "__main__":
    main()
