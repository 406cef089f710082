"""The event-loop path of POST /v1/evaluate (evaluate_async: OPA over the async client, the log through
the group commit) decides exactly as the synchronous path, and fails closed the same way."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from policygate.decisions.decision import Decision
from policygate.decisions.log import DecisionLog
from policygate.decisions.service import DecisionService
from policygate.engine.errors import EngineError
from policygate.engine.opa import OpaEngine
from policygate.evidence import EvidenceV1
from tests.integration.test_fail_closed import closed_port, engine_for
from tests.support.checkout import EXAMPLES, load_example


def _both(service: DecisionService, evidence: dict[str, Any]) -> tuple[Decision, Decision]:
    sync = service.evaluate(EvidenceV1.model_validate(evidence))
    in_loop = asyncio.run(service.evaluate_async(EvidenceV1.model_validate(evidence)))
    return sync, in_loop


def _same(a: Decision, b: Decision) -> None:
    skip = {"decision_id", "evaluated_at"}
    assert a.model_dump(exclude=skip) == b.model_dump(exclude=skip)


@pytest.mark.parametrize("name", sorted(p.stem for p in EXAMPLES.glob("*.json")))
def test_every_example_decides_the_same_in_the_loop(
    name: str, opa: OpaEngine, decision_log: DecisionLog
) -> None:
    service = DecisionService(opa, decision_log)
    sync, in_loop = _both(service, load_example(name))
    _same(sync, in_loop)
    recorded = decision_log.get(in_loop.decision_id)
    assert recorded is not None and recorded["decision"] == in_loop.model_dump(mode="json")


def test_unreachable_opa_is_an_error_and_recorded(
    decision_log: DecisionLog, compliant: dict[str, Any]
) -> None:
    engine = OpaEngine(f"http://127.0.0.1:{closed_port()}", timeout_s=1)
    service = DecisionService(engine, decision_log)
    sync, in_loop = _both(service, compliant)
    _same(sync, in_loop)
    assert in_loop.outcome == "error" and in_loop.reasons[0].id == "ERR-UNREACHABLE"
    assert decision_log.get(in_loop.decision_id) is not None


@pytest.mark.parametrize(
    ("rego", "reason"),
    [
        ("something_else := true", "ERR-UNDEFINED"),
        ('decision := {"allow": "yes", "deny": []}', "ERR-POLICY-ERROR"),
        ('decision := {"allow": true}', "ERR-POLICY-ERROR"),
        ("decision := true", "ERR-POLICY-ERROR"),
        (  # two values for one complete rule: OPA answers 500 eval_conflict_error
            'decision := {"allow": true, "deny": []} if input.subject\n'
            'decision := {"allow": false, "deny": []} if input.request',
            "ERR-POLICY-ERROR",
        ),
    ],
)
def test_a_policy_that_gives_no_sound_decision_is_an_error(
    rego: str, reason: str, tmp_path: Path, decision_log: DecisionLog, compliant: dict[str, Any]
) -> None:
    with engine_for(tmp_path, f"package policygate\n\n{rego}\n") as engine:
        sync, in_loop = _both(DecisionService(engine, decision_log), compliant)
    _same(sync, in_loop)
    assert in_loop.outcome == "error" and not in_loop.allow and in_loop.reasons[0].id == reason


def test_no_engine_records_errors(decision_log: DecisionLog, compliant: dict[str, Any]) -> None:
    err = EngineError("unreachable", "cannot start OPA (/nonexistent/opa)")
    sync, in_loop = _both(DecisionService(None, decision_log, err), compliant)
    _same(sync, in_loop)
    assert in_loop.outcome == "error" and decision_log.get(in_loop.decision_id) is not None


def test_a_restarted_opa_is_reached_again(tmp_path: Path, decision_log: DecisionLog) -> None:
    """Kept-alive connections to an OPA that went away are retried once, then reconnect."""
    rego = 'package policygate\n\ndecision := {"allow": true, "deny": []}\n'
    with engine_for(tmp_path, rego) as engine:
        service = DecisionService(engine, decision_log)
        evidence = load_example("compliant")

        async def twice() -> list[str]:
            first = await service.evaluate_async(EvidenceV1.model_validate(evidence))
            assert engine.managed is not None
            engine.managed.stop()
            down = await service.evaluate_async(EvidenceV1.model_validate(evidence))
            url = engine.managed.start()
            engine.url = url
            again = await service.evaluate_async(EvidenceV1.model_validate(evidence))
            return [first.outcome, down.outcome, again.outcome]

        assert asyncio.run(twice()) == ["allow", "error", "allow"]


def test_the_served_loop_uvloop_decides_the_same(opa: OpaEngine, decision_log: DecisionLog) -> None:
    import uvloop

    service = DecisionService(opa, decision_log)
    for name in ("compliant", "APR-002"):
        sync = service.evaluate(EvidenceV1.model_validate(load_example(name)))
        in_loop = uvloop.run(service.evaluate_async(EvidenceV1.model_validate(load_example(name))))
        _same(sync, in_loop)
