"""Is the record unaltered? The chain walked from the genesis and, when the service signs checkpoints,
the newest signed checkpoint: one answer an auditor can read without database credentials
(GET /v1/log/verify)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field
from sqlalchemy import select

from policygate.decisions.checkpoint import CheckpointError, extension_problem, load_private
from policygate.decisions.checkpoint_dir import acknowledged, read_dir
from policygate.decisions.log import DecisionLog
from policygate.decisions.schema import Record
from policygate.timeutil import now_iso


class TamperedRecord(BaseModel):
    """The first record the walk found changed, removed or reordered, as the database holds it now."""

    seq: int = Field(description="Its sequence number in the chain.")
    id: str | None = Field(default=None, description="Its record id (null when the row is gone).")
    kind: str | None = Field(default=None, description="Its kind: decision, approval, ... (null when gone).")


class CheckpointCheck(BaseModel):
    """The newest signed checkpoint in POLICYGATE_CHECKPOINT_DIR, and whether the log extends it."""

    configured: bool = Field(description="False: no checkpoint key and directory, nothing checked.")
    ok: bool | None = Field(default=None, description="The log extends it (null when not configured).")
    file: str | None = Field(default=None, description="The checkpoint file checked (the newest).")
    size: int | None = Field(default=None, description="Records the checkpoint saw.")
    time: str | None = Field(default=None, description="When it was signed.")
    problem: str | None = Field(
        default=None,
        description="Why the log does not extend it, or the files in the directory that do not verify.",
    )
    acknowledged: str | None = Field(
        default=None, description="A cut an operator acknowledged by a signed checkpoint reset (record id)."
    )


class Head(BaseModel):
    seq: int
    hash: str


class LogVerification(BaseModel):
    """The answer of GET /v1/log/verify (and of :func:`check_log`)."""

    ok: bool = Field(description="True only when the chain, the API tokens and the checkpoint all hold.")
    records: int = Field(description="Records walked (up to and including the first tampered one).")
    head: Head = Field(description="The newest record: keep it outside the database to notice a cut.")
    problem: str | None = Field(default=None, description="What is wrong, in words.")
    first_tampered: TamperedRecord | None = None
    token_problems: list[str] = Field(
        default_factory=list, description="API token rows that differ from the chain."
    )
    checkpoint: CheckpointCheck
    verified_at: str


def check_log(
    log: DecisionLog, checkpoint_key: Path | None = None, checkpoint_dir: Path | None = None
) -> LogVerification:
    """Walk the whole chain (every filtered column against its hashed body) and check the newest signed
    checkpoint when a key and a directory are configured. Token rows are the caller's to add (auth)."""
    result = log.verify()
    seq, head = log.head()
    checkpoint = (
        _newest_checkpoint(log, checkpoint_key, checkpoint_dir)
        if checkpoint_key is not None and checkpoint_dir is not None and result.ok
        else CheckpointCheck(configured=checkpoint_key is not None and checkpoint_dir is not None)
    )
    problem = result.problem or (checkpoint.problem if checkpoint.ok is False else None)
    return LogVerification(
        ok=result.ok and checkpoint.ok is not False,
        records=result.records,
        head=Head(seq=seq, hash=head),
        problem=problem,
        first_tampered=None if result.ok or result.seq is None else _row_at(log, result.seq),
        checkpoint=checkpoint,
        verified_at=now_iso(),
    )


def _row_at(log: DecisionLog, seq: int) -> TamperedRecord:
    with log.engine.connect() as conn:
        row = conn.execute(select(Record.decision_id, Record.kind).where(Record.seq == seq)).first()
    if row is None:
        return TamperedRecord(seq=seq)
    return TamperedRecord(seq=seq, id=row.decision_id, kind=row.kind)


def _newest_checkpoint(log: DecisionLog, key_path: Path, directory: Path) -> CheckpointCheck:
    """The newest checkpoint signed by the service's key; a file that does not verify is a problem
    too (someone edited the directory)."""
    try:
        key = load_private(key_path).public_key()
    except CheckpointError as exc:
        return CheckpointCheck(configured=True, ok=False, problem=f"checkpoint key: {exc}")
    stored, unreadable = read_dir(directory, key)
    if not stored:
        why = "; ".join(unreadable) or "no signed checkpoint written yet"
        return CheckpointCheck(configured=True, ok=not unreadable, problem=why)
    newest = stored[-1]
    cp = newest.checkpoint
    found = CheckpointCheck(configured=True, file=newest.path.name, size=cp.size, time=cp.time)
    problem = extension_problem(log, cp)
    if problem is not None:
        reset = acknowledged(log, cp, key)
        if reset is None:
            return found.model_copy(update={"ok": False, "problem": problem})
        found = found.model_copy(update={"acknowledged": f"{problem}; checkpoint reset {reset.get('id')}"})
    if unreadable:
        return found.model_copy(update={"ok": False, "problem": "; ".join(unreadable)})
    return found.model_copy(update={"ok": True})
