"""Hash a model's files as they stream from the store: never written to disk, several files at a time
(bounded), within one size cap and one time budget for them all.

When the budget runs out (or the caller gives up, :meth:`Progress.stop`), every download still
running stops at its next chunk and its connection is closed: nothing is left reading in the
background. The sizes the store lists are checked against the cap before anything is read, and the
bytes actually read are counted against it too (a store that lists less than it serves is cut off).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

from policygate.integrity.files import ArtifactsUnavailable
from policygate.integrity.manifest import FileEntry, Manifest
from policygate.logredact import redact

Chunks = Callable[[], AbstractContextManager[Iterator[bytes]]]


@dataclass(frozen=True)
class StoredFile:
    path: str  # in the model, "/"-separated
    size: int | None  # as the store lists it; None: not listed
    chunks: Chunks  # opens the download: its bytes in chunks, closed on exit


@dataclass
class Progress:
    """How far the hashing got; shared with the caller, who may stop it."""

    bytes_read: int = 0
    files_read: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def add(self, n: int) -> int:
        with self._lock:
            self.bytes_read += n
            return self.bytes_read

    def done(self) -> None:
        with self._lock:
            self.files_read += 1


class _Stopped(Exception):
    """Another file's download failed or the caller gave up: this one stops too."""


def hash_stored(
    files: Sequence[StoredFile],
    *,
    max_bytes: int,
    deadline: float,
    parallel: int,
    progress: Progress | None = None,
) -> Manifest:
    """The manifest of ``files``, each hashed while it streams; ArtifactsUnavailable (size_cap,
    time_budget, store) naming how much was read when it cannot be done."""
    progress = progress or Progress()
    listed = [f.size for f in files]
    size = sum(s for s in listed if s is not None) if all(s is not None for s in listed) else None

    def failure(detail: str, reason: str) -> ArtifactsUnavailable:
        return ArtifactsUnavailable(
            detail,
            "size_cap" if reason == "size_cap" else "time_budget" if reason == "time_budget" else "store",
            size=size,
            files=len(files),
            bytes_read=progress.bytes_read,
            files_read=progress.files_read,
        )

    if sum(s or 0 for s in listed) > max_bytes:
        raise failure(f"the model's files are larger than {max_bytes} bytes", "size_cap")

    def one(stored: StoredFile) -> FileEntry:
        digest = hashlib.sha256()
        read = 0
        with stored.chunks() as chunks:
            for chunk in chunks:
                if progress.stopped:
                    raise _Stopped
                digest.update(chunk)
                read += len(chunk)
                if progress.add(len(chunk)) > max_bytes:
                    raise failure(
                        f"the model's files are larger than {max_bytes} bytes (more was served than listed)",
                        "size_cap",
                    )
                if time.monotonic() > deadline:
                    raise failure(
                        "reading and hashing the model's files took longer than the budget", "time_budget"
                    )
        progress.done()
        return FileEntry(stored.path, read, digest.hexdigest())

    pool = ThreadPoolExecutor(max_workers=max(1, min(parallel, len(files) or 1)), thread_name_prefix="hash")
    try:
        futures = [pool.submit(one, f) for f in files]
        finished, _ = wait(
            futures, timeout=max(0.0, deadline - time.monotonic()), return_when=FIRST_EXCEPTION
        )
        errors = [f.exception() for f in futures if f.done() and not f.cancelled()]
        errors = [e for e in errors if e is not None]
        if errors:
            exc = next((e for e in errors if not isinstance(e, _Stopped)), errors[0])
            if isinstance(exc, ArtifactsUnavailable):
                raise exc
            if isinstance(exc, _Stopped):
                raise failure("stopped before the files were read", "time_budget")
            first = (str(exc).strip().splitlines() or [""])[0][:300]
            raise failure(redact(f"reading the files failed: {type(exc).__name__}: {first}"), "store")
        if len(finished) < len(futures):
            raise failure("reading and hashing the model's files took longer than the budget", "time_budget")
        return Manifest(tuple(sorted((f.result() for f in futures), key=lambda e: e.path)))
    finally:
        progress.stop()  # whatever still runs stops at its next chunk and closes its download
        pool.shutdown(wait=True, cancel_futures=True)
