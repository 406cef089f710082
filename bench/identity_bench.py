"""Benchmark: what the identity directory adds to a decision (issue 29): directory off, a file:
directory, and a real SCIM server (scim2-server) on loopback with the cache cold (every lookup asks
the server: POLICYGATE_DIRECTORY_CACHE_S=0) and warm. Each decision is the directory lookup for the
evidence's owner, approvers and deployment identity, then the real OPA's evaluation of the result;
the platform reads (MLflow, Azure ML) are the same in every mode and left out.

    .venv/bin/python bench/identity_bench.py [--n 200]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests
import yaml
from percentiles import pct

from policygate.config import Settings
from policygate.demo.mlflow_server import free_port
from policygate.engine.opa import OpaEngine
from policygate.evidence import EvidenceV1
from policygate.runtime.engines import start_engine
from policygate.sources.directory import build_directory
from policygate.sources.identities import identities_of

ROOT = Path(__file__).resolve().parents[1]
PEOPLE = ["alice@example.com", "bob@example.com", "dave@example.com"]
PRINCIPAL = "3c9e1f52-7a4b-4d8e-9f01-2b6c5d8e7a10"


def scim_server() -> tuple[str, subprocess.Popen[bytes]]:
    port = free_port()
    exe = str(Path(sys.executable).with_name("scim2-server"))
    proc = subprocess.Popen([exe, "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if requests.get(f"{url}/ServiceProviderConfig", timeout=1).ok:
                break
        except requests.RequestException:
            time.sleep(0.1)
    for name in PEOPLE:
        user = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name, "active": True}
        requests.post(f"{url}/Users", json=user, timeout=5).raise_for_status()
    return url, proc


def run(n: int, engine: OpaEngine, evidence: EvidenceV1, lookup: Callable[[EvidenceV1], None]) -> list[float]:
    times = []
    for _ in range(n):
        doc = evidence.model_copy(deep=True)
        t = time.perf_counter()
        lookup(doc)
        engine.evaluate(doc.to_input())
        times.append((time.perf_counter() - t) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200)
    args = parser.parse_args()
    raw = json.loads((ROOT / "examples/evidence/compliant.json").read_text())
    raw.pop("identities")
    evidence = EvidenceV1.model_validate(raw)
    tmp = Path(tempfile.mkdtemp())
    (tmp / "dir.yaml").write_text(
        yaml.safe_dump(
            {
                "people": [
                    {"id": p, "active": True, "kind": "person", "groups": ["model-risk"]} for p in PEOPLE
                ],
                "services": [{"id": PRINCIPAL, "owners": ["alice@example.com"]}],
            }
        )
    )
    engine = start_engine(None, Settings().opa_binary, ROOT / "rego")
    url, proc = scim_server()
    try:

        def with_dir(spec: str, cache_s: float) -> Callable[[EvidenceV1], None]:
            directory = build_directory(spec, None, 10.0, cache_s)
            assert directory is not None

            def look(doc: EvidenceV1) -> None:
                doc.identities, _ = identities_of(doc, directory)

            look(evidence.model_copy(deep=True))  # warm-up: imports, connection, first cache fill
            return look

        modes = {
            "directory off": lambda doc: None,
            "file:": with_dir(f"file:{tmp / 'dir.yaml'}", 300),
            "scim: cold (cache 0)": with_dir(f"scim:{url}", 0),
            "scim: warm (cache 300 s)": with_dir(f"scim:{url}", 300),
        }
        print(f"| mode (n={args.n}) | p50 ms | p95 ms | mean ms |\n|---|---|---|---|")
        for name, look in modes.items():
            run(10, engine, evidence, look)
            t = run(args.n, engine, evidence, look)
            print(f"| {name} | {pct(t, 50):.2f} | {pct(t, 95):.2f} | {sum(t) / len(t):.2f} |")
    finally:
        proc.terminate()
        engine.close()


if __name__ == "__main__":
    main()
