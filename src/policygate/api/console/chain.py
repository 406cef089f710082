"""The tamper check a decision page shows: the record's own hash and link, and how far the whole chain
was verified (one walk at a time, remembered for a while so a page asks only for the rest)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from policygate.decisions.chain import chain_hash
from policygate.decisions.log import DecisionLog
from policygate.runtime.serve import CHAIN_FRESH_S, ChainProgress


@dataclass
class ChainCheck:
    seq: int
    prev_hash: str
    record_hash: str
    hash_ok: bool  # the record's hash is the hash of its body and the previous hash
    links_ok: bool  # the previous record's hash is the one this record names
    verified_upto: int | None  # the whole chain verified from the genesis up to here or further
    verified_at: str | None
    problem: str | None
    busy: str | None = None  # not checked now, and why


def chain_check(log: DecisionLog, row: Any, progress: ChainProgress, verify: bool) -> ChainCheck:
    previous = log.hash_at(row.seq - 1) if row.seq > 1 else None
    links_ok = row.seq == 1 or previous == row.prev_hash
    check = ChainCheck(
        seq=row.seq,
        prev_hash=row.prev_hash,
        record_hash=row.record_hash,
        hash_ok=chain_hash(row.prev_hash, row.body) == row.record_hash,
        links_ok=links_ok,
        verified_upto=None,
        verified_at=None,
        problem=None,
    )
    # read without the lock (a walk may hold it for a while); a value a moment old is harmless
    if time.monotonic() - progress.at < CHAIN_FRESH_S and progress.seq >= row.seq:
        check.verified_upto = progress.seq
    if verify and check.verified_upto is None:
        ok, problem = progress.verify_upto(log, row.seq)
        if ok:
            check.verified_upto = progress.seq
        elif ok is False:
            check.problem = problem
        else:
            check.busy = problem
    if check.verified_upto is not None:
        check.verified_at = "within the last 5 minutes"
    return check
