"""All the data OPA loads from a policy directory, merged the way OPA merges it.

``opa run DIR`` (and a bundle) puts every JSON or YAML file's document at its directory's path,
whatever the file is called and however deep it sits: ``rego/data.yaml`` beside ``rego/data.json``
adds to the same document, ``rego/policygate_params/modes/data.yaml`` lands in
``data.policygate_params.modes``. So the parameter check reads the *merged* document, data under a
root the service writes at runtime (the waivers) is refused, and the policy revision covers every
data file's content, not only ``data.json``'s parameters.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from policygate.engine.runner import CheckError
from policygate.policy.data_parse import DataParseError, parse_document

DATA_SUFFIXES = (".json", ".yaml", ".yml")
# Roots the service writes at runtime: data files there would be replaced by (or block) its writes.
# (policygate.policy.waivers.DATA_PATH, not imported: it pulls in the decision log for every load)
RESERVED_ROOTS = ("policygate_waivers",)

Key = tuple[str, ...]


@dataclass(frozen=True)
class DataFile:
    path: str  # as the author names it
    prefix: Key  # the directory, relative to the policy directory: where OPA puts the document
    doc: Any
    text: str


@dataclass
class PolicyData:
    """The merged data document and where each part of it came from."""

    files: list[DataFile]
    merged: dict[str, Any]
    origin: dict[Key, DataFile]  # each key path set by a file -> that file

    def where(self, path: Key) -> tuple[str, int]:
        """(file, line) of the longest prefix of ``path`` some file sets; ("", 0) when none."""
        for n in range(len(path), -1, -1):
            found = self.origin.get(path[:n])
            if found is not None:
                return found.path, line_of(found, path[len(found.prefix) : n] if n else ())
        return "", 0

    def without(self, *roots: str) -> dict[str, Any]:
        return {k: v for k, v in self.merged.items() if k not in roots}


def parse_data(files: dict[str, bytes], policy_dir: Path) -> tuple[list[DataFile], list[CheckError]]:
    """Every JSON/YAML data file, parsed; files that do not parse, with line and column."""
    found: list[DataFile] = []
    errors: list[CheckError] = []
    for path, content in sorted(files.items()):
        if not path.endswith(DATA_SUFFIXES):
            continue
        text = content.decode("utf-8", errors="replace")
        try:
            doc = parse_document(path, content if path.endswith(".json") else text)
        except DataParseError as exc:
            errors.append(CheckError(path, exc.row, exc.col, "data_parse_error", exc.message))
            continue
        try:
            prefix = tuple(Path(path).parent.relative_to(policy_dir).parts)
        except ValueError:  # not under the directory (not a file of a snapshot of it)
            prefix = ()
        if doc is None and not path.endswith(".json"):
            doc = {}  # an empty YAML file: OPA loads nothing from it
        if not prefix and not isinstance(doc, dict):
            errors.append(
                CheckError(path, 1, 1, "data_parse_error", "a data file at the top must hold an object")
            )
            continue
        found.append(DataFile(path, prefix, doc, text))
    return found, errors


def merge_data(data_files: list[DataFile]) -> tuple[PolicyData, list[CheckError]]:
    """The document OPA builds from the files; a key two files set differently is a ``data_conflict``
    naming the key and both files (OPA itself refuses it naming neither)."""
    merged: dict[str, Any] = {}
    origin: dict[Key, DataFile] = {}
    errors: list[CheckError] = []
    for data in data_files:
        node = merged
        for part in data.prefix[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                break
        if not isinstance(node, dict):
            errors.append(_conflict(data.prefix, origin, data))
            continue
        if data.prefix:
            errors += _merge_into(node, data.prefix[-1], data.doc, data.prefix, origin, data)
        else:
            for key, value in data.doc.items():
                errors += _merge_into(node, key, value, (key,), origin, data)
    return PolicyData(data_files, merged, origin), errors


def _merge_into(
    node: dict[str, Any], key: str, value: Any, path: Key, origin: dict[Key, DataFile], data: DataFile
) -> list[CheckError]:
    if key not in node:
        node[key] = _copy(value)
        _mark(path, value, origin, data)
        return []
    current = node[key]
    if isinstance(current, dict) and isinstance(value, dict):
        errors: list[CheckError] = []
        for sub, sub_value in value.items():
            errors += _merge_into(current, sub, sub_value, (*path, sub), origin, data)
        return errors
    if current == value:
        return []
    return [_conflict(path, origin, data)]


def _copy(value: Any) -> Any:
    return {k: _copy(v) for k, v in value.items()} if isinstance(value, dict) else value


def _mark(path: Key, value: Any, origin: dict[Key, DataFile], data: DataFile) -> None:
    origin.setdefault(path, data)
    if isinstance(value, dict):
        for key, sub in value.items():
            _mark((*path, key), sub, origin, data)


def _conflict(path: Key, origin: dict[Key, DataFile], data: DataFile) -> CheckError:
    first = next((origin[path[:n]] for n in range(len(path), 0, -1) if path[:n] in origin), None)
    other = f"{first.path}:{line_of(first, path[len(first.prefix) :])}" if first else "another file"
    return CheckError(
        data.path,
        line_of(data, path[len(data.prefix) :]),
        1,
        "data_conflict",
        f"data.{'.'.join(path)} is set here and differently in {other}: OPA would refuse the "
        "directory; keep each key in one file",
    )


def reserved_errors(policy: PolicyData) -> list[CheckError]:
    """Data files that write under a root the service owns at runtime (the waivers)."""
    errors = []
    for data in policy.files:
        roots = [data.prefix[0]] if data.prefix else list(data.doc)
        for root in roots:
            if root in RESERVED_ROOTS:
                errors.append(
                    CheckError(
                        data.path,
                        line_of(data, () if data.prefix else (root,)),
                        1,
                        "data_reserved",
                        f"data.{root} is written by policygate at runtime (grant waivers with "
                        "`policygate waiver add`, which records them in the decision log): a policy "
                        "data file may not set it",
                    )
                )
    return errors


def line_of(data: DataFile, keys: Key) -> int:
    """The line where ``keys`` (a path inside the file's document) is set: exact for YAML, the first
    line naming each key in turn for JSON; 1 for the document itself."""
    if not keys:
        return 1
    if not data.path.endswith(".json"):
        import yaml  # a YAML file's (policy.data_parse)

        try:
            node = yaml.compose(data.text)
        except yaml.YAMLError:
            node = None
        row = 1
        for key in keys:
            if not isinstance(node, yaml.MappingNode):
                break
            for k, v in node.value:
                if getattr(k, "value", None) == key:
                    row, node = k.start_mark.line + 1, v
                    break
            else:
                break
        return row
    lines = data.text.splitlines()
    start = 0
    for key in keys:
        needle = json.dumps(key)
        for n in range(start, len(lines)):
            if f"{needle}:" in lines[n].replace(" :", ":") or f"{needle} " in lines[n]:
                start = n
                break
    return start + 1
