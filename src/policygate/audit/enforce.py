"""POLICYGATE_AUDIT_ENFORCE: what an audit run does about its bypass and drift findings on MLflow
(tags the versions denied, as the webhook's write-back would, and optionally removes the alias).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from policygate.audit.findings import AuditRun
from policygate.config import Settings
from policygate.decisions.decision import Decision
from policygate.engine.result import Reason
from policygate.timeutil import iso


def enforce(
    run: AuditRun, settings: Settings, writeback: Any, decision_id: str, clock: Callable[[], datetime]
) -> None:
    """POLICYGATE_AUDIT_ENFORCE: tag MLflow versions with a bypass or drift finding as denied
    (the webhook's tags) and, with POLICYGATE_AUDIT_REMOVE_ALIAS, remove the alias."""
    if not settings.audit_enforce or writeback is None:
        return
    done: set[tuple[str, str | None]] = set()
    for f in run.findings:
        model = next((m for m in run.models if m.model == f.model and m.via == f.via), None)
        if f.kind not in ("bypass", "drift") or f.platform != "mlflow" or model is None:
            continue
        if (f.model, model.alias) in done:
            continue
        done.add((f.model, model.alias))
        reasons = [
            x for g in run.findings if g.model == f.model and g.kind in ("bypass", "drift") for x in g.reasons
        ]
        verdict = Decision(
            decision_id=decision_id,
            outcome="deny",
            allow=False,
            reasons=[Reason(id=r, message=f.message) for r in dict.fromkeys(reasons)],
            target={"stage": f.target},  # the write-back's policygate.<stage>.* tags
            evaluated_at=iso(clock()),
        )
        tagged = writeback.tag(f.name, f.version, verdict)
        action: dict[str, Any] = {"model": f.model, "action": "tagged", "ok": tagged, "finding": f.kind}
        run.enforcement.append(action)
        if settings.audit_remove_alias and model.alias:
            removed = writeback.remove_alias_if_current(f.name, alias=model.alias, version=f.version)
            run.enforcement.append(
                {
                    "model": f.model,
                    "action": "alias_removed",
                    "alias": model.alias,
                    "ok": removed,
                    "finding": f.kind,
                }
            )
