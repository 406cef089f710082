"""Benchmark: what hashing a model version's files costs a decision (issue 17), not a test.

A local MLflow server (one worker) holds a version whose files are an MLmodel and one weights file
of ``--mb`` MiB (random bytes). Measured, with the evidence cache off so every collection reads:

1. collect with the files hashed (download through MLflow's artifact proxy, streaming SHA-256),
2. collect with POLICYGATE_ARTIFACTS__ENABLED=false (what the files add is the difference),
3. the manifest of the same files already on disk (what ``policygate attest verify --artifact`` costs a
   deploy step).

    .venv/bin/python bench/integrity_bench.py [--mb 256] [--n 5] [--markdown]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from percentiles import pct

from policygate.config import Settings
from policygate.demo.mlflow_server import MlflowServer
from policygate.demo.seed import ModelSpec, register
from policygate.evidence import Target
from policygate.integrity.manifest import manifest_of
from policygate.integrity.settings import ArtifactSettings
from policygate.refs import parse
from policygate.runtime import open_service

MIB = 1024 * 1024


def model_dir(root: Path, mb: int) -> Path:
    root.mkdir(parents=True)
    (root / "MLmodel").write_text("flavors:\n  python_function:\n    loader_module: mlflow.pyfunc.model\n")
    with (root / "weights.bin").open("wb") as fh:
        for _ in range(mb):
            fh.write(os.urandom(MIB))
    return root


def timed(n: int, fn: Callable[[], object]) -> list[float]:
    fn()  # warm up
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=256)
    parser.add_argument("--n", type=int, default=5)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()

    import mlflow
    from mlflow.tracking import MlflowClient

    rows: list[tuple[str, list[float]]] = []
    with tempfile.TemporaryDirectory() as tmp, MlflowServer(Path(tmp) / "mlflow") as server:
        files = model_dir(Path(tmp) / "model", args.mb)
        spec = ModelSpec("bench-files")
        register(server.url, spec)  # the registered model, its tags and a first version without files
        mlflow.set_tracking_uri(server.url)
        with mlflow.start_run() as run:
            mlflow.log_artifacts(str(files), "model")
        version = (
            MlflowClient(server.url)
            .create_model_version(spec.name, source=f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
            .version
        )
        ref, target = parse(f"mlflow:models:/{spec.name}/{version}"), Target(stage="production")
        for label, enabled in (
            (f"collect, {args.mb} MiB of files hashed", True),
            ("collect, files off", False),
        ):
            settings = Settings(
                db_url=f"sqlite:///{tmp}/decisions-{enabled}.db",
                mlflow_uri=server.url,
                evidence_cache_ttl_s=0,
                artifacts=ArtifactSettings(enabled=enabled, max_bytes=(args.mb + 1) * MIB, timeout_s=600),
            )
            with open_service(settings) as service:
                evidence = service.collect(ref, target, "bench")
                assert (evidence.artifacts is not None) == enabled, evidence.collection.gaps
                rows.append((label, timed(args.n, lambda s=service: s.collect(ref, target, "bench"))))
        rows.append(
            (
                f"manifest of the {args.mb} MiB on disk (attest verify)",
                timed(args.n, lambda: manifest_of(files)),
            )
        )

    hashed, off = statistics.median(rows[0][1]), statistics.median(rows[1][1])
    if args.markdown:
        print("| what | median ms | p95 ms | MiB/s |")
        print("|---|---|---|---|")
    for label, times in rows:
        median = statistics.median(times)
        rate = args.mb / ((median - (off if label.startswith("collect, " + str(args.mb)) else 0)) / 1000)
        if args.markdown:
            shown = f"{rate:.0f}" if "files off" not in label else "-"
            print(f"| {label} | {median:.0f} | {pct(times, 95):.0f} | {shown} |")
        else:
            print(f"{label}: median {median:.0f} ms, p95 {pct(times, 95):.0f} ms")
    added = hashed - off
    print(f"\nthe files add {added:.0f} ms to a collection ({args.mb / (added / 1000):.0f} MiB/s)")


if __name__ == "__main__":
    main()
