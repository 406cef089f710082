"""The private copy a policy directory is checked and served from: read once, laid out as the bundle
OPA loads (with a manifest naming the revision), beside the evidence schema the checks compile with
(written when they run)."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from policygate.engine.runner import CheckError
from policygate.evidence import json_schema
from policygate.policy.data import PolicyData
from policygate.policy.files import Files, policy_data, revision_of_files, snapshot
from policygate.policy.layout import bundle_layout, bundle_roots
from policygate.policy.report import LoadReport


@dataclass
class Staged:
    """A policy directory read and copied, laid out as the bundle OPA loads (``copy``, in ``root``)."""

    files: Files
    data: PolicyData
    root: Path
    copy: Path
    revision: str
    as_bundle: bool

    @cached_property
    def schema(self) -> dict[str, Any]:
        """The evidence schema the checks compile with: made only when they run (about 20 ms; checks
        a revision passed are remembered, policy.check_cache)."""
        return json_schema()

    @cached_property
    def schema_file(self) -> Path:
        """:attr:`schema`, written beside the copy for ``opa check --schema``."""
        path = self.root / "evidence.schema.json"
        path.write_text(json.dumps(self.schema))
        return path


def stage(policy_dir: Path, report: LoadReport) -> Staged | None:
    """Read ``policy_dir`` and write the copy OPA loads; None (errors in ``report``) when unreadable."""
    if not (policy_dir / "policygate").is_dir():
        report.errors.append(
            CheckError(
                str(policy_dir), 0, 0, "policy_dir", f"{policy_dir} has no policygate/ package directory"
            )
        )
        return None
    files = snapshot(policy_dir)
    report.files = len(files)
    data, data_errors = policy_data(files, policy_dir)
    if data_errors:
        report.errors = data_errors
        return None
    root = Path(tempfile.mkdtemp(prefix="policygate-policy-"))
    copy = root / (policy_dir.name or "policy")
    layout = bundle_layout(files, policy_dir)
    for relative, content in layout.items():  # what OPA loads, as a bundle
        target = copy / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    # OPA loads the copy as a bundle whose manifest carries the policy revision: each query's
    # provenance then names the revision that answered it, across hot reloads too
    revision = revision_of_files(files, data)
    roots = bundle_roots(layout)
    # (a directory with OPA's own `system` package would overlap the authorization rule's root: it
    # is loaded as files, as before, and its revision read beside each query)
    as_bundle = "system" not in roots
    if as_bundle:
        (copy / ".manifest").write_text(json.dumps({"revision": revision, "roots": roots}))
    return Staged(files, data, root, copy, revision, as_bundle)
