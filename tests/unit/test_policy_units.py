"""The pure parts of the authoring workflow: times, waiver validation and folding, diffs, values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from policygate.decisions.decision import PolicyResult, Reason
from policygate.policy import waivers
from policygate.policy.authoring import line_ranges
from policygate.policy.explain import field_values
from policygate.policy.replay import compare
from policygate.policy.timespec import TimeSpecError, instant_or_duration, parse_duration, parse_instant
from policygate.policy.trace import term_value

NOW = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)


def request(**overrides: Any) -> waivers.WaiverRequest:
    base: dict[str, Any] = {
        "rule": "APR-002",
        "model": "mlflow:models:/fraud-detector/7",
        "targets": ["production"],
        "reason": "CAB-77 accepted the owner's approval",
        "approved_by": "ciso@example.com",
        "expires": "30d",
    }
    return waivers.WaiverRequest(**{**base, **overrides})


# times -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "delta"),
    [
        ("30d", timedelta(days=30)),
        ("12h", timedelta(hours=12)),
        ("2w", timedelta(weeks=2)),
        (" 90M ", timedelta(minutes=90)),
    ],
)
def test_durations(text: str, delta: timedelta) -> None:
    assert parse_duration(text) == delta


@pytest.mark.parametrize("text", ["", "30", "d", "30 days", "-3d", "1y"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(TimeSpecError, match="invalid duration"):
        parse_duration(text)


def test_instants_need_a_zone_and_a_time() -> None:
    assert parse_instant("2026-12-31T23:59:59+01:00") == datetime(2026, 12, 31, 22, 59, 59, tzinfo=UTC)
    for text in ("2026-12-31", "2026-12-31T23:59:59"):
        with pytest.raises(TimeSpecError, match="no time of day or zone"):
            parse_instant(text)
    with pytest.raises(TimeSpecError, match="expected RFC 3339"):
        parse_instant("next tuesday")


def test_duration_out_of_range_is_an_error_not_a_crash() -> None:
    with pytest.raises(TimeSpecError, match="out of range"):
        instant_or_duration("999999w", NOW, future=True)


# waiver validation -------------------------------------------------------------


def test_a_valid_waiver_is_normalised() -> None:
    w = waivers.new_waiver(
        request(
            rule=" apr-002 ", model="mlflow:models:/fraud-detector/007", targets=["Production", "staging"]
        ),
        now=NOW,
        known_rules=["APR-002"],
    )
    assert w.rule == "APR-002"
    assert w.model == "mlflow:models:/fraud-detector/7"
    assert w.targets == ["staging", "production"]
    assert w.expires == "2026-12-27T12:00:00Z"
    assert w.created_at == "2026-11-27T12:00:00Z"
    assert w.id.startswith("WVR-") and len(w.id) == 12
    assert w.policy_doc() == {
        "id": w.id, "rule": "APR-002", "model": "mlflow:models:/fraud-detector/7",
        "targets": ["staging", "production"], "reason": "CAB-77 accepted the owner's approval",
        "approved_by": "ciso@example.com", "expires": "2026-12-27T12:00:00Z",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"expires": ""}, "expires: a waiver must expire"),
        ({"expires": "2026-11-27T11:59:59Z"}, "expires: 2026-11-27T11:59:59Z is not in the future"),
        ({"expires": "366d"}, "more than 365 days ahead"),
        ({"expires": "2262-04-12T00:00:00Z"}, "more than 365 days ahead"),
        ({"expires": "9999-12-31T23:59:59Z"}, "more than 365 days ahead"),
        ({"expires": "2026-12-31"}, "expires: time '2026-12-31' has no time of day or zone"),
        ({"rule": "approval"}, "rule: 'approval' is not a rule id"),
        ({"rule": "APR-009"}, "rule: no rule APR-009 in the policies"),
        ({"model": "mlflow:models:/fraud@champion"}, "names an alias"),
        ({"model": "fraud"}, "model: malformed model reference"),
        ({"model": "*"}, "too broad"),
        ({"model": "mlflow:models:/*"}, "too broad"),
        ({"model": "mlflow:models:/fraud-[a/*"}, "unbalanced"),
        ({"targets": ["prod"]}, "targets: unknown stage 'prod'"),
        ({"reason": "   "}, "reason: must not be empty"),
        ({"approved_by": ""}, "approved_by: must not be empty"),
    ],
)
def test_bad_waivers_are_refused_naming_the_field(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(waivers.WaiverError, match=message.replace("[", r"\[").replace("*", r"\*")):
        waivers.new_waiver(request(**overrides), now=NOW, known_rules=["APR-001", "APR-002"])


def test_the_longest_expiry_is_accepted() -> None:
    w = waivers.new_waiver(request(expires="365d"), now=NOW)
    assert w.expires == "2027-11-27T12:00:00Z"


@pytest.mark.parametrize("pattern", ["mlflow:models:/fraud-*/*", "azureml:fraud*", "mlflow:models:/f{a,b}/?"])
def test_globs_with_a_named_prefix_are_accepted(pattern: str) -> None:
    assert waivers.new_waiver(request(model=pattern), now=NOW).model == pattern


# folding the log records ---------------------------------------------------------


def test_state_folds_adds_and_revocations_in_any_order() -> None:
    live = waivers.new_waiver(request(), now=NOW)
    gone = waivers.new_waiver(request(expires="1h"), now=NOW)
    revoked = waivers.new_waiver(request(), now=NOW)
    records = [
        {"seq": 1, "action": "add", "waiver": live.model_dump()},
        {"seq": 2, "action": "add", "waiver": gone.model_dump()},
        {"seq": 3, "action": "add", "waiver": revoked.model_dump()},
        {"seq": 4, "action": "revoke", "waiver_id": revoked.id, "revoked_by": "bob", "revoked_at": "x"},
        {"seq": 5, "action": "add", "waiver": {"id": "broken"}},
    ]
    later = NOW + timedelta(hours=2)
    for order in (records, list(reversed(records))):
        state = waivers.WaiverState()
        for r in order:
            state.apply(r)
        assert [w.id for w in state.active(later)] == [live.id]
        assert {w.id for w in state.standing()} == {live.id, gone.id}
        statuses = {v.id: v.status for v in state.views(later, include_inactive=True)}
        assert statuses == {live.id: "active", gone.id: "expired", revoked.id: "revoked"}
        assert [v.id for v in state.views(later)] == [live.id]
        assert state.view(revoked, later).revoked_by == "bob"


# small helpers -----------------------------------------------------------------


def test_line_ranges() -> None:
    assert line_ranges([9, 3, 4, 5, 4, 12, 13]) == "3-5, 9, 12-13"
    assert line_ranges([]) == ""


def test_field_values_show_missing_and_gaps() -> None:
    doc = {
        "request": {"ticket": None, "target": {"stage": "production"}},
        "approvals": [{"by": "bob"}],
        "collection": {"gaps": ["lineage.code.commit"]},
    }
    values = {
        f.path: f
        for f in field_values(
            doc, ["request.ticket", "request.target.stage", "approvals.0.by", "lineage.code.commit"]
        )
    }
    assert values["request.ticket"].present is False
    assert values["request.target.stage"].value == "production"
    assert values["approvals.0.by"].value == "bob"
    assert values["lineage.code.commit"].present is False and values["lineage.code.commit"].gap is True


def test_term_values_from_opa_ast() -> None:
    def string(v: str) -> dict[str, Any]:
        return {"type": "string", "value": v}

    roles = {"type": "set", "value": [string("b"), string("a")]}
    term = {
        "type": "object",
        "value": [
            [string("roles"), roles],
            [{"type": "number", "value": 2}, {"type": "null", "value": None}],
        ],
    }
    assert term_value(term) == {"roles": ["a", "b"], "2": None}


# replay diffs ------------------------------------------------------------------


def reason(rule_id: str) -> dict[str, Any]:
    return {"id": rule_id, "message": "m", "severity": "high"}


def record(outcome: str, reasons: list[str], warnings: list[str] = ()) -> dict[str, Any]:  # type: ignore[assignment]
    return {
        "id": "d1",
        "recorded_at": "t",
        "decision": {
            "decision_id": "d1",
            "outcome": outcome,
            "reasons": [reason(i) for i in reasons],
            "warnings": [reason(i) for i in warnings],
            "dryrun": [],
            "subject": {"ref": "mlflow:models:/m/1"},
            "target": {"stage": "production"},
        },
    }


def result(deny: list[str], warn: list[str] = ()) -> PolicyResult:  # type: ignore[assignment]
    return PolicyResult(
        allow=not deny,
        deny=[Reason(**reason(i)) for i in deny],
        warn=[Reason(**reason(i)) for i in warn],
    )


def test_compare_same_outcome_and_ids_is_no_change() -> None:
    assert compare(record("deny", ["APR-001"]), result(["APR-001"]), None) is None


def test_compare_directions() -> None:
    c = compare(record("allow", []), result(["CHG-001"]), None)
    assert c is not None and c.direction == "allow->deny" and c.reasons_added == ["CHG-001"]
    c = compare(record("deny", ["APR-002"]), result([], ["APR-002"]), None)
    assert c is not None and c.direction == "deny->allow"
    assert c.reasons_removed == ["APR-002"] and c.warnings_added == ["APR-002"]
    c = compare(record("deny", ["APR-001"]), result(["APR-001", "CHG-001"]), None)
    assert c is not None and c.direction == "deny->deny (reasons changed)"
    c = compare(record("allow", []), None, "policy_error: boom")
    assert c is not None and c.direction == "allow->error" and c.error == "policy_error: boom"
