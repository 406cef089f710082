"""What loading a policy directory found: the rules, the revision, or the problems that refuse it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from policygate.engine.catalogue import Rule
from policygate.engine.runner import CheckError


@dataclass
class LoadReport:
    """The outcome of loading one policy directory; ``ok`` means it may decide."""

    policy_dir: str
    examples_dir: str
    errors: list[CheckError] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    revision: str | None = None
    files: int = 0
    # the checks did not run: this exact directory passed them before (policy/check_cache.py)
    remembered: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy_dir": self.policy_dir,
            "examples_dir": self.examples_dir,
            "ok": self.ok,
            "revision": self.revision,
            "files": self.files,
            "rules": [r.id for r in self.rules],
            "errors": [asdict(e) for e in self.errors],
        }

    def summary(self) -> str:
        """One line for an error decision or /readyz: the first problems, with file and line."""
        shown = "; ".join(str(e) for e in self.errors[:5])
        more = (
            f" (and {len(self.errors) - 5} more: run `policygate policy check`)"
            if len(self.errors) > 5
            else ""
        )
        return f"policy refused ({self.policy_dir}): {shown}{more}"
