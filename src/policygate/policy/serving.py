"""Which OPA decides, chosen in one place: here in the policy layer, since a policy directory must
pass :mod:`policygate.policy.load`'s checks before an OPA may serve it, and the engine layer sits
below it (``policygate.runtime.engines``, its old home, re-exports :func:`start_engine`). It does not
import the runtime, so a command can start its engine before the runtime's heavier imports
(:class:`policygate.engine.ahead.EngineAhead`).

- an OPA the user runs (``POLICYGATE_OPA_URL``): spoken to over HTTP, nothing started;
- a managed OPA pulling signed bundles (``POLICYGATE_BUNDLE_PULL__URL``): checked when they were built;
- otherwise the policy directory, checked, then served from a private copy: by a managed OPA server
  or compiled into this process (``POLICYGATE_ENGINE``, :func:`policygate.engine.inproc.choose`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from policygate.engine.inproc import choose
from policygate.engine.managed import ManagedOpa
from policygate.engine.opa import OpaEngine
from policygate.policy.load import start_checked

if TYPE_CHECKING:
    from policygate.config import Settings


def start_engine(
    opa_url: str | None,
    binary: str,
    policy_dir: Path,
    timeout_s: float = 5.0,
    *,
    watch: bool = False,
    examples_dir: Path | None = None,
    token: str | None = None,
    pull: Callable[[Path | None], dict[str, Any]] | None = None,
    pull_token: str | None = None,
    engine: str | None = None,
) -> OpaEngine:
    """Use the OPA at ``opa_url``, or start a managed one on ``policy_dir`` once it passed every
    load check (:mod:`policygate.policy.load`; refused: ``EngineError`` naming the problems).
    ``engine``: ``inprocess`` compiles the policy into this process instead of starting an OPA
    server (:mod:`policygate.engine.inproc`; None: ``POLICYGATE_ENGINE``, see ``choose``).
    ``watch`` is kept for callers; reloads are :class:`policygate.policy.watch.PolicyWatcher`'s."""
    del watch
    if opa_url:
        return OpaEngine(opa_url, timeout_s, token=token)
    if pull is not None:  # serve's own OPA, pulling signed bundles (checked when they were built)
        managed = ManagedOpa(binary, policy_dir, private=True, pull=pull, pull_token=pull_token)
        return OpaEngine(managed.start(), timeout_s, managed)
    return start_checked(binary, policy_dir, examples_dir, timeout_s, engine=choose(engine))


def engine_for(settings: Settings) -> OpaEngine:
    """:func:`start_engine` as ``settings`` configure it: the runtime's engine."""
    return start_engine(
        settings.opa_url,
        settings.opa_binary,
        settings.policy_path,
        settings.opa_timeout_s,
        examples_dir=settings.examples_path,
        token=settings.opa_token.get_secret_value() if settings.opa_token else None,
        pull=settings.bundle_pull.opa_config if settings.bundle_pull.url else None,
        pull_token=settings.bundle_pull.token.get_secret_value() if settings.bundle_pull.token else None,
        engine=settings.engine,
    )
