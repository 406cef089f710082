"""The engine's one exception and the names it shares with OPA, in a module of their own so that
every layer above can name them without importing the OPA client or the managed process.

Every failure to decide surfaces as :class:`EngineError`, so the caller can fail closed; an
undefined ``data.policygate.decision`` is an error, never an allow.
"""

from __future__ import annotations

from policygate.config.bundles import BUNDLE  # the configuration names it too (config imports no engine)
from policygate.errors import DecisionError

DECISION_PACKAGE = "policygate"
DECISION_RULE = "decision"
PARAMS_PATH = "policygate_params"
# Every evaluation: a builtin error (1/0, to_number("x"), a bad time) stops the query instead of
# making the rule undefined, which would read as "no violation".
STRICT = {"strict-builtin-errors": "true"}
# the decision query also asks for OPA's provenance (the revision of the bundle that answered it) and
# its metrics: what OPA's own decision log would say about the query (decisions/opa_event.py)
DECIDE = {**STRICT, "provenance": "true", "metrics": "true"}


class EngineError(DecisionError):
    """OPA could not produce a decision; ``code`` says why (unreachable, policy_error, undefined)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


__all__ = ["BUNDLE", "DECIDE", "DECISION_PACKAGE", "DECISION_RULE", "PARAMS_PATH", "STRICT", "EngineError"]
