"""Write a decision back onto the MLflow model version as tags; optionally remove the alias on deny.

Retried with backoff: a failed write-back is logged and retried, and never
touches the decision, which is already committed to the log.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from policygate.decisions.model import Decision

log = logging.getLogger(__name__)

TAG_DECISION = "policygate.decision"
TAG_DECISION_ID = "policygate.decision_id"
TAG_REASONS = "policygate.reasons"


class MlflowWriteBack:
    def __init__(self, tracking_uri: str, attempts: int = 5, first_backoff_s: float = 0.5) -> None:
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        self.attempts = attempts
        self.first_backoff_s = first_backoff_s

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
        # policygate.decision goes last: its presence tells readers the other tags are complete
        tags = {
            TAG_REASONS: ",".join(r.id for r in decision.reasons) or "none",  # MLflow drops empty values
            TAG_DECISION_ID: decision.decision_id,
            TAG_DECISION: decision.outcome,
        }
        return all(
            self._retry(
                f"tag {key} on {name}/{version}", self.client.set_model_version_tag, name, version, key, value
            )
            for key, value in tags.items()
        )

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
