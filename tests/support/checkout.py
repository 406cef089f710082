"""What the tests take from this checkout: its root, the shipped policies (rego/), the example
evidence and the real OPA binary (never mocked)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from policygate.config import Settings

ROOT = Path(__file__).resolve().parents[2]
REGO = ROOT / "rego"
EXAMPLES = ROOT / "examples" / "evidence"


def policy_copy(tmp: Path, name: str = "rego") -> Path:
    """A copy of rego/ at ``tmp/name``, with the rule examples beside it (``tmp/examples/evidence``,
    where policygate looks for them by default)."""
    target = tmp / name
    shutil.copytree(REGO, target)
    shutil.copytree(EXAMPLES, tmp / "examples" / "evidence", dirs_exist_ok=True)
    return target


def without_shipped_tests(rego: Path, keep_helpers: bool = True) -> Path:
    """Remove rego/'s own Rego tests from a copy whose parameters a test changes: they assume the
    shipped values (required approvals, modes), and every load runs a policy's tests. With
    ``keep_helpers``, fixtures_test.rego stays (a guide's own tests use its helpers)."""
    for test in (rego / "policygate").glob("*_test.rego"):
        if not (keep_helpers and test.name == "fixtures_test.rego"):
            test.unlink()
    return rego


def opa_binary() -> str:
    binary = Settings().opa_binary
    if not (Path(binary).exists() or shutil.which(binary)):
        pytest.fail(
            f"OPA binary {binary!r} not found: run `make setup` (a missing OPA is a failure, not a skip)"
        )
    return binary


def load_example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / f"{name}.json").read_text())
    return data
