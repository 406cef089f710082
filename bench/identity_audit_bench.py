"""Benchmark: the audit of N models in use with their owners and approvers looked up in a file:
directory (issue 29): wall time and how many directory calls, with the cache off (0 s: one batched call
per model: owner, approvers and deployment identity together) and on (300 s: one call per distinct set
of ids not yet cached). Models as bench/audit_bench.py seeds them, owners spread over 20 people.

    .venv/bin/python bench/identity_audit_bench.py [--models 1000] [--people 20]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml
from audit_bench import seed

from policygate.audit.run import Auditor
from policygate.config import Settings
from policygate.demo.mlflow_server import MlflowServer
from policygate.evidence import Target
from policygate.refs import parse
from policygate.runtime import open_runtime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--people", type=int, default=20)
    args = parser.parse_args()
    n = args.models
    with tempfile.TemporaryDirectory() as tmp, MlflowServer(Path(tmp) / "mlflow") as server:
        seed(server.url, n)
        from mlflow.tracking import MlflowClient

        client = MlflowClient(server.url, registry_uri=server.url)
        owners = [f"owner-{p:02d}@corp" for p in range(args.people)]
        for i in range(n):
            client.set_registered_model_tag(f"bench-model-{i:05d}", "owner", owners[i % len(owners)])
        people = [{"id": o, "active": True, "kind": "person", "groups": ["risk-ml"]} for o in owners]
        people.append({"id": "bob@corp", "active": True, "kind": "person", "groups": ["model-risk"]})
        directory = Path(tmp) / "directory.yaml"
        directory.write_text(yaml.safe_dump({"people": people}))
        base = {"db_url": f"sqlite:///{tmp}/decisions.db", "mlflow_uri": server.url}
        settings = Settings(**base, directory=f"file:{directory}")
        with open_runtime(settings) as runtime, ThreadPoolExecutor(8) as pool:
            list(  # release decisions (the outcome does not matter here: the lookups are counted)
                pool.map(
                    lambda i: runtime.service.decide(
                        parse(f"mlflow:models:/bench-model-{i:05d}/1"), Target(stage="production"), "ci"
                    ),
                    range(n),
                )
            )
            for i in range(n):
                client.set_registered_model_alias(f"bench-model-{i:05d}", "champion", "1")
        for cache_s in (0.0, 300.0):
            # every version collected: a fresh log per mode, so nothing is reused from an earlier run
            mode = Settings(**{**base, "db_url": f"sqlite:///{tmp}/audit-{cache_s:g}.db"},
                            directory=f"file:{directory}", directory_cache_s=cache_s)  # fmt: skip
            with open_runtime(mode) as runtime:
                started = time.perf_counter()
                run = Auditor(runtime.service, mode).run()
                wall = time.perf_counter() - started
                calls = getattr(runtime.service.collector.directory, "calls", 0)
                orphaned = sum(1 for f in run.findings if f.kind == "orphaned")
                print(
                    f"cache {cache_s:g} s: {len(run.models)} models audited in {wall:.1f} s, "
                    f"{calls} directory calls ({calls / max(1, len(run.models)):.3f}/model), "
                    f"{orphaned} orphaned"
                )


if __name__ == "__main__":
    main()
