"""The short evidence cache of the MLflow source, against a real MLflow server: a version is never
given another version's answers, an alias is always resolved afresh, entries expire, and decisions
record the evidence they were made on (with when it was read)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from mlflow.tracking import MlflowClient

from policygate.decisions.log import DecisionLog
from policygate.decisions.service import DecisionService
from policygate.demo.seed import ModelSpec, register
from policygate.evidence import Target
from policygate.refs import parse
from policygate.runtime.engines import start_engine
from policygate.sources.collect import Collector
from policygate.sources.mlflow import MlflowSource
from tests.support.checkout import REGO, opa_binary
from tests.support.tcp_proxy import TcpProxy


@pytest.fixture
def counted(mlflow_server: str) -> Iterator[tuple[str, list[str]]]:
    """The MLflow server behind a proxy that counts the REST calls reaching it: (URL, calls)."""
    seen: list[str] = []
    server = urlsplit(mlflow_server)

    def count(method: str, path: str) -> None:
        if "/mlflow/" in path:
            seen.append(path)

    with TcpProxy(server.hostname or "127.0.0.1", server.port or 80, on_request=count) as proxy:
        yield f"http://127.0.0.1:{proxy.port}", seen


@pytest.fixture
def model(mlflow_server: str) -> tuple[str, str]:
    spec = ModelSpec(f"cached-{uuid.uuid4().hex[:8]}", alias="champion")
    return spec.name, register(mlflow_server, spec)


def test_a_version_within_the_ttl_costs_one_call(
    mlflow_server: str, model: tuple[str, str], counted: tuple[str, list[str]]
) -> None:
    url, calls = counted
    name, version = model
    s = MlflowSource(url, cache_ttl_s=60)
    first = s.collect(parse(f"mlflow:models:/{name}/{version}"))
    n = len(calls)
    again = s.collect(parse(f"mlflow:models:/{name}/{version}"))
    assert n >= 4 and len(calls) == n + 1 and again.calls == 1  # the version itself, read afresh
    assert calls[-1].startswith("/api/2.0/mlflow/model-versions/get")
    assert again.subject == first.subject and again.lineage == first.lineage
    assert again.read_at == first.read_at  # the evidence says when it was really read
    s.close()


def test_an_alias_is_resolved_afresh_and_never_given_the_old_versions_evidence(
    mlflow_server: str, model: tuple[str, str], counted: tuple[str, list[str]]
) -> None:
    url, calls = counted
    name, v1 = model
    s = MlflowSource(url, cache_ttl_s=60)
    before = s.collect(parse(f"mlflow:models:/{name}@champion"))
    assert before.subject.version == v1
    n = len(calls)
    cached = s.collect(parse(f"mlflow:models:/{name}@champion"))
    assert len(calls) == n + 1 and cached.calls == 1  # only the alias lookup
    v2 = register(mlflow_server, ModelSpec(name, commit="0" * 40))  # a new run and version
    MlflowClient(mlflow_server).set_registered_model_alias(name, "champion", v2)
    after = s.collect(parse(f"mlflow:models:/{name}@champion"))  # well within the TTL
    assert after.subject.version == v2 and after.subject.ref.endswith(f"/{v2}")
    assert after.lineage.run is not None and before.lineage.run is not None
    assert after.lineage.run.id != before.lineage.run.id and after.lineage.code.commit == "0" * 40
    # and the old version, asked for by number, still gets its own answers
    old = s.collect(parse(f"mlflow:models:/{name}/{v1}"))
    assert old.subject.version == v1 and old.lineage.run is not None
    assert old.lineage.run.id == before.lineage.run.id
    s.close()


def test_tags_read_through_the_alias_are_fresh(mlflow_server: str, model: tuple[str, str]) -> None:
    name, version = model
    s = MlflowSource(mlflow_server, cache_ttl_s=60)
    s.collect(parse(f"mlflow:models:/{name}@champion"))
    MlflowClient(mlflow_server).set_model_version_tag(name, version, "approvals", "not json")
    again = s.collect(parse(f"mlflow:models:/{name}@champion"))
    assert "approvals" in again.gaps  # the version's own tags came with the fresh alias lookup
    s.close()


def test_approvals_on_a_version_reference_are_read_afresh(mlflow_server: str, model: tuple[str, str]) -> None:
    """An approval withdrawn a moment ago is never honoured from the cache."""
    name, version = model
    s = MlflowSource(mlflow_server, cache_ttl_s=60)
    ref = parse(f"mlflow:models:/{name}/{version}")
    assert s.collect(ref).approvals  # the seeded model is approved
    MlflowClient(mlflow_server).delete_model_version_tag(name, version, "approvals")
    again = s.collect(ref)
    assert again.approvals == []
    s.close()


def test_entries_expire_after_the_ttl(
    mlflow_server: str, model: tuple[str, str], counted: tuple[str, list[str]]
) -> None:
    url, calls = counted
    name, version = model
    s = MlflowSource(url, cache_ttl_s=0.5)
    ref = parse(f"mlflow:models:/{name}/{version}")
    first = s.collect(ref)
    time.sleep(0.6)
    n = len(calls)
    later = s.collect(ref)
    assert later.calls >= 4 and len(calls) - n == later.calls
    assert later.read_at is not None and first.read_at is not None and later.read_at > first.read_at
    s.close()


def test_ttl_zero_turns_the_cache_off(
    mlflow_server: str, model: tuple[str, str], counted: tuple[str, list[str]]
) -> None:
    url, calls = counted
    name, version = model
    s = MlflowSource(url, cache_ttl_s=0)
    ref = parse(f"mlflow:models:/{name}/{version}")
    assert s.collect(ref).calls >= 4 and s.collect(ref).calls >= 4
    s.close()


def test_the_decision_records_the_evidence_it_was_made_on(
    mlflow_server: str, model: tuple[str, str], sqlite_url: str
) -> None:
    name, version = model
    log = DecisionLog(sqlite_url)
    collector = Collector({"mlflow": MlflowSource(mlflow_server, cache_ttl_s=60)})
    with start_engine(None, opa_binary(), REGO) as engine:
        service = DecisionService(engine, log, collector=collector)
        ref, target = parse(f"mlflow:models:/{name}/{version}"), Target(stage="production")
        first = service.decide(ref, target, "ci@corp")
        second = service.decide(ref, target, "ci@corp")  # from the cache
    collector.close()
    assert first.outcome == second.outcome == "allow"
    stored = [log.get(d.decision_id) for d in (first, second)]
    evidence = [s["evidence"] for s in stored if s is not None]
    read_at = [e["collection"]["sources"][0]["read_at"] for e in evidence]
    assert read_at[0] == read_at[1]  # the second decision says its answers are the first read's
    assert evidence[1]["collection"]["collected_at"] >= evidence[0]["collection"]["collected_at"]
    assert (
        evidence[0]["subject"] == evidence[1]["subject"] and evidence[0]["lineage"] == evidence[1]["lineage"]
    )
    from policygate.evidence import digest

    assert second.evidence_digest == digest(evidence[1])  # the digest is of the document recorded
    log.close()
