"""Benchmark: a decision on a model version's files against ``curl | sha256sum`` of the same files from
the same MLflow server (issue 31), not a test.

One local MLflow server (one worker) serves its artifacts itself (``--serve-artifacts``, as in most
deployments). For each size, a version whose files are an MLmodel and one weights file of that many
MiB (random bytes, written straight into the server's artifact store). Measured, in one run:

1. ``curl -s URL | sha256sum`` of each of the version's files through the server's artifact proxy;
2. a decision (``DecisionService.decide``: collect, files hashed as they stream, OPA, the log) in a
   warm service, the evidence cache off so every decision reads the files again;
3. ``policygate check`` as a command (a fresh process each: start-up and OPA included), with its
   peak RSS: the files are never held whole in memory nor written to disk.

    .venv/bin/python bench/integrity_bench.py [--sizes-mb 100,1024,3072] [--n 1] [--markdown]

The files are deleted afterwards (the server's directory is a temporary one).
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
from typing import Any

from policygate.config import Settings
from policygate.config.integrity import ArtifactSettings
from policygate.demo.mlflow_server import MlflowServer
from policygate.demo.seed import ModelSpec, register
from policygate.evidence import Target
from policygate.refs import parse
from policygate.runtime import open_service

MIB = 1024 * 1024
MLMODEL = "flavors:\n  python_function:\n    loader_module: mlflow.pyfunc.model\n"


def version_of(server: MlflowServer, spec: ModelSpec, mb: int) -> tuple[str, list[str]]:
    """A model version (with a run, its dataset and commit: allowed in staging) whose files are an
    MLmodel and ``mb`` MiB of weights: (its ref, the proxy URL of each of its files)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(server.url)
    version = register(server.url, spec)
    run_id = client.get_model_version(spec.name, version).run_id
    relative = client.get_run(run_id).info.artifact_uri.removeprefix("mlflow-artifacts:/")
    stored = server.data_dir / "artifacts" / relative / "model"
    stored.mkdir(parents=True, exist_ok=True)
    (stored / "MLmodel").write_text(MLMODEL)
    with (stored / "weights.bin").open("wb") as fh:  # straight into the store: no upload to wait for
        for _ in range(mb):
            fh.write(os.urandom(MIB))
    base = f"{server.url}/api/2.0/mlflow-artifacts/artifacts/{relative}/model"
    return f"mlflow:models:/{spec.name}/{version}", [f"{base}/MLmodel", f"{base}/weights.bin"]


def curl_sha256(urls: list[str]) -> float:
    t0 = time.perf_counter()
    for url in urls:
        out = subprocess.run(
            f"curl -sf '{url}' | sha256sum", shell=True, check=True, capture_output=True, text=True
        )
        assert len(out.stdout.split()[0]) == 64
    return time.perf_counter() - t0


def check_command(
    ref: str, server: MlflowServer, db: str, settings_env: dict[str, str]
) -> tuple[float, int, int]:
    """``policygate check`` in a fresh process: (seconds, exit code, peak RSS in MiB)."""
    exe = str(Path(sys.executable).parent / "policygate")
    env = {**os.environ, **settings_env, "POLICYGATE_DB_URL": db}
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [exe, "check", ref, "-t", "staging", "--mlflow-uri", server.url, "-f", "json"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    return time.perf_counter() - t0, os.waitstatus_to_exitcode(status), usage.ru_maxrss // 1024


def replaced_is_caught(service: Any, server: MlflowServer, ref: str, allowed: Any) -> str:
    """One byte in the middle of the weights replaced in the store after the allow (same size, same
    modification time): the next decision must deny it with INT-002."""
    if allowed.outcome != "allow":
        return f"not checked (the decision was {allowed.outcome}: {[r.id for r in allowed.reasons]})"
    weights = next((server.data_dir / "artifacts").rglob("weights.bin"))
    for path in (server.data_dir / "artifacts").rglob("weights.bin"):  # this version's: the newest
        weights = path if path.stat().st_mtime > weights.stat().st_mtime else weights
    stat = weights.stat()
    with weights.open("r+b") as fh:
        fh.seek(stat.st_size // 2)
        byte = fh.read(1)
        fh.seek(stat.st_size // 2)
        fh.write(bytes([byte[0] ^ 1]))
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    after = service.decide(parse(ref), Target(stage="staging"), "bench")
    ids = [r.id for r in after.reasons]
    assert "INT-002" in ids, (after.outcome, ids)
    return f"INT-002 ({after.outcome})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes-mb", default="100,1024,3072")
    parser.add_argument("--n", type=int, default=1, help="decisions and curls per size (median)")
    parser.add_argument("--timeout-s", type=float, default=600)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes_mb.split(",")]
    budget = {
        "POLICYGATE_ARTIFACTS__MAX_BYTES": str((max(sizes) + 1) * MIB),
        "POLICYGATE_ARTIFACTS__TIMEOUT_S": str(args.timeout_s),
        "POLICYGATE_EVIDENCE_CACHE_TTL_S": "0",
    }
    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="integrity-bench-"))
    try:
        with MlflowServer(tmp / "mlflow", serve_artifacts=True) as server:
            spec = ModelSpec("bench-files")
            settings = Settings(
                db_url=f"sqlite:///{tmp}/decisions.db",
                mlflow_uri=server.url,
                evidence_cache_ttl_s=0,
                artifacts=ArtifactSettings(max_bytes=(max(sizes) + 1) * MIB, timeout_s=args.timeout_s),
            )
            with open_service(settings) as service:
                for mb in sizes:
                    ref, urls = version_of(server, spec, mb)
                    target = Target(stage="staging")
                    curls, decisions = [], []
                    for _ in range(args.n):
                        curls.append(curl_sha256(urls))
                        t0 = time.perf_counter()
                        decision = service.decide(parse(ref), target, "bench")
                        decisions.append(time.perf_counter() - t0)
                        assert decision.outcome in ("allow", "deny"), decision
                    evidence = service.collect(parse(ref), target, "bench")
                    assert evidence.artifacts is not None, evidence.artifacts_unverified
                    assert evidence.artifacts.size >= mb * MIB, evidence.artifacts.files  # all of it hashed
                    command, code, rss = check_command(ref, server, f"sqlite:///{tmp}/cli.db", budget)
                    assert code in (0, 1), code
                    caught = replaced_is_caught(service, server, ref, decision)
                    rows.append((mb, statistics.median(curls), statistics.median(decisions), command, rss))
                    print(
                        f"{mb} MiB: curl|sha256sum {rows[-1][1]:.2f} s, decision {rows[-1][2]:.2f} s "
                        f"({rows[-1][2] / rows[-1][1]:.2f}x), policygate check {command:.2f} s, "
                        f"peak RSS {rss} MiB; one byte replaced after the allow: {caught}",
                        file=sys.stderr,
                    )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    in_process = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    if args.markdown:
        print("| files | curl \\| sha256sum | decision | ratio | MiB/s | `policygate check` | its peak RSS |")
        print("|---|---|---|---|---|---|---|")
    for mb, curl_s, decision_s, command_s, rss in rows:
        line = (
            f"{mb} MiB | {curl_s:.2f} s | {decision_s:.2f} s | {decision_s / curl_s:.2f}x | "
            f"{mb / decision_s:.0f} | {command_s:.2f} s | {rss} MiB"
        )
        print(f"| {line} |" if args.markdown else line)
    print(f"\npeak RSS of this process (server-side decisions, all sizes): {in_process} MiB")


if __name__ == "__main__":
    main()
