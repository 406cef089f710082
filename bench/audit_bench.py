"""Benchmark: an audit of N registered models in use on a real MLflow server (one worker, SQLite), then
an unchanged run (incremental), then a run after one version's tags changed.

Each model is registered the way the demo does (a run with a training dataset and a git commit, a
version with an approvals tag), gated with a collected decision, then given the alias ``champion``.
MLflow calls are counted in the MLflow server's own access log.

    .venv/bin/python bench/audit_bench.py [--models 1000] [--concurrency 4] [--markdown]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from run_all import mlflow_calls

from policygate.audit.run import Auditor
from policygate.config import Settings
from policygate.demo.mlflow_server import MlflowServer
from policygate.evidence import Target
from policygate.refs import parse
from policygate.runtime import open_runtime

COMMIT = "9f2c1e7a4b6d8f0e1a3c5b7d9e2f4a6c8b0d1e3f"


def seed(uri: str, n: int, workers: int = 8) -> None:
    """N registered models, each with a finished run (dataset, commit), one version and its approvals."""
    import mlflow
    from mlflow.entities import Dataset as MlflowDataset
    from mlflow.entities import DatasetInput, InputTag, Param, RunTag
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri, registry_uri=uri)
    experiment = client.create_experiment("audit-bench")

    def one(i: int) -> None:
        name = f"bench-model-{i:05d}"
        run = client.create_run(experiment, tags={"mlflow.user": "dana@corp"})
        run_id = run.info.run_id
        client.log_batch(
            run_id,
            params=[Param("model", "lr")],
            tags=[
                RunTag("mlflow.source.git.commit", COMMIT),
                RunTag("mlflow.source.git.repoURL", "https://github.com/example-corp/models"),
            ],
        )
        dataset = MlflowDataset(
            name="transactions",
            digest=f"d{i:05d}",
            source_type="s3",
            source=json.dumps({"uri": f"s3://bench/transactions-{i}.parquet"}),
        )
        client.log_inputs(run_id, [DatasetInput(dataset, [InputTag("mlflow.data.context", "training")])])
        # files to hash, as the demo's untrained models have: INT-003 denies a version whose files
        # cannot be read
        client.log_text(run_id, "artifact_path: model\nflavors: {}\n", "model/MLmodel")
        client.set_terminated(run_id)
        client.create_registered_model(
            name,
            tags={"owner": "alice@corp", "team": "risk-ml", "use_case": "scoring", "risk_tier": "medium"},
        )
        mv = client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id)
        approvals = [{"by": "bob@corp", "stage": "production", "at": _now()}]  # after the version
        client.set_model_version_tag(name, mv.version, "approvals", json.dumps(approvals))

    mlflow.set_tracking_uri(uri)
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, range(n)))


def _now() -> str:
    from policygate.timeutil import now_iso

    return now_iso()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    rows: list[tuple[str, float, int, int, int]] = []
    with tempfile.TemporaryDirectory() as tmp, MlflowServer(Path(tmp) / "mlflow") as server:
        t0 = time.perf_counter()
        seed(server.url, args.models)
        seeded_s = time.perf_counter() - t0
        settings = Settings(
            db_url=f"sqlite:///{tmp}/decisions.db", mlflow_uri=server.url, audit_concurrency=args.concurrency
        )
        from mlflow.tracking import MlflowClient

        with open_runtime(settings) as runtime:
            client = MlflowClient(server.url, registry_uri=server.url)
            t0 = time.perf_counter()
            with ThreadPoolExecutor(8) as pool:  # the release decisions, then the aliases
                decisions = list(
                    pool.map(
                        lambda i: runtime.service.decide(
                            parse(f"mlflow:models:/bench-model-{i:05d}/1"), Target(stage="production"), "ci"
                        ),
                        range(args.models),
                    )
                )
                for i in range(args.models):
                    client.set_registered_model_alias(f"bench-model-{i:05d}", "champion", "1")
            gated_s = time.perf_counter() - t0
            denied = {r.id for d in decisions for r in d.reasons}
            assert all(d.outcome == "allow" for d in decisions), denied
        with open_runtime(settings) as runtime:  # the audits run later, in a process of their own

            def audited(label: str) -> None:
                mark = server.log_path.stat().st_size
                started = time.perf_counter()
                run = Auditor(runtime.service, settings).run()
                wall = time.perf_counter() - started
                time.sleep(0.5)  # the access log is written after the answer
                calls = mlflow_calls(server.log_path, mark)
                assert len(run.models) == args.models, len(run.models)
                collected = sum(1 for m in run.models if m.collected)
                rows.append((label, wall, calls, collected, len(run.findings)))

            audited("first run (everything collected)")
            audited("second run, nothing changed")
            client.set_model_version_tag("bench-model-00007", "1", "approvals", "[]")
            audited("third run, one version's approvals removed")
    n = args.models
    if args.markdown:
        print(
            f"Audit of {n} models in use, a real MLflow server with one worker, concurrency "
            f"{args.concurrency} (seeding {seeded_s:.0f} s, gating {gated_s:.0f} s):\n"
        )
        print("| run | wall time | MLflow calls | calls per model | collected | findings |")
        print("|---|---:|---:|---:|---:|---:|")
        for label, wall, calls, collected, findings in rows:
            print(f"| {label} | {wall:.2f} s | {calls} | {calls / n:.3f} | {collected} | {findings} |")
        print(f"\nUnchanged run {rows[0][1] / rows[1][1]:.1f}x faster than the first.")
    else:
        for label, wall, calls, collected, findings in rows:
            print(
                f"{label}: {wall:.2f} s, {calls} MLflow calls ({calls / n:.3f}/model), "
                f"{collected} collected, {findings} findings"
            )
        print(f"unchanged run {rows[0][1] / rows[1][1]:.1f}x faster than the first")


if __name__ == "__main__":
    main()
