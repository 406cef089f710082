"""Files hashed as they stream: several at a time, one budget for them all, and a download the budget
cuts is stopped and closed, not left running."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from policygate.integrity.files import ArtifactsUnavailable
from policygate.integrity.manifest import manifest_digest
from policygate.integrity.stream import StoredFile, hash_stored


class Store:
    """Files served in chunks, each chunk after ``delay_s``; records which downloads are open."""

    def __init__(self, files: dict[str, bytes], delay_s: float = 0.0, chunk: int = 4) -> None:
        self.files, self.delay_s, self.chunk = files, delay_s, chunk
        self.open: set[str] = set()
        self.most_open = 0
        self.lock = threading.Lock()

    @contextmanager
    def chunks(self, path: str) -> Iterator[Iterator[bytes]]:
        with self.lock:
            self.open.add(path)
            self.most_open = max(self.most_open, len(self.open))
        try:
            yield self._served(self.files[path])
        finally:
            with self.lock:
                self.open.discard(path)

    def _served(self, data: bytes) -> Iterator[bytes]:
        for i in range(0, len(data), self.chunk):
            time.sleep(self.delay_s)
            yield data[i : i + self.chunk]

    def listed(self, sizes: dict[str, int] | None = None) -> list[StoredFile]:
        return [
            StoredFile(p, (sizes or {}).get(p, len(d)), lambda p=p: self.chunks(p))  # type: ignore[misc]
            for p, d in self.files.items()
        ]


def test_files_hash_in_parallel_to_the_same_digest_as_on_disk() -> None:
    store = Store({f"f{i}": bytes([i]) * 40 for i in range(6)}, delay_s=0.002)
    manifest = hash_stored(store.listed(), max_bytes=10_000, deadline=time.monotonic() + 30, parallel=3)
    assert [f.sha256 for f in manifest.files] == [
        hashlib.sha256(bytes([i]) * 40).hexdigest() for i in range(6)
    ]
    assert manifest.digest == manifest_digest(manifest.files) and manifest.size == 240
    assert store.most_open == 3 and store.open == set()


def test_a_download_cut_by_the_budget_is_stopped_not_left_running() -> None:
    store = Store({"a": b"x" * 4000, "b": b"y" * 4000}, delay_s=0.01)
    started = time.monotonic()
    with pytest.raises(ArtifactsUnavailable) as raised:
        hash_stored(store.listed(), max_bytes=10**9, deadline=started + 0.3, parallel=2)
    assert raised.value.reason == "time_budget"
    assert 0 < raised.value.bytes_read < 8000 and raised.value.files_read == 0
    assert raised.value.size == 8000 and raised.value.files == 2
    assert time.monotonic() - started < 1.0  # stopped at the next chunk, not at the end of the file
    assert store.open == set()  # every download closed
    assert not [t for t in threading.enumerate() if t.name.startswith("hash")]


def test_the_cap_is_checked_on_the_listing_and_on_the_bytes_served() -> None:
    store = Store({"a": b"x" * 100})
    with pytest.raises(ArtifactsUnavailable) as listed:
        hash_stored(store.listed(), max_bytes=99, deadline=time.monotonic() + 30, parallel=2)
    assert listed.value.reason == "size_cap" and listed.value.bytes_read == 0 and store.most_open == 0
    with pytest.raises(ArtifactsUnavailable) as served:  # the store lists less than it serves
        hash_stored(store.listed({"a": 10}), max_bytes=50, deadline=time.monotonic() + 30, parallel=2)
    assert served.value.reason == "size_cap" and served.value.bytes_read > 50 and store.open == set()


def test_a_store_error_stops_the_other_downloads() -> None:
    store = Store({"a": b"x" * 4000, "b": b"y" * 40}, delay_s=0.005)
    broken = StoredFile("b", 40, lambda: _failing())
    with pytest.raises(ArtifactsUnavailable) as raised:
        hash_stored([store.listed()[0], broken], max_bytes=10**9, deadline=time.monotonic() + 30, parallel=2)
    assert raised.value.reason == "store" and "ConnectionError" in str(raised.value)
    assert store.open == set()


@contextmanager
def _failing() -> Iterator[Iterator[bytes]]:
    raise ConnectionError("refused")
    yield iter(())  # pragma: no cover
