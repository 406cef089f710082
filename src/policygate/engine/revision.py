"""The one policy-revision formula: a digest of every non-test module's text and the parameters.

Computed from the files policygate loads and from what an OPA server reports alike, so the two agree.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from policygate.evidence import digest


def revision_of(modules: Iterable[tuple[str, str]], params: Any) -> str:
    """``modules``: (module id or file name, raw text) pairs; ``*_test.rego`` modules do not count."""
    raws = sorted(raw for name, raw in modules if not name.endswith("_test.rego"))
    return digest({"policies": raws, "params": params})
