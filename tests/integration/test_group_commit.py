"""Group commit: concurrent appends share transactions, yet each caller gets its own seq, only after
its record is committed, and the chain stays one unbroken chain (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from policygate.decisions.group_commit import _ChainWriter, _Pending
from policygate.decisions.log import DecisionLog, LogError


def _payload(i: int) -> dict[str, Any]:
    decision = {"decision_id": f"d{i}", "outcome": "allow", "subject": {"ref": f"mlflow:models:/m/{i}"}}
    return {"decision": decision, "evidence": {"i": i}}


def _append(log: DecisionLog, i: int) -> int:
    return log.append("decision", f"d{i}", _payload(i), model_ref=f"mlflow:models:/m/{i}", outcome="allow")


def _seq_of_each_id(url: str) -> dict[str, int]:
    """Read back with a connection of its own: what another process would see."""
    engine = create_engine(url, poolclass=NullPool)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT decision_id, seq FROM decision_log")).all()
    engine.dispose()
    return {r.decision_id: r.seq for r in rows}


def test_concurrent_threads_each_get_their_own_committed_seq(log_url: str) -> None:
    log = DecisionLog(log_url)
    got: dict[int, int] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(32)

    def writer(n: int) -> None:
        try:
            start.wait()
            for k in range(10):
                i = n * 100 + k
                got[i] = _append(log, i)
        except BaseException as exc:  # noqa: BLE001  # pragma: no cover - a thread's failure, reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(got.values()) == list(range(1, 321))  # every caller its own seq, no gap
    stored = _seq_of_each_id(log_url)
    assert all(stored[f"d{i}"] == seq for i, seq in got.items())  # the seq answered is the one stored
    result = log.verify()
    assert result.ok and result.records == 320
    log.close()


def test_async_appends_are_committed_before_they_return(log_url: str) -> None:
    log = DecisionLog(log_url)
    seen_committed: list[bool] = []

    async def one(i: int) -> int:
        seq = await log.append_async(
            "decision", f"d{i}", _payload(i), model_ref=f"mlflow:models:/m/{i}", outcome="allow"
        )
        # another connection (another process, after a crash) already sees it
        seen_committed.append(_seq_of_each_id(log_url).get(f"d{i}") == seq)
        return seq

    async def many() -> list[int]:
        return list(await asyncio.gather(*(one(i) for i in range(60))))

    seqs = asyncio.run(many())
    assert sorted(seqs) == list(range(1, 61)) and all(seen_committed)
    assert log.verify().ok
    log.close()


def test_sync_and_async_callers_share_one_chain(log_url: str) -> None:
    log = DecisionLog(log_url)
    threads = [threading.Thread(target=_append, args=(log, 1000 + i)) for i in range(20)]
    for t in threads:
        t.start()

    async def many() -> list[int]:
        return list(
            await asyncio.gather(
                *(
                    log.append_async(
                        "decision", f"d{i}", _payload(i), model_ref=f"mlflow:models:/m/{i}", outcome="allow"
                    )
                    for i in range(20)
                )
            )
        )

    asyncio.run(many())
    for t in threads:
        t.join()
    result = log.verify()
    assert result.ok and result.records == 40
    log.close()


def test_a_bad_record_fails_alone_in_its_batch(log_url: str) -> None:
    log = DecisionLog(log_url)
    _append(log, 1)
    batch = [
        _Pending("decision", f"d{i}", _payload(i), f"mlflow:models:/m/{i}", None, "allow", None, lambda: None)
        for i in (2, 1, 3)
    ]  # d1 exists already: a duplicate id
    writer = _ChainWriter(log.engine)
    log._write_batch(writer, batch)
    writer.close()
    assert [p.seq for p in batch] == [2, None, 3], [repr(p.error) for p in batch]
    assert batch[1].error is not None and isinstance(batch[1].error, LogError)
    with pytest.raises(LogError):
        batch[1].result()
    result = log.verify()
    assert result.ok and result.records == 3
    log.close()


def test_a_log_that_cannot_be_written_answers_errors_not_seqs(log_url: str) -> None:
    log = DecisionLog(log_url)
    _append(log, 1)
    with log.engine.begin() as conn:  # the table goes away under the running writer
        conn.execute(text("ALTER TABLE decision_log RENAME TO decision_log_gone"))
    errors: list[BaseException] = []

    def writer(i: int) -> None:
        try:
            _append(log, i)
        except LogError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(2, 10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == 8  # every caller told, none given a seq
    with log.engine.begin() as conn:
        conn.execute(text("ALTER TABLE decision_log_gone RENAME TO decision_log"))
    assert _append(log, 20) == 2  # the writer recovers with a fresh connection; the chain continues
    assert log.verify().ok
    log.close()


def test_close_writes_what_is_queued_and_the_log_stays_usable(log_url: str) -> None:
    log = DecisionLog(log_url)
    _append(log, 1)
    log.close()
    assert _append(log, 2) == 2  # as before group commit: a closed log opens connections anew
    log.close()
    assert _seq_of_each_id(log_url) == {"d1": 1, "d2": 2}


def test_a_forked_child_writes_with_a_writer_of_its_own(log_url: str) -> None:
    import os

    log = DecisionLog(log_url)
    _append(log, 1)  # the parent's writer thread exists now
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports by exit code
        code = 1
        try:
            log.engine.dispose(close=False)  # the parent's pooled connections are not the child's
            code = 0 if _append(log, 2) == 2 else 3
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert log.verify().ok and _seq_of_each_id(log_url) == {"d1": 1, "d2": 2}
    log.close()
