"""Scale-out the way OPA runs at scale, on loopback: one bundle server (a `policygate serve` handing out
its signed bundle), three `policygate serve` replicas each deciding with its own stock OPA that pulls
and verifies that bundle, one PostgreSQL log; bounded load; a policy change rolled out mid-load, then a
replica killed. Every answered decision is in the log, the chain verifies, and each decision's
recorded revision is the one that made it: replaying its evidence under that revision gives the same
outcome."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import requests

from policygate.decisions.log import DecisionLog
from policygate.policy.load import load_policy
from tests.support.checkout import load_example, opa_binary, policy_copy, without_shipped_tests
from tests.support.keys import rsa_pair
from tests.support.processes import assert_all_recorded, opa_pulling, wait_bundle_active
from tests.support.served import Served

REPLICAS = 3
WORKERS_PER_REPLICA = 3
DEADLINE_S = 120


@contextmanager
def sidecar(tmp_path: Path, bundle_base: str, public: Path, name: str) -> Iterator[str]:
    """A stock OPA pulling the signed bundle every second or two; yields its URL once it is active."""
    cmd, config = opa_pulling(tmp_path, bundle_base, public, name)
    doc = json.loads(config.read_text())
    doc["bundles"]["policygate"]["polling"] = {"min_delay_seconds": 1, "max_delay_seconds": 1}
    config.write_text(json.dumps(doc))
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = "http://" + cmd[cmd.index("--addr") + 1]
    try:
        wait_bundle_active(url)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class Load:
    """Workers posting what-if decisions round the replicas still alive; answers kept."""

    def __init__(self, bases: list[str], body: dict[str, Any]) -> None:
        self.bases, self.body = bases, body
        self.answered: list[dict[str, Any]] = []
        self.failed = 0
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self._work, args=(base,), daemon=True)
            for base in bases
            for _ in range(WORKERS_PER_REPLICA)
        ]

    def _work(self, base: str) -> None:
        with httpx.Client(base_url=base, timeout=30) as client:
            while not self.stop.is_set():
                try:
                    resp = client.post("/v1/evaluate", json=self.body)
                except httpx.HTTPError:
                    with self.lock:
                        self.failed += 1
                    return  # this replica is gone
                with self.lock:
                    if resp.status_code == 200:
                        self.answered.append(resp.json())
                    else:
                        self.failed += 1
                time.sleep(0.01)  # bounded: about a hundred requests a second in all

    def revisions_seen_since(self, start: int) -> set[str]:
        with self.lock:
            return {d["policy_revision"] for d in self.answered[start:]}


def test_a_rollout_across_three_replicas_records_each_decisions_own_revision(
    tmp_path: Path, pg_url: str
) -> None:
    private, public = rsa_pair(tmp_path, "bundle")
    policy = without_shipped_tests(
        policy_copy(tmp_path, "served-policy"), keep_helpers=False
    )  # made stricter
    before_dir = policy_copy(tmp_path / "before", "rego")
    DecisionLog(pg_url).close()  # migrate once up front, like a deployment job
    body = {"evidence": load_example("compliant")}
    with ExitStack() as stack:
        bundles = stack.enter_context(
            Served(
                {
                    "POLICYGATE_DB_URL": f"sqlite:///{tmp_path}/bundle-server.db",
                    "POLICYGATE_POLICY_DIR": str(policy),
                    "POLICYGATE_BUNDLE_SIGNING_KEY": str(private),
                }
            )
        )
        opas = [
            stack.enter_context(sidecar(tmp_path, bundles.base, public, f"opa{i}")) for i in range(REPLICAS)
        ]
        replicas = [
            stack.enter_context(Served({"POLICYGATE_DB_URL": pg_url, "POLICYGATE_OPA_URL": url}))
            for url in opas
        ]
        load = Load([r.base for r in replicas], body)
        for t in load.threads:
            t.start()
        try:
            deadline = time.monotonic() + DEADLINE_S
            while len(load.answered) < 60:
                assert time.monotonic() < deadline, "no load"
                time.sleep(0.1)
            first = load.revisions_seen_since(0)
            assert len(first) == 1, first

            # the rollout: the bundle server's policy becomes stricter while the load runs
            data = json.loads((policy / "data.json").read_text())
            data["policygate_params"]["required_approvals"]["production"]["medium"] = 3
            (policy / "data.json").write_text(json.dumps(data))
            mark = len(load.answered)
            while True:  # until every replica answers with a new revision
                probes = {
                    requests.post(r.base + "/v1/evaluate", json=body, timeout=10).json()["policy_revision"]
                    for r in replicas
                }
                if not probes & first and len(probes) == 1:
                    break
                assert time.monotonic() < deadline, f"the rollout did not complete: {probes}"
                time.sleep(0.3)
            assert load.revisions_seen_since(mark) >= probes  # the load saw the switch too
            mixed = len(load.answered)

            # a replica killed mid-load; the others keep answering
            victim = replicas[0]
            assert victim.proc is not None
            os.kill(victim.proc.pid, signal.SIGKILL)
            while len(load.answered) < mixed + 60:
                assert time.monotonic() < deadline, "the survivors stopped answering"
                time.sleep(0.1)
        finally:
            load.stop.set()
            for t in load.threads:
                t.join(timeout=30)

    answered = load.answered
    assert load.failed >= WORKERS_PER_REPLICA  # the killed replica's workers saw it go
    revisions = {d["policy_revision"] for d in answered}
    assert len(revisions) == 2 and first < revisions
    recorded = assert_all_recorded(pg_url, answered)

    # replay: each decision's evidence under the revision it recorded gives the outcome it recorded
    engines = {}
    for directory in (before_dir, policy):
        report, engine = load_policy(opa_binary(), directory)
        assert engine is not None and report.revision is not None
        engines[report.revision] = engine
    try:
        assert set(engines) == revisions, "the recorded revisions are exactly the two policies'"
        for record in recorded:
            decision = record["decision"]
            replayed = engines[decision["policy_revision"]].evaluate(record["evidence"])
            outcome = "allow" if replayed["allow"] else "deny"
            assert outcome == decision["outcome"], decision["decision_id"]
    finally:
        for engine in engines.values():
            engine.close()
    # rules_checked follows the bundle too (the sidecar's rules, read once per revision)
    assert all(len(d["rules_checked"]) >= 17 for d in answered)
    outcomes = {(d["policy_revision"], d["outcome"]) for d in answered}
    assert len(outcomes) == 2  # one outcome per revision: allow before, deny (APR-001) after
