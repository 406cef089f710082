"""A policy directory's files as OPA loads them, their data as OPA merges it, and their revision."""

from __future__ import annotations

import os
from pathlib import Path

from policygate.engine.errors import PARAMS_PATH
from policygate.engine.revision import revision_of
from policygate.engine.runner import CheckError
from policygate.policy.data import PolicyData, merge_data, parse_data, reserved_errors

# What ``opa run DIR`` loads: Rego modules and JSON/YAML data files.
LOADED = (".rego", ".json", ".yaml", ".yml")

Files = dict[str, bytes]


def snapshot(policy_dir: Path) -> Files:
    """Every file OPA loads from the directory, by path, with its bytes."""
    files: Files = {}
    for root, dirs, names in os.walk(policy_dir):
        dirs.sort()
        for name in sorted(names):
            if name.endswith(LOADED):
                path = os.path.join(root, name)
                try:
                    files[path] = Path(path).read_bytes()
                except OSError:  # removed between listing and reading: the next poll sees it gone
                    continue
    return files


def json_errors(files: Files) -> list[CheckError]:
    """Data files (JSON or YAML) that do not parse, with line and column (OPA names only the file)."""
    return parse_data(files, Path("/"))[1] if files else []


def policy_data(files: Files, policy_dir: Path) -> tuple[PolicyData, list[CheckError]]:
    """Every data file of the directory merged as OPA merges it; errors: unparsable files,
    conflicting keys (naming both files), data under a root the service writes."""
    parsed, errors = parse_data(files, policy_dir)
    data, conflicts = merge_data(parsed)
    return data, errors + conflicts + reserved_errors(data)


def revision_of_files(files: Files, data: PolicyData) -> str:
    """The revision of the modules and of all the data OPA loads (the parameters as merged, and any
    other data document beside them)."""
    return revision_of(
        ((p, c.decode("utf-8", errors="replace")) for p, c in files.items() if p.endswith(".rego")),
        data.merged.get(PARAMS_PATH),
        data.without(PARAMS_PATH),
    )


def revision_of_dir(policy_dir: Path) -> str:
    """The policy revision of the files as they are now (what a load of them would report)."""
    files = snapshot(policy_dir)
    return revision_of_files(files, policy_data(files, policy_dir)[0])
