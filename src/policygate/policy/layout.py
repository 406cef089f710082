"""A policy directory laid out as an OPA bundle: the files it holds and the data roots it owns."""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path
from typing import Any

from policygate.policy.data_parse import DataParseError, parse_document
from policygate.policy.files import Files

_PACKAGE = re.compile(r"^\s*package\s+([A-Za-z_][A-Za-z0-9_]*)", re.M)


def bundle_layout(files: Files, policy_dir: Path) -> dict[str, bytes]:
    """The policy directory's files as an OPA bundle holds them (relative path -> bytes). Loaded as
    files, OPA puts every JSON or YAML file's data at its directory's path, whatever its name; a
    bundle reads only ``data.json``/``data.yaml``. So each directory's data files are merged into one
    ``data.json`` there (a key two of them set differently is refused, as OPA refuses it); modules,
    and data files that do not parse (the checks name those), are kept as they are."""
    layout: dict[str, bytes] = {}
    data: dict[Path, list[tuple[Path, Any]]] = {}
    for path, content in sorted(files.items()):
        relative = Path(path).relative_to(policy_dir)
        if relative.suffix != ".rego":
            try:
                doc = parse_document(path, content)
            except DataParseError:
                pass
            else:
                data.setdefault(relative.parent, []).append((relative, doc))
                continue
        layout[relative.as_posix()] = content
    for directory, docs in data.items():
        merged = docs[0][1]
        for relative, doc in docs[1:]:
            merged = _merged(merged, doc, relative)
        layout[(directory / "data.json").as_posix()] = json.dumps(merged).encode()
    return layout


def _merged(a: Any, b: Any, where: Path) -> Any:
    if isinstance(a, dict) and isinstance(b, dict):
        out = dict(a)
        for key, value in b.items():
            out[key] = _merged(a[key], value, where) if key in a else value
        return out
    if a == b:
        return a
    raise ValueError(f"{where}: sets data another file in its directory sets differently")


def bundle_roots(layout: dict[str, bytes]) -> list[str]:
    """The data roots a bundle's files occupy (each module's first package segment, each data file's
    directory, or at the top the keys of its data), so the bundle owns those and nothing else: the
    waivers stay writable beside it."""
    roots: set[str] = set()
    for relative, content in layout.items():
        parts = relative.split("/")
        if relative.endswith(".rego"):
            roots.update(_PACKAGE.findall(content.decode("utf-8", "replace"))[:1])
        elif len(parts) > 1:
            roots.add(parts[0])
        elif relative == "data.json":
            with contextlib.suppress(ValueError):  # does not parse: the checks refuse it, naming it
                doc = json.loads(content)
                roots.update(doc if isinstance(doc, dict) else [])
    return sorted(roots)
