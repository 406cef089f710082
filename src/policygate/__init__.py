"""policygate: a policy-as-code promotion gate for ML models.

The public Python API (docs/python-api.md) is the names in ``__all__``: import them from here. Their
older module paths (``policygate.runtime``, ``policygate.decisions.log``, ...) keep working too.
Names are imported on first use so that ``import policygate`` (which every submodule import runs)
stays cheap for the CLI.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from policygate.version import __version__

if TYPE_CHECKING:
    from policygate.audit.run import Auditor
    from policygate.cli import app
    from policygate.config import Settings
    from policygate.config.integrity import ArtifactSettings
    from policygate.decisions.log import DecisionLog
    from policygate.decisions.service import DecisionService
    from policygate.engine.opa import OpaEngine
    from policygate.evidence import Change, Request, Target
    from policygate.policy.serving import start_engine
    from policygate.refs import parse
    from policygate.runtime import build_sources, open_runtime, open_service
    from policygate.sources.base import EvidenceSource
    from policygate.sources.collect import Collector

# name -> the module that defines it (the documented old path, or where it lives now)
_HOMES = {
    "Settings": "policygate.config",
    "ArtifactSettings": "policygate.config.integrity",
    "Target": "policygate.evidence",
    "Change": "policygate.evidence",
    "Request": "policygate.evidence",
    "parse": "policygate.refs",
    "open_runtime": "policygate.runtime",
    "open_service": "policygate.runtime",
    "build_sources": "policygate.runtime",
    "start_engine": "policygate.policy.serving",
    "Collector": "policygate.sources.collect",
    "EvidenceSource": "policygate.sources.base",
    "DecisionLog": "policygate.decisions.log",
    "DecisionService": "policygate.decisions.service",
    "OpaEngine": "policygate.engine.opa",
    "Auditor": "policygate.audit.run",
    "app": "policygate.cli",
}

__all__ = [
    "__version__",
    "Settings",
    "ArtifactSettings",
    "Target",
    "Change",
    "Request",
    "parse",
    "open_runtime",
    "open_service",
    "build_sources",
    "start_engine",
    "Collector",
    "EvidenceSource",
    "DecisionLog",
    "DecisionService",
    "OpaEngine",
    "Auditor",
    "app",
]
assert set(__all__) == {"__version__", *_HOMES}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'policygate' has no attribute {name!r}")
    value = getattr(import_module(home), name)
    globals()[name] = value  # once: later lookups do not come here
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
