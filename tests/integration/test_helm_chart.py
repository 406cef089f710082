"""The Helm chart deploy/helm/policygate, checked with the pinned helm (`helm lint`, `helm template`;
no cluster here): probes, security context, the OPA sidecar's wiring, no secret in plain values; and
the OPA configuration it renders, run by a stock OPA against a real `policygate serve`, activates the
signed bundle."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from policygate.demo.mlflow_server import free_port
from policygate.engine.opa import OpaEngine
from tests.support.checkout import EXAMPLES, ROOT, opa_binary
from tests.support.keys import rsa_pair
from tests.support.processes import bundle_active, wait_bundle_active
from tests.support.served import Served
from tests.support.tokens import token

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


def test_the_sidecar_is_locked_to_its_pod_and_holds_only_the_bundle_token(
    public_key: tuple[Path, Path],
) -> None:
    """The OPA sidecar answers on loopback only, with token authentication and the managed OPA's
    authorization rule; the token comes from the Secret for both containers; it mounts no signing key."""
    kinds = rendered(public_key[1], "checkpoint.enabled=true")
    pod = kinds["Deployment"][0]["spec"]["template"]["spec"]
    containers = {c["name"]: c for c in pod["containers"]}
    app, opa = containers["policygate"], containers["opa"]
    args = opa["args"]
    addrs = [a.split("=", 1)[1] for a in args if a.startswith("--addr=")]
    assert addrs == ["127.0.0.1:8181"]
    assert "--authentication=token" in args and "--authorization=basic" in args
    assert args[-1] == "/config/authz.rego" and "authz.rego" in kinds["ConfigMap"][0]["data"]
    assert [p["name"] for p in opa["ports"]] == ["opa-health"]  # no port of the API is declared
    for probe in ("livenessProbe", "readinessProbe"):
        assert opa[probe]["httpGet"]["port"] == "opa-health" and opa[probe]["httpGet"]["path"].startswith(
            "/health"
        )
    from_secret = {"secretKeyRef": {"name": "policygate", "key": "opa-token"}}
    for c in (app, opa):
        assert {e["name"]: e.get("valueFrom") for e in c["env"]}["POLICYGATE_OPA_TOKEN"] == from_secret

    volumes = {v["name"]: v for v in pod["volumes"]}
    mounted = [volumes[m["name"]] for m in opa["volumeMounts"]]
    keys = {item["key"] for v in mounted if "secret" in v for item in v["secret"]["items"]}
    assert keys == {"bundle-token"}
    assert all("secret" in v or "configMap" in v for v in mounted)
    app_keys = {
        item["key"]
        for m in app["volumeMounts"]
        if "secret" in volumes[m["name"]]
        for item in volumes[m["name"]]["secret"]["items"]
    }
    assert app_keys == {"bundle-signing-key", "checkpoint-key"}


def test_the_checkpoint_key_directory_and_witness_are_wired_when_given(public_key: tuple[Path, Path]) -> None:
    def app_of(*sets: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        pod = rendered(public_key[1], *sets)["Deployment"][0]["spec"]["template"]["spec"]
        app = next(c for c in pod["containers"] if c["name"] == "policygate")
        return app, {e["name"]: e.get("value") for e in app["env"]}, {v["name"]: v for v in pod["volumes"]}

    app, env, volumes = app_of()
    assert "POLICYGATE_CHECKPOINT_KEY" not in env and "checkpoints" not in volumes
    app, env, volumes = app_of("checkpoint.enabled=true")
    assert env["POLICYGATE_CHECKPOINT_KEY"] == "/secrets/checkpoint-key"
    assert (
        env["POLICYGATE_CHECKPOINT_DIR"] == "/checkpoints" and "POLICYGATE_CHECKPOINT_WITNESS_URL" not in env
    )
    mount = next(m for m in app["volumeMounts"] if m["name"] == "checkpoints")
    assert mount["mountPath"] == "/checkpoints" and not mount.get("readOnly")
    assert "emptyDir" in volumes["checkpoints"]
    _, env, volumes = app_of(
        "checkpoint.enabled=true", "checkpoint.existingClaim=pg-checkpoints",
        "checkpoint.witnessUrl=https://witness.example/v1",
    )  # fmt: skip
    assert volumes["checkpoints"]["persistentVolumeClaim"] == {"claimName": "pg-checkpoints"}
    assert env["POLICYGATE_CHECKPOINT_WITNESS_URL"] == "https://witness.example/v1"


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
        (tmp_path / "authz.rego").write_text(kinds["ConfigMap"][0]["data"]["authz.rego"])
        port, health = free_port(), free_port()
        sidecar = next(
            c for c in kinds["Deployment"][0]["spec"]["template"]["spec"]["containers"] if c["name"] == "opa"
        )
        ours = {
            "--addr": f"--addr=127.0.0.1:{port}",
            "--diagnostic-addr": f"--diagnostic-addr=127.0.0.1:{health}",
            "--config-file": f"--config-file={tmp_path / 'config.yaml'}",
        }
        args = [ours.get(a.split("=", 1)[0], a) for a in sidecar["args"]]  # the chart's, with our ports
        args[-1] = str(tmp_path / "authz.rego")
        secret = "s3cret-opa-token-0123456789"
        opa = subprocess.Popen(
            [opa_binary(), *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "POLICYGATE_OPA_TOKEN": secret},
        )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_bundle_active(f"http://127.0.0.1:{health}")  # the probes' port, without the token
            assert bundle_active(url)
            compliant = json.loads((EXAMPLES / "compliant.json").read_text())
            engine = OpaEngine(url, token=secret)
            decision, revision = engine.evaluate_revised(compliant)
            assert decision["allow"] is True and revision == engine.policy_revision
            engine.close()
            # without the token, or with another, nothing but /health: no waiver can be written
            waiver = {"id": "all", "rules": ["*"]}
            for headers in ({}, {"Authorization": "Bearer not-the-token-0123456789"}):
                assert requests.put(f"{url}/v1/data/policygate_waivers/x", json=waiver, headers=headers,
                                    timeout=5).status_code == 401  # fmt: skip
                assert requests.post(f"{url}/v1/data/policygate/decision", json={"input": compliant},
                                     headers=headers, timeout=5).status_code == 401  # fmt: skip
                assert (
                    requests.get(f"http://127.0.0.1:{health}/metrics", headers=headers, timeout=5).status_code
                    == 401
                )
        finally:
            opa.terminate()
            opa.wait(timeout=10)
