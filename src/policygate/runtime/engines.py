"""The old home of :func:`start_engine` (``policygate.start_engine``, docs/python-api.md); it lives in
:mod:`policygate.policy.serving` now. Kept so the import path still works."""

from policygate.policy.serving import start_engine

__all__ = ["start_engine"]
