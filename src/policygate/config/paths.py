"""Default places the settings point at: computed from the policy directory, or the user's cache."""

from __future__ import annotations

import os
from pathlib import Path


def default_examples_dir(policy_dir: Path) -> Path:
    """Where a policy directory's example documents live unless configured: ``../examples/evidence``."""
    return policy_dir.resolve().parent / "examples" / "evidence"


def cache_home(name: str) -> Path:
    """policygate's cache directory ``name`` under ``$XDG_CACHE_HOME`` (else ``~/.cache``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "policygate" / name
