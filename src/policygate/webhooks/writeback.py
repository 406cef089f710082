"""Write a decision back onto the MLflow model version as tags; optionally remove the alias on deny.

Tags per target (``policygate.<stage>.decision``, ``.reasons``, ``.decision_id``) say what was
decided for that stage; the unscoped ones (a contract) describe the newest decision written back,
and ``policygate.target`` names its stage, so a staging allow never reads as a production allow.
Retried with backoff: a failed write-back is logged and retried, and never
touches the decision, which is already committed to the log.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from policygate.decisions.decision import Decision

log = logging.getLogger(__name__)

TAG_DECISION = "policygate.decision"
TAG_DECISION_ID = "policygate.decision_id"
TAG_REASONS = "policygate.reasons"
TAG_TARGET = "policygate.target"
TAG_LIFECYCLE = "policygate.lifecycle"  # retired | active (policygate retire / unretire)
PENDING = "pending"


_STRIPES = [threading.Lock() for _ in range(64)]


def _lock_of(name: str, version: str) -> threading.Lock:
    """One version's tags are written by one thread at a time: the unscoped ones never mix two decisions."""
    return _STRIPES[hash((name, version)) % len(_STRIPES)]


def scoped(stage: str, name: str) -> str:
    """``policygate.<stage>.<name>``, e.g. policygate.production.decision."""
    return f"policygate.{stage}.{name}"


class MlflowWriteBack:
    def __init__(self, tracking_uri: str, attempts: int = 5, first_backoff_s: float = 0.5) -> None:
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        self.attempts = attempts
        self.first_backoff_s = first_backoff_s

    def start(self) -> MlflowWriteBack:
        """Nothing runs on its own: each write is the webhook worker's (or an audit's)."""
        return self

    def stop(self) -> None:
        """Nothing to stop (a part of the runtime all the same: serve builds it)."""

    def _retry(self, what: str, fn: Any, *args: Any) -> bool:
        delay = self.first_backoff_s
        for attempt in range(1, self.attempts + 1):
            try:
                fn(*args)
                return True
            except Exception as exc:  # noqa: BLE001 - any failure is retried, then reported
                log.warning(
                    "write-back %s failed (attempt %d/%d): %s",
                    what,
                    attempt,
                    self.attempts,
                    type(exc).__name__,
                )
                if attempt < self.attempts:
                    time.sleep(delay)
                    delay *= 2
        log.error(
            "write-back %s gave up after %d attempts; the decision stays in the log", what, self.attempts
        )
        return False

    def tag(self, name: str, version: str, decision: Decision) -> bool:
        """The decision's tags for its target, then the unscoped ones naming that target."""
        reasons = ",".join(r.id for r in decision.reasons) or "none"  # MLflow drops empty values
        stage = str((decision.target or {}).get("stage") or "") or None
        tags: dict[str, str] = {}
        if stage is not None:  # each decision tag goes last: its presence says the others are complete
            tags |= {
                scoped(stage, "reasons"): reasons,
                scoped(stage, "decision_id"): decision.decision_id,
                scoped(stage, "decision"): decision.outcome,
            }
        tags |= {
            TAG_REASONS: reasons,
            TAG_DECISION_ID: decision.decision_id,
            TAG_TARGET: stage or "none",
            TAG_DECISION: decision.outcome,
        }
        return self._set(name, version, tags)

    def pending(self, name: str, version: str, stage: str) -> bool:
        """``policygate.<stage>.decision=pending``: not decided yet (waiting for the training run)."""
        return self._set(name, version, {scoped(stage, "decision"): PENDING})

    def _set(self, name: str, version: str, tags: dict[str, str]) -> bool:
        with _lock_of(name, version):
            return all(
                self._retry(
                    f"tag {key} on {name}/{version}",
                    self.client.set_model_version_tag,
                    name,
                    version,
                    key,
                    value,
                )
                for key, value in tags.items()
            )

    def registered(self, name: str) -> bool | None:
        """Whether the registry holds a model called ``name``; None when it cannot say."""
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(name)
        except MlflowException as exc:
            return False if exc.error_code == "RESOURCE_DOES_NOT_EXIST" else None
        except Exception:  # noqa: BLE001 - unreachable, refused: unknown
            return None
        return True

    def remove_alias_if_current(self, name: str, alias: str, version: str) -> bool:
        """Remove the alias only while it still points at the denied version (it may have moved on)."""
        try:
            current = self.client.get_model_version_by_alias(name, alias)
        except Exception:  # noqa: BLE001 - alias gone already: nothing to remove
            return False
        if str(current.version) != str(version):
            return False
        return self._retry(
            f"delete alias {name}@{alias}", self.client.delete_registered_model_alias, name, alias
        )

    def lifecycle(self, name: str, version: str, state: str, remove_aliases: bool = False) -> bool:
        """``policygate.lifecycle=<state>`` (retired, active) on the version; with ``remove_aliases``
        (POLICYGATE_RETIRE_REMOVE_ALIASES, on retire) every alias still pointing at it is removed."""
        written = self._set(name, version, {TAG_LIFECYCLE: state})
        if not remove_aliases:
            return written
        try:
            aliases = list(self.client.get_model_version(name, version).aliases or [])
        except Exception as exc:  # noqa: BLE001 - the retirement is recorded; say it, don't raise
            log.warning("write-back: aliases of %s/%s not read: %s", name, version, type(exc).__name__)
            return False
        return all([self.remove_alias_if_current(name, alias, version) for alias in aliases]) and written
