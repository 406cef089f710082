"""The Helm chart deploy/helm/policygate, checked with the pinned helm (`helm lint`, `helm template`;
no cluster here): probes, security context, the OPA sidecar's wiring, no secret in plain values; and
the OPA configuration it renders, run by a stock OPA against a real `policygate serve`, activates the
signed bundle."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from policygate.demo.mlflow_server import free_port
from policygate.engine.opa import OpaEngine
from tests.conftest import EXAMPLES, ROOT, opa_binary, token
from tests.keys import rsa_pair
from tests.processes import wait_bundle_active
from tests.served import Served

CHART = ROOT / "deploy" / "helm" / "policygate"
HELM = ROOT / ".bin" / "helm"


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    assert HELM.exists(), f"{HELM} is missing: `make setup` builds it (scripts/ensure-helm.sh)"
    return subprocess.run([str(HELM), *args], capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def public_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return rsa_pair(tmp_path_factory.mktemp("keys"), "bundle")


def rendered(public: Path, *sets: str) -> dict[str, list[dict[str, Any]]]:
    args = [
        "template",
        "pg",
        str(CHART),
        "--namespace",
        "ml",
        "--set-file",
        f"opa.bundleVerificationKey={public}",
    ]
    for s in sets:
        args += ["--set", s]
    proc = helm(*args)
    assert proc.returncode == 0, proc.stderr
    found: dict[str, list[dict[str, Any]]] = {}
    for doc in yaml.safe_load_all(proc.stdout):
        if doc:
            found.setdefault(doc["kind"], []).append(doc)
    return found


def test_lint_and_a_missing_verification_key_is_named(public_key: tuple[Path, Path]) -> None:
    ok = helm("lint", str(CHART), "--set-file", f"opa.bundleVerificationKey={public_key[1]}")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    linted = helm("lint", str(CHART))  # helm lint only notes a missing required value ...
    assert "Missing required value: opa.bundleVerificationKey" in linted.stdout + linted.stderr
    missing = helm("template", "pg", str(CHART))  # ... rendering refuses it
    assert missing.returncode != 0 and "opa.bundleVerificationKey" in missing.stderr


def test_the_rendered_manifests(public_key: tuple[Path, Path]) -> None:
    kinds = rendered(public_key[1])
    assert sorted(kinds) == [
        "ConfigMap", "Deployment", "HorizontalPodAutoscaler",
        "NetworkPolicy", "PodDisruptionBudget", "Service",
    ]  # fmt: skip
    pod = kinds["Deployment"][0]["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 10001
    containers = {c["name"]: c for c in pod["containers"]}
    assert sorted(containers) == ["opa", "policygate"]
    for c in containers.values():
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]
    app, opa = containers["policygate"], containers["opa"]
    assert app["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert app["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert opa["image"] == "openpolicyagent/opa:1.22.3-static"  # the official image, pinned
    assert opa["readinessProbe"]["httpGet"]["path"] == "/health?bundles=true"
    env = {e["name"]: e for e in app["env"]}
    assert env["POLICYGATE_OPA_URL"]["value"] == "http://127.0.0.1:8181"  # the sidecar of this pod
    assert env["POLICYGATE_DB_URL"]["valueFrom"]["secretKeyRef"] == {"name": "policygate", "key": "db-url"}
    assert env["POLICYGATE_AUTH_REQUIRED"]["value"] == "true"
    assert {m["mountPath"] for m in app["volumeMounts"]} == {
        "/secrets",
        "/tmp",
    }  # /tmp: the only writable place

    # no secret in plain values: every value in the chart's defaults and in the manifests is harmless
    text = json.dumps(kinds) + (CHART / "values.yaml").read_text()
    for marker in ("postgresql://", "BEGIN RSA PRIVATE", "BEGIN PRIVATE", "pgt_", "password"):
        assert marker not in text, marker

    config = yaml.safe_load(kinds["ConfigMap"][0]["data"]["config.yaml"])
    service = config["services"]["policygate"]
    bundle = config["bundles"]["policygate"]
    assert service["url"] == "http://pg-policygate.ml.svc:8080/v1"
    assert f"{service['url']}/{bundle['resource']}".endswith("/v1/bundles/policygate.tar.gz")
    assert bundle["signing"]["keyid"] == "policygate" and config["keys"]["policygate"]["algorithm"] == "RS256"
    assert "BEGIN PUBLIC KEY" in config["keys"]["policygate"]["key"]
    assert service["credentials"]["bearer"]["token_path"] == "/secrets/bundle-token"

    policy = kinds["NetworkPolicy"][0]["spec"]
    assert policy["policyTypes"] == ["Ingress"] and [p["port"] for p in policy["ingress"][0]["ports"]] == [
        "http"
    ]
    assert kinds["HorizontalPodAutoscaler"][0]["spec"]["minReplicas"] == 2
    assert kinds["PodDisruptionBudget"][0]["spec"]["minAvailable"] == 1
    assert "replicas" not in kinds["Deployment"][0]["spec"]  # the autoscaler owns it
    fixed = rendered(public_key[1], "autoscaling.enabled=false", "replicaCount=3")
    assert "HorizontalPodAutoscaler" not in fixed and fixed["Deployment"][0]["spec"]["replicas"] == 3


def test_the_rendered_opa_config_pulls_the_signed_bundle_from_serve(
    public_key: tuple[Path, Path], tmp_path: Path, sqlite_url: str
) -> None:
    """The chart's OPA configuration, pointed at a real `policygate serve` (authentication required,
    the sidecar's read token), run by a stock OPA: the bundle is pulled, verified and decides."""
    private, public = public_key
    kinds = rendered(public)
    config = yaml.safe_load(kinds["ConfigMap"][0]["data"]["config.yaml"])
    bearer = tmp_path / "bundle-token"
    bearer.write_text(token(sqlite_url, "opa-sidecar", "read"))
    env = {
        "POLICYGATE_DB_URL": sqlite_url,
        "POLICYGATE_BUNDLE_SIGNING_KEY": str(private),
        "POLICYGATE_AUTH_REQUIRED": "true",
    }
    with Served(env) as served:
        config["services"]["policygate"]["url"] = f"{served.base}/v1"
        config["services"]["policygate"]["credentials"]["bearer"]["token_path"] = str(bearer)
        config["bundles"]["policygate"]["polling"] = {"min_delay_seconds": 1, "max_delay_seconds": 2}
        (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
        port = free_port()
        cmd = [
            opa_binary(),
            "run",
            "--server",
            f"--addr=127.0.0.1:{port}",
            f"--config-file={tmp_path / 'config.yaml'}",
        ]
        opa = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_bundle_active(url)
            engine = OpaEngine(url)
            decision, revision = engine.evaluate_revised(
                json.loads((EXAMPLES / "compliant.json").read_text())
            )
            assert decision["allow"] is True and revision == engine.policy_revision
            engine.close()
        finally:
            opa.terminate()
            opa.wait(timeout=10)
