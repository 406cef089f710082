"""A policy directory that passed every load check, remembered by what decided the verdict.

A policy author runs ``evaluate``, ``check`` and ``replay`` dozens of times an hour on an unchanged
directory, and each cold run re-did the whole load (``opa check --strict``, parsing, the static checks,
each rule's examples, ``opa test``): most of what a CLI run cost beyond ``opa eval``. A passing load is
remembered under a digest of everything that decides it: every policy and data file, the evidence
schema (by the code and the pydantic that render it), the examples, the OPA binary and the in-process
library, and policygate's own code. Any change to any of them is a different digest, so the checks run
again; a load that found a problem is never remembered (its errors are worked out afresh each time).
What is kept is what the engine needs once the checks passed: where each rule is and its metadata (to
name the rule an evaluation error happened in), and the rule catalogue; not the rules' syntax trees,
which only the checks read.
``POLICYGATE_CHECK_CACHE=off`` turns it off; ``opa test``'s own cache
(:mod:`~policygate.policy.testgate`) lives beside it.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

import orjson
from pydantic.version import VERSION as _PYDANTIC
from pydantic_core import __version__ as _PYDANTIC_CORE

from policygate.config.paths import cache_home
from policygate.engine.catalogue import ParsedRule, Rule

FORMAT = b"policygate-check-cache-1"
KEEP = 256  # entries kept (the newest): a few hundred revisions of an author's work, about 16 MB
_OFF = ("0", "off", "false", "no")
_CODE = Path(__file__).resolve().parents[1]  # the policygate package: its checks decide the verdict
SCHEMA_RENDERER = f"pydantic {_PYDANTIC} core {_PYDANTIC_CORE}"  # renders the evidence schema from _CODE


def enabled() -> bool:
    return os.environ.get("POLICYGATE_CHECK_CACHE", "on").strip().lower() not in _OFF


def cache_dir() -> Path:
    return cache_home("checked")


def _stat(h: Any, path: Path) -> None:
    try:
        st = path.stat()
    except OSError:
        h.update(b"absent\0" + str(path).encode() + b"\0")
        return
    h.update(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())


def key(
    files: dict[str, bytes],
    policy_dir: Path,
    examples: Path,
    binary: str,
    library: Path | None,
    engine: str,
    timeout_s: float,
    schema_renderer: str = SCHEMA_RENDERER,
) -> str:
    """The digest a verdict is kept under. The directory as named (the parsed rules name its files);
    the evaluation timeout (each rule's examples must evaluate within it); policy files, data and
    examples by content; the OPA binary, the library and policygate's own modules by path, size and
    modification time (an upgrade or an edit changes them). The evidence schema the checks compile
    with is pydantic's rendering of policygate's evidence models: it is covered by those modules and
    ``schema_renderer`` (pydantic's versions), so a remembered load need not render it."""
    parts = [FORMAT, engine.encode(), str(policy_dir).encode(), repr(timeout_s).encode(), b""]
    h = hashlib.sha256(b"\0".join(parts))
    for name in sorted(files):
        h.update(os.path.relpath(name, policy_dir).encode() + b"\0" + hashlib.sha256(files[name]).digest())
    h.update(b"schema\0" + schema_renderer.encode())
    if examples.is_dir():
        for path in sorted(p for p in examples.rglob("*") if p.is_file()):
            h.update(
                str(path.relative_to(examples)).encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest()
            )
    _stat(h, Path(binary))
    if library is not None:
        _stat(h, library)
    for module in sorted(_CODE.rglob("*.py")):
        _stat(h, module)
    return h.hexdigest()


def recall(digest: str) -> tuple[list[ParsedRule], list[Rule]] | None:
    """The rules (where each is, its metadata; no syntax tree) and the catalogue of a load that passed,
    or None (not seen, or unreadable)."""
    if not enabled():
        return None
    entry = cache_dir() / f"{digest}.json"
    try:
        if not _private(entry):
            return None
        raw = orjson.loads(entry.read_bytes())
        parsed = [ParsedRule(**r) for r in raw["parsed"]]
        rules = [Rule.model_validate(r) for r in raw["rules"]]
    except (OSError, ValueError, TypeError, KeyError):
        return None
    return parsed, rules


def _private(entry: Path) -> bool:
    """An entry is believed only when this user wrote it and no one else could have: owned by this
    user, neither it nor its directory writable by group or others (else another local user could
    mark a policy as checked)."""
    for path in (entry, entry.parent):
        st = path.stat()
        if st.st_uid != os.getuid() or st.st_mode & 0o022:
            return False
    return True


def remember(digest: str, parsed: list[ParsedRule], rules: list[Rule], *, keep: int = KEEP) -> None:
    """Keep a passing load's result (written whole or not at all; a cache that cannot be written is
    only slower, never an error), and only the newest ``keep`` entries."""
    if not enabled():
        return
    body = {
        "parsed": [
            {
                "name": r.name,
                "package": r.package,
                "file": r.file,
                "row": r.row,
                "end_row": r.end_row,
                "annotation": r.annotation,
                "body": None,  # (its AST: only the checks read it, and they are what is skipped)
            }
            for r in parsed
        ],
        "rules": [r.model_dump(mode="json") | {"file": r.file, "row": r.row} for r in rules],
    }
    try:
        folder = cache_dir()
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("wb", dir=folder, delete=False, suffix=".tmp") as fh:
            fh.write(orjson.dumps(body))
        os.replace(fh.name, folder / f"{digest}.json")
        _prune(folder, keep)
    except OSError:
        pass


def _prune(folder: Path, keep: int) -> None:
    """Keep the newest ``keep`` entries: every revision checked would otherwise stay forever."""
    entries = list(folder.glob("*.json"))
    if len(entries) <= keep:
        return
    entries.sort(key=lambda p: p.stat().st_mtime_ns, reverse=True)
    for old in entries[keep:]:
        old.unlink(missing_ok=True)
