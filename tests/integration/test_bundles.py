"""`policygate bundle build`: a signed OPA bundle that a stock `opa run --verification-key` accepts and
that decides like the policy directory does, refused with another key; a refused policy is never
bundled; and the revision a decision records is the one OPA's provenance names for that very query."""

from __future__ import annotations

import asyncio
import json
import subprocess
import tarfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from typer.testing import CliRunner

from policygate.cli import app
from policygate.decisions.log import DecisionLog
from policygate.decisions.service import DecisionService
from policygate.demo.mlflow_server import free_port
from policygate.engine.opa import OpaEngine
from policygate.evidence import EvidenceV1
from policygate.policy.load import load_policy
from tests.support.checkout import EXAMPLES, REGO, opa_binary, policy_copy, without_shipped_tests
from tests.support.keys import rsa_pair
from tests.support.processes import bundle_active, opa_pulling, wait_bundle_active
from tests.support.served import Served

runner = CliRunner()


def build(policy_dir: Path, out: Path, *extra: str) -> Any:
    return runner.invoke(app, ["bundle", "build", "--policy-dir", str(policy_dir), "--out", str(out), *extra])


@contextmanager
def stock_opa(bundle: Path, public_key: Path) -> Iterator[str]:
    """A plain `opa run --server` on the bundle, verifying its signature (no policygate involved)."""
    port = free_port()
    cmd = [opa_binary(), "run", "--server", "--addr", f"127.0.0.1:{port}", "--bundle", str(bundle)]
    proc = subprocess.Popen(
        [*cmd, "--verification-key", str(public_key)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_bundle_active(url, proc=proc)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_a_signed_bundle_is_accepted_by_a_stock_opa_and_decides_like_the_directory(tmp_path: Path) -> None:
    private, public = rsa_pair(tmp_path, "bundle")
    out = tmp_path / "policygate.tar.gz"
    result = build(REGO, out, "--signing-key", str(private))
    assert result.exit_code == 0, result.output
    with tarfile.open(out) as tar:
        names = sorted(m.name.lstrip("/") for m in tar.getmembers())
        manifest = json.loads(
            tar.extractfile(next(m for m in tar.getmembers() if m.name.endswith(".manifest"))).read()
        )  # type: ignore[union-attr]
    assert ".signatures.json" in names and "data.json" in names and "policygate/main.rego" in names
    assert not any(n.endswith("_test.rego") for n in names)  # tests stay out
    report, directory = load_policy(opa_binary(), REGO)
    assert directory is not None
    try:
        assert manifest["revision"] == report.revision and manifest["roots"] == [
            "policygate",
            "policygate_params",
        ]
        assert report.revision in result.output
        with stock_opa(out, public) as url:
            bundled = OpaEngine(url)
            assert bundled.policy_revision == report.revision  # the same formula over what OPA holds
            for example in sorted(EXAMPLES.glob("*.json")):
                doc = json.loads(example.read_text())
                decision, revision = bundled.evaluate_revised(doc)
                assert revision == report.revision
                assert decision == directory.evaluate(doc), example.name
            bundled.close()
    finally:
        directory.close()


def test_another_key_is_refused_by_opa_and_a_refused_policy_is_never_bundled(tmp_path: Path) -> None:
    private, _ = rsa_pair(tmp_path, "ours")
    _, theirs = rsa_pair(tmp_path, "theirs")
    out = tmp_path / "b.tar.gz"
    assert build(REGO, out, "--signing-key", str(private)).exit_code == 0
    refused = subprocess.run(
        [opa_binary(), "run", "--server", "--addr", f"127.0.0.1:{free_port()}", "--bundle", str(out),
         "--verification-key", str(theirs)],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert refused.returncode != 0 and "verification error" in refused.stdout + refused.stderr

    broken = policy_copy(tmp_path)
    (broken / "policygate" / "main.rego").write_text("package policygate\n\ndecision := {\n")
    missing = tmp_path / "never.tar.gz"
    result = build(broken, missing, "--signing-key", str(private))
    assert result.exit_code == 2 and "refused, no bundle written" in result.output
    assert not missing.exists() and not Path(f"{missing}.partial").exists()
    assert build(REGO, missing, "--signing-alg", "none").exit_code == 2


def test_a_decision_records_the_revision_opa_used_for_it(
    tmp_path: Path, compliant: dict[str, Any], decision_log: DecisionLog
) -> None:
    """The service's own idea of the revision (cached, or read after the query) does not count when
    OPA's provenance names the bundle revision that answered: sync and async paths alike."""
    private, public = rsa_pair(tmp_path, "bundle")
    stricter = without_shipped_tests(policy_copy(tmp_path), keep_helpers=False)  # they assume 1
    data = json.loads((stricter / "data.json").read_text())
    data["policygate_params"]["required_approvals"]["production"]["medium"] = 3
    (stricter / "data.json").write_text(json.dumps(data))
    out = tmp_path / "stricter.tar.gz"
    assert build(stricter, out, "--signing-key", str(private)).exit_code == 0
    with tarfile.open(out) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith(".manifest"))
        revision = json.loads(tar.extractfile(member).read())["revision"]  # type: ignore[union-attr]
    with stock_opa(out, public) as url:
        engine = OpaEngine(url)
        engine.note_revision("sha256:" + "0" * 64)  # a stale idea of the revision, as mid-rollout
        service = DecisionService(engine, decision_log)
        evidence = EvidenceV1.model_validate(compliant)
        decided = service.evaluate(evidence)
        assert decided.policy_revision == revision and decided.outcome == "deny"
        decided_async = asyncio.run(service.evaluate_async(evidence))
        assert decided_async.policy_revision == revision
        assert decision_log.get(decided.decision_id)["decision"]["policy_revision"] == revision  # type: ignore[index]
        engine.close()


def test_serve_hands_its_signed_bundle_to_an_opa_that_pulls_it(tmp_path: Path, sqlite_url: str) -> None:
    private, public = rsa_pair(tmp_path, "bundle")
    _, theirs = rsa_pair(tmp_path, "theirs")
    env = {"POLICYGATE_DB_URL": sqlite_url, "POLICYGATE_BUNDLE_SIGNING_KEY": str(private)}
    with Served(env) as served:
        first = requests.get(f"{served.base}/v1/bundles/policygate.tar.gz", timeout=60)
        assert first.status_code == 200 and first.headers["content-type"] == "application/gzip"
        etag = first.headers["etag"]
        revision = requests.get(f"{served.base}/v1/policy", timeout=10).json()["policy_revision"]
        assert etag == f'"{revision}"'
        again = requests.get(
            f"{served.base}/v1/bundles/policygate.tar.gz", headers={"If-None-Match": etag}, timeout=10
        )
        assert again.status_code == 304 and again.content == b""

        cmd, _ = opa_pulling(tmp_path, served.base, public, "sidecar")
        port = cmd[cmd.index("--addr") + 1].rsplit(":", 1)[1]
        sidecar = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_bundle_active(url)
            engine = OpaEngine(url)
            _, used = engine.evaluate_revised(json.loads((EXAMPLES / "compliant.json").read_text()))
            assert used == revision
            engine.close()
        finally:
            sidecar.terminate()
            sidecar.wait(timeout=10)

        cmd, _ = opa_pulling(tmp_path, served.base, theirs, "wrong-key")
        port = cmd[cmd.index("--addr") + 1].rsplit(":", 1)[1]
        refusing = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            time.sleep(3)  # two polls at least
            assert not bundle_active(f"http://127.0.0.1:{port}")
        finally:
            refusing.terminate()
            out, _ = refusing.communicate(timeout=10)
        assert b"verification error" in out or b"verify" in out

    with Served({"POLICYGATE_DB_URL": sqlite_url}) as unsigned:
        answer = requests.get(f"{unsigned.base}/v1/bundles/policygate.tar.gz", timeout=10)
        assert answer.status_code == 503 and "never served" in answer.json()["message"]


def test_a_refused_bundle_leaves_the_last_good_policy_deciding_and_readyz_says_so(
    tmp_path: Path, sqlite_url: str, compliant: dict[str, Any]
) -> None:
    """A sidecar OPA pulling from a plain HTTP bundle server: when the next bundle's signature does
    not verify, OPA keeps the active one, policygate goes on deciding with its revision, and /readyz
    names the refusal (still ready: every replica unready at once would be an outage)."""
    import functools
    import http.server
    import threading

    private, public = rsa_pair(tmp_path, "ours")
    stranger, _ = rsa_pair(tmp_path, "stranger")
    root = tmp_path / "www" / "v1" / "bundles"
    root.mkdir(parents=True)
    bundle = root / "policygate.tar.gz"
    assert build(REGO, bundle, "--signing-key", str(private)).exit_code == 0
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "www"))
    files = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=files.serve_forever, daemon=True).start()
    cmd, _ = opa_pulling(tmp_path, f"http://127.0.0.1:{files.server_address[1]}", public, "sidecar")
    sidecar = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        opa_url = "http://" + cmd[cmd.index("--addr") + 1]
        wait_bundle_active(opa_url)
        with Served({"POLICYGATE_DB_URL": sqlite_url, "POLICYGATE_OPA_URL": opa_url}) as served:
            good = requests.post(
                f"{served.base}/v1/evaluate", json={"evidence": compliant}, timeout=10
            ).json()
            ready = requests.get(f"{served.base}/readyz", timeout=10).json()
            assert ready["bundles"]["policygate"] == {
                "active_revision": good["policy_revision"],
                "refused": None,
            }
            assert "warnings" not in ready
            metrics = requests.get(f"{served.base}/metrics", timeout=10).text
            assert "policygate_opa_bundles_refused 0.0" in metrics

            stricter = without_shipped_tests(policy_copy(tmp_path), keep_helpers=False)
            data = json.loads((stricter / "data.json").read_text())
            data["policygate_params"]["required_approvals"]["production"]["medium"] = 3
            (stricter / "data.json").write_text(json.dumps(data))
            assert build(stricter, bundle, "--signing-key", str(stranger)).exit_code == 0  # wrong key
            deadline = time.monotonic() + 15
            while True:
                answer = requests.get(f"{served.base}/readyz", timeout=10)
                if answer.json().get("warnings"):
                    break
                assert time.monotonic() < deadline, answer.text
                time.sleep(0.3)
            assert answer.status_code == 200
            (warning,) = answer.json()["warnings"]
            assert "refused" in warning and "verif" in warning and good["policy_revision"] in warning
            metrics = requests.get(f"{served.base}/metrics", timeout=10).text
            assert "policygate_opa_bundles_refused 1.0" in metrics
            still = requests.post(
                f"{served.base}/v1/evaluate", json={"evidence": compliant}, timeout=10
            ).json()
            assert still["outcome"] == "allow" and still["policy_revision"] == good["policy_revision"]
    finally:
        sidecar.terminate()
        sidecar.wait(timeout=10)
        files.shutdown()


def test_serve_can_run_its_own_opa_pulling_signed_bundles(
    tmp_path: Path, sqlite_url: str, compliant: dict[str, Any]
) -> None:
    """POLICYGATE_BUNDLE_PULL__*: no policy directory is loaded; the managed OPA pulls and verifies the
    bundle, decisions carry its revision and its rules; a wrong verification key is never ready."""
    import functools
    import http.server
    import threading

    private, public = rsa_pair(tmp_path, "ours")
    _, theirs = rsa_pair(tmp_path, "theirs")
    root = tmp_path / "www" / "v1" / "bundles"
    root.mkdir(parents=True)
    assert build(REGO, root / "policygate.tar.gz", "--signing-key", str(private)).exit_code == 0
    with tarfile.open(root / "policygate.tar.gz") as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith(".manifest"))
        revision = json.loads(tar.extractfile(member).read())["revision"]  # type: ignore[union-attr]
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "www"))
    files = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=files.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{files.server_address[1]}/v1"
    empty = tmp_path / "no-policies"  # nothing to load: the policies come from the bundle alone
    empty.mkdir()
    env = {
        "POLICYGATE_DB_URL": sqlite_url,
        "POLICYGATE_POLICY_DIR": str(empty),
        "POLICYGATE_BUNDLE_PULL__URL": base,
        "POLICYGATE_BUNDLE_PULL__MIN_DELAY_S": "1",
        "POLICYGATE_BUNDLE_PULL__MAX_DELAY_S": "2",
    }
    try:
        with Served({**env, "POLICYGATE_BUNDLE_PULL__VERIFICATION_KEY": str(public)}) as served:
            decided = requests.post(
                f"{served.base}/v1/evaluate", json={"evidence": compliant}, timeout=10
            ).json()
            assert decided["outcome"] == "allow" and decided["policy_revision"] == revision
            assert len(decided["rules_checked"]) >= 17
            ready = requests.get(f"{served.base}/readyz", timeout=10).json()
            assert ready["ready"] and ready["bundles"]["policygate"]["active_revision"] == revision
        wrong = Served({**env, "POLICYGATE_BUNDLE_PULL__VERIFICATION_KEY": str(theirs)}, ready_timeout_s=8)
        with pytest.raises(AssertionError, match="did not become ready"), wrong:
            pass
        assert '"GET /readyz HTTP/1.1" 503' in wrong.output  # never ready: no bundle is active
    finally:
        files.shutdown()


def test_a_policy_directory_with_its_own_system_package_still_loads(tmp_path: Path) -> None:
    """OPA's `system` package beside the policies would overlap the managed OPA's authorization
    bundle: such a directory is loaded as files (its revision read beside each query)."""
    policy = policy_copy(tmp_path)
    (policy / "policygate" / "system_log.rego").write_text(
        'package system.log\n\nmask contains "/input/ownership"\n'
    )
    report, engine = load_policy(opa_binary(), policy)
    assert engine is not None, report.errors
    try:
        decision, revision = engine.evaluate_revised(json.loads((EXAMPLES / "compliant.json").read_text()))
        assert decision["allow"] is True and revision is None and engine.policy_revision == report.revision
    finally:
        engine.close()


def test_yaml_data_beside_the_policies_is_bundled_under_its_own_root(tmp_path: Path) -> None:
    """The bundle holds what a load reads (YAML data too) and owns the roots of the policy's own
    packages and data, so a stock OPA activates it and serves that data."""
    private, public = rsa_pair(tmp_path, "bundle")
    policy = policy_copy(tmp_path)
    (policy / "extra.yaml").write_text("policygate_extra:\n  answer: 42\n")
    out = tmp_path / "b.tar.gz"
    assert build(policy, out, "--signing-key", str(private)).exit_code == 0
    with tarfile.open(out) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith(".manifest"))
        manifest = json.loads(tar.extractfile(member).read())  # type: ignore[union-attr]
    assert manifest["roots"] == ["policygate", "policygate_extra", "policygate_params"]
    with stock_opa(out, public) as url:  # (opa build merges the YAML into the bundle's data)
        assert requests.get(f"{url}/v1/data/policygate_extra/answer", timeout=5).json()["result"] == 42


def test_data_files_of_any_name_reach_the_managed_opa_and_a_conflict_is_refused(tmp_path: Path) -> None:
    """Loaded as files, OPA reads any JSON or YAML file as data at its directory's path; a bundle only
    data.json: the managed OPA's copy merges each directory's data files, so a policy that keeps its
    parameters in params.json decides with them (and the revision OPA reports is the loaded one)."""
    policy = policy_copy(tmp_path)
    (policy / "data.json").rename(policy / "params.json")
    report, engine = load_policy(opa_binary(), policy)
    assert engine is not None, report.errors
    try:
        assert engine.get_data("policygate_params")["max_approval_age_days"] == 90
        assert engine.policy_revision == report.revision
        decision, revision = engine.evaluate_revised(json.loads((EXAMPLES / "compliant.json").read_text()))
        assert decision["allow"] is True and revision == report.revision
    finally:
        engine.close()
    (policy / "extra.json").write_text(json.dumps({"policygate_params": {"max_approval_age_days": 30}}))
    refused, none = load_policy(opa_binary(), policy)
    assert none is None and [e.code for e in refused.errors] == ["data_conflict"]
