"""Default places the settings point at, computed from the policy directory."""

from __future__ import annotations

from pathlib import Path


def default_examples_dir(policy_dir: Path) -> Path:
    """Where a policy directory's example documents live unless configured: ``../examples/evidence``."""
    return policy_dir.resolve().parent / "examples" / "evidence"
