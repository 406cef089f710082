"""What an OPA policygate does not manage (a sidecar, or its own OPA pulling bundles) reports about its
bundles: each one's active revision, and why its newest download was refused. Read by ``/readyz``
and by the ``policygate_opa_bundles_refused`` metric."""

from __future__ import annotations

from policygate.engine.opa import OpaEngine

BundleState = dict[str, str | None]


def bundle_states(engine: OpaEngine) -> dict[str, BundleState] | None:
    """None for an OPA on a policy directory, or one whose status plugin is off (or no OPA)."""
    if engine.managed is not None and not engine.managed.pulls:
        return None
    status = engine.bundle_status()
    if status is None:
        return None
    out: dict[str, BundleState] = {}
    for name, b in status.items():
        activated = str(b.get("last_successful_activation") or "0001-")
        active = b.get("active_revision") or (None if activated.startswith("0001-") else "(no revision)")
        out[name] = {
            "active_revision": str(active) if active else None,  # None: never activated
            "refused": str(b.get("message") or b.get("code")) if b.get("code") else None,
        }
    return out


def refused_count(engine: OpaEngine) -> float:
    states = bundle_states(engine) or {}
    return float(sum(1 for s in states.values() if s["refused"]))
