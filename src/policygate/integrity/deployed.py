"""The files a deploy step is about to ship, as ``attest verify --artifact`` reads them.

Every name counts: a top-level ``model.sig`` is left out of the manifest only when it verifies as an
OpenSSF model-signing signature over the directory with the key the deploy step names, and
``registered_model_meta`` only when it is exactly the note MLflow writes on download (the attested
model's name and version, or none); otherwise each is a file like any other (an added file, when the
decision did not approve it). Special files (FIFOs, devices, sockets) are refused before anything is
opened, and the whole reading runs against a deadline, so nothing in the directory can hang the step.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import yaml

from policygate.errors import InputError, PolicygateError
from policygate.evidence import ArtifactSignature
from policygate.integrity.manifest import MLFLOW_DOWNLOAD_META, SIGNATURE_FILE, Manifest, manifest_of
from policygate.integrity.signature import verify_signature
from policygate.refs import RefError, parse

T = TypeVar("T")
NOTE_MAX_BYTES = 1024
_SPECIAL = {
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


class SpecialFile(InputError):
    """A FIFO, device or socket among the files: reading it could block forever, or read anything."""


class DeadlineExceeded(PolicygateError):
    """Reading the files took longer than the verification may."""


@dataclass(frozen=True)
class Deployed:
    files: Manifest
    signature: ArtifactSignature | None  # None: no --signing-key, model.sig (if any) is a file


def refuse_special(root: Path) -> None:
    """SpecialFile naming the first FIFO, device or socket under ``root`` (read with lstat: not opened)."""
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in sorted(filenames):
            path = Path(dirpath) / name
            kind = _SPECIAL.get(stat.S_IFMT(path.lstat().st_mode))
            if kind is not None:
                raise SpecialFile(f"{path.relative_to(root).as_posix()} is {kind}: refused")


def deployed(root: Path, signing_key: Path | None, timeout_s: float, model: str | None = None) -> Deployed:
    """The manifest of every file under ``root`` within ``timeout_s`` (DeadlineExceeded otherwise;
    SpecialFile, OSError, ValueError): model.sig left out only when it verifies with ``signing_key``,
    registered_model_meta only when it is MLflow's download note of ``model`` (the attested reference)."""
    deadline = time.monotonic() + timeout_s

    def read() -> Deployed:
        if not root.is_dir():
            raise FileNotFoundError(f"{root} is not a directory")
        refuse_special(root)
        signature = None
        exclude: set[str] = set()
        if signing_key is not None:
            signature = verify_signature(root, {"--signing-key": signing_key})
            if signature.status == "verified":
                exclude.add(SIGNATURE_FILE)
        if is_download_note(root / MLFLOW_DOWNLOAD_META, model):
            exclude.add(MLFLOW_DOWNLOAD_META)
        return Deployed(manifest_of(root, deadline=deadline, exclude=frozenset(exclude)), signature)

    return within(deadline, read)


def is_download_note(path: Path, model: str | None) -> bool:
    """``registered_model_meta`` as MLflow writes it when it downloads a model: a small YAML mapping of
    exactly ``model_name`` and ``model_version``, each null (a logged model) or the attested version's.
    Anything else under that name is a file of the model like any other."""
    if path.is_symlink() or not path.is_file() or path.stat().st_size > NOTE_MAX_BYTES:
        return False
    try:
        note = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError):
        return False
    if not isinstance(note, dict) or set(note) != {"model_name", "model_version"}:
        return False
    name = version = None
    if model is not None:
        try:
            ref = parse(model)
            name, version = ref.name, None if ref.version is None else str(ref.version)
        except RefError:
            pass
    given = (note["model_name"], note["model_version"])
    return given == (None, None) or (name is not None and given[0] == name and str(given[1]) == version)


def within(deadline: float, work: Callable[[], T]) -> T:
    """``work()`` on a daemon thread, given up (DeadlineExceeded) at ``deadline``: a read blocked in the
    kernel cannot be interrupted, but the caller is never held past it (the process may exit)."""
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller as raised
            outcome["error"] = exc

    worker = threading.Thread(target=run, name="attest-verify-files", daemon=True)
    worker.start()
    worker.join(max(0.0, deadline - time.monotonic()))
    if worker.is_alive():
        raise DeadlineExceeded("reading the files took longer than the verification may (--timeout)")
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]
