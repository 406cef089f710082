"""A model's files as a manifest: each file's path, size and SHA-256, and one digest over them all.

Files are hashed streaming, within a byte and time budget: a model larger or slower than the budget
is refused with a named reason (the evidence lists it as a gap), never hashed in part and passed.
The manifest digest is ``sha256:`` of the canonical JSON of the sorted ``[{path, sha256, size}]``,
so the same files give the same digest wherever they are hashed (the service, a deploy step).
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

from policygate.errors import PolicygateError
from policygate.evidence import canonical_json

CHUNK = 1024 * 1024
SIGNATURE_FILE = "model.sig"  # OpenSSF model signing's default: not part of the model it signs
# written by MLflow into a registered model's files when they are downloaded, not stored with them
MLFLOW_DOWNLOAD_META = "registered_model_meta"
NOT_MODEL_FILES = frozenset({SIGNATURE_FILE, MLFLOW_DOWNLOAD_META})


class BudgetExceeded(PolicygateError):
    """The files are larger (``size_cap``), or take longer to hash (``time_budget``), than the budget
    allows; with how much was read before it stopped."""

    def __init__(
        self, message: str, reason: str = "time_budget", *, bytes_read: int = 0, files_read: int = 0
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.bytes_read = bytes_read
        self.files_read = files_read


@dataclass(frozen=True)
class FileEntry:
    path: str  # relative, "/"-separated
    size: int
    sha256: str  # hex


@dataclass(frozen=True)
class Manifest:
    files: tuple[FileEntry, ...]

    @property
    def digest(self) -> str:
        return manifest_digest(self.files)

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)


def manifest_digest(files: tuple[FileEntry, ...] | list[FileEntry]) -> str:
    rows = [{"path": f.path, "sha256": f.sha256, "size": f.size} for f in sorted(files, key=lambda f: f.path)]
    return "sha256:" + hashlib.sha256(canonical_json(rows)).hexdigest()


def manifest_of(
    root: Path,
    *,
    max_bytes: int | None = None,
    deadline: float | None = None,
    exclude: frozenset[str] = NOT_MODEL_FILES,
) -> Manifest:
    """The manifest of every regular file under ``root`` (symbolic links are refused: a link can
    point anywhere, and what it points at is not what was approved)."""
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a directory")
    entries: list[FileEntry] = []
    total = read = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames) + [d for d in dirnames if (Path(dirpath) / d).is_symlink()]:
            path = Path(dirpath) / name
            relative = path.relative_to(root).as_posix()
            if relative in exclude:
                continue
            if path.is_symlink():
                raise ValueError(f"{relative} is a symbolic link: refused")
            size = path.stat().st_size
            total += size
            if max_bytes is not None and total > max_bytes:
                raise BudgetExceeded(
                    f"the model's files are larger than {max_bytes} bytes",
                    "size_cap",
                    bytes_read=read,
                    files_read=len(entries),
                )
            try:
                entries.append(FileEntry(relative, size, _sha256(path, deadline)))
            except BudgetExceeded as exc:
                raise BudgetExceeded(
                    str(exc), bytes_read=read + exc.bytes_read, files_read=len(entries)
                ) from None
            read += size
    return Manifest(tuple(sorted(entries, key=lambda e: e.path)))


def _sha256(path: Path, deadline: float | None) -> str:
    digest = hashlib.sha256()
    read = 0
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            read += len(chunk)
            if deadline is not None and time.monotonic() > deadline:
                raise BudgetExceeded("hashing the model's files took longer than the budget", bytes_read=read)
    return digest.hexdigest()
