"""What is true now, without servers: an approval's state from the entries after it, and alias
observations from audit runs (a run that could not list everything says nothing about absence)."""

from __future__ import annotations

from typing import Any

from policygate.audit.now import approvals_now, audited_aliases


def entry(by: str, at: str, decision: str = "approved", **extra: Any) -> dict[str, Any]:
    return {"by": by, "stage": "production", "decision": decision, "at": at, **extra}


def test_the_reviewers_latest_entry_decides_each_approvals_state() -> None:
    record = {
        "recorded_approvals": [
            entry("carol@corp", "2026-01-03T00:00:00Z", "approved", id="a3"),
            entry(
                "carol@corp",
                "2026-01-02T00:00:00Z",
                "withdrawn",
                id="w2",
                withdraws="a1",
                comment="leak",
                caller="token:carol@corp",
            ),  # fmt: skip
            entry("carol@corp", "2026-01-01T00:00:00Z", "approved", id="a1"),
        ],
        "approvals": [
            entry("bob@corp", "2026-01-01T00:00:00Z", source="mlflow"),
            entry("dave@corp", "2026-01-01T00:00:00Z", source="mlflow"),
            entry("dave@corp", "2026-01-05T00:00:00Z", "rejected", source="mlflow"),
            entry("carol@corp", "2026-01-01T00:00:00Z", source="policygate", verified=True),  # a copy
        ],
    }
    now = {(a["by"], a["at"][:10]): a for a in approvals_now(record)}
    assert len(now) == 4  # the withdrawal and the rejection are shown on what they took back
    first = now[("carol@corp", "2026-01-01")]
    assert first["state"] == "withdrawn" and first["taken_back"]["reason"] == "leak"
    assert first["taken_back"]["sent_by"] == "token:carol@corp"
    assert now[("carol@corp", "2026-01-03")]["state"] == "standing"  # approved again since
    assert now[("bob@corp", "2026-01-01")]["state"] == "unverified"
    assert now[("dave@corp", "2026-01-01")]["state"] == "rejected"


def run(
    at: str, listed: dict[str, str], *, complete: bool = True, target: str | None = None
) -> dict[str, Any]:
    models = [
        {"platform": "mlflow", "name": "m", "alias": a, "version": v, "target": "production"}
        for a, v in listed.items()
    ]
    return {"run_id": at, "finished_at": at, "complete": complete, "models": models, "target": target}


def test_audit_runs_observe_aliases_and_their_absence_only_when_complete() -> None:
    runs = [  # newest first, as read from the log
        run("2026-01-04T00:00:00Z", {}),
        run("2026-01-03T00:00:00Z", {}, complete=False),
        run("2026-01-02T00:00:00Z", {"champion": "2"}),
        run("2026-01-01T00:00:00Z", {"champion": "1"}),
    ]
    seen = [(s.at[:10], s.alias, s.version) for s in audited_aliases("m", runs)]
    assert seen == [
        ("2026-01-01", "champion", "1"),
        ("2026-01-02", "champion", "2"),
        ("2026-01-04", "champion", None),
    ]
    staging_only = [
        run("2026-01-02T00:00:00Z", {}, target="staging"),
        run("2026-01-01T00:00:00Z", {"champion": "1"}),
    ]
    assert [s.version for s in audited_aliases("m", staging_only)] == ["1"]
