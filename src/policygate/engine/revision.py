"""The one policy-revision formula: a digest of every non-test module's text and all the data loaded
(the parameters, and any other data document).

Computed from the files policygate loads and from what an OPA server reports alike, so the two agree.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from policygate.evidence import digest

_SYSTEM = re.compile(r"^\s*package\s+system(\.|\s|$)", re.M)


def is_policy_module(name: str, raw: str) -> bool:
    """A module of the policy: not a test (``*_test.rego``) and not OPA's own configuration
    (``package system...``, e.g. the authorization rule of the managed OPA)."""
    return not name.endswith("_test.rego") and not _SYSTEM.search(raw)


def revision_of(modules: Iterable[tuple[str, str]], params: Any, data: dict[str, Any] | None = None) -> str:
    """``modules``: (module id or file name, raw text) pairs; only policy modules count. ``data``:
    every other data document the policy directory holds beside the parameters (none for rego/, so
    its revision is what it always was)."""
    raws = sorted(raw for name, raw in modules if is_policy_module(name, raw))
    return digest({"policies": raws, "params": params, **({"data": data} if data else {})})
