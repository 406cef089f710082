"""Policy content by revision: every revision that decides is kept in the chain as the bundle it was.

A revision is a digest (engine/revision.py) over what OPA loaded; the digest alone cannot say what the
policy said. So the first time a revision decides, the files OPA loaded (the managed OPA's checked
copy, laid out as a bundle: policy modules and each directory's ``data.json``) are appended to the
decision log as a record of kind ``policy`` whose id is derived from the revision. In the chain, not
beside it: the same database on SQLite and PostgreSQL (every replica sees it), and ``log verify``
notices a changed byte as for any record. A copy is handed out only when its files recompute to the
revision it is filed under.
"""

from __future__ import annotations

import logging
import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from policygate.decisions.log import DecisionLog, LogError
from policygate.engine.revision import is_policy_module
from policygate.errors import InputError
from policygate.policy.files import policy_data, revision_of_files

if TYPE_CHECKING:
    from policygate.decisions.service import DecisionService

log = logging.getLogger(__name__)
KIND = "policy"
REVISION = re.compile(r"sha256:[0-9a-f]{64}")
RETRY_S = 60.0  # a revision that could not be kept is tried again after this long
_ROOT = Path("/policy")  # where stored relative paths are put to recompute (any absolute root)


class RevisionError(InputError):
    """The revision asked for is malformed, not kept, or its stored files no longer recompute to it."""


class NotKept(RevisionError):
    """The log keeps no policy content for the revision."""


def record_id(revision: str) -> str:
    """The chain record id of a revision's files (the log's ids are at most 64 characters)."""
    digest = revision.removeprefix("sha256:")
    if (
        not revision.startswith("sha256:")
        or len(digest) != 64
        or not all(c in "0123456789abcdef" for c in digest)
    ):
        raise RevisionError(f"{revision[:80]!r} is not a policy revision (sha256: and 64 hex digits)")
    return "rev-" + revision.removeprefix("sha256:")[:60]


def revision_of_bundle(files: dict[str, str]) -> str:
    """The revision of stored files (relative path -> text), by the one formula a load uses."""
    absolute = {str(_ROOT / path): text.encode() for path, text in files.items()}
    return revision_of_files(absolute, policy_data(absolute, _ROOT)[0])


def loaded_files(copy: Path) -> dict[str, str]:
    """What decides in a managed OPA's checked copy: its policy modules and data files (tests, OPA's
    own configuration and the bundle manifest are left out), by path relative to the copy."""
    files: dict[str, str] = {}
    for root, dirs, names in os.walk(copy):
        dirs.sort()
        for name in sorted(names):
            path = Path(root, name)
            relative = path.relative_to(copy).as_posix()
            if not name.endswith((".rego", ".json", ".yaml", ".yml")) or name == ".manifest":
                continue
            text = path.read_text(encoding="utf-8")
            if name.endswith(".rego") and not is_policy_module(name, text):
                continue
            files[relative] = text
    return files


def keep(log_: DecisionLog, revision: str, copy: Path) -> bool:
    """Record the files in ``copy`` under ``revision`` unless the log has them; False when the copy
    does not recompute to ``revision`` (it was reloaded meanwhile: asked again later)."""
    rid = record_id(revision)
    if log_.get(rid) is not None:
        return True
    files = loaded_files(copy)
    if revision_of_bundle(files) != revision:
        return False
    try:
        log_.append(KIND, rid, {KIND: {"revision": revision, "files": files}})
    except LogError:
        if log_.get(rid) is None:  # not another replica's record with the same id: a real failure
            raise
    return True


def kept(log_: DecisionLog, revision: str) -> dict[str, str]:
    """The files that decided under ``revision``, checked: they recompute to it. RevisionError when
    the log does not hold them or they were altered."""
    record = log_.get(record_id(revision))
    if record is None or record.get("kind") != KIND:
        raise NotKept(f"no policy content kept for revision {revision}")
    stored: dict[str, Any] = record.get(KIND) or {}
    files = stored.get("files")
    if stored.get("revision") != revision or not isinstance(files, dict):
        raise RevisionError(f"the record kept for revision {revision} names another revision")
    unsafe = [str(k) for k in files if not _relative(str(k))]
    if unsafe:  # module names do not count in the digest: a path is checked on its own
        raise RevisionError(
            f"the record kept for revision {revision} names a path outside it: {unsafe[0][:200]!r}"
        )
    recomputed = revision_of_bundle({str(k): str(v) for k, v in files.items()})
    if recomputed != revision:
        raise RevisionError(f"the files kept for revision {revision} recompute to {recomputed}: altered")
    return {str(k): str(v) for k, v in files.items()}


def _relative(path: str) -> bool:
    """A plain relative path inside the bundle (written under --out as it is)."""
    parts = path.split("/")
    return (
        bool(path)
        and not path.startswith("/")
        and "\\" not in path
        and all(p not in ("", ".", "..") for p in parts)
    )


class Keeper:
    """Keeps each revision the service decides with, once (the service calls it after recording a
    decision). Only a managed OPA on a policy directory has the files at hand; an OPA that pulls
    bundles or that policygate does not run is not kept here (its bundles are kept where they are
    built and served)."""

    def __init__(self, log_: DecisionLog, service: DecisionService) -> None:
        self.log = log_
        self.service = service
        self._retry_at: dict[str, float] = {}

    def __call__(self, revision: str) -> bool:
        """True once ``revision`` is kept (or cannot be kept here); False: ask again later."""
        if self._retry_at.get(revision, 0.0) > time.monotonic():
            return False
        engine = self.service.engine
        files = engine.policy_files if engine is not None else None
        if files is None:
            return True
        try:
            if keep(self.log, revision, Path(files)):
                return True
        except (OSError, UnicodeDecodeError, LogError, RevisionError) as exc:
            log.warning("policy revision %s not kept yet: %s", revision, exc)
        self._retry_at[revision] = time.monotonic() + RETRY_S
        return False
