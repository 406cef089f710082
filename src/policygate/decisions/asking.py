"""Asking OPA for a decision: its answer paired with the revision of the policy that gave it.

A reload that swaps the OPA while a query runs would pair an old answer with the new revision: the
revision known before (a reload notes the new one as it swaps) is compared with the one after, and
the question asked again when it moved (at most ``SWAP_RETRIES`` times in all).
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread

from policygate.engine.http1 import Http1Pool
from policygate.engine.opa import OpaEngine
from policygate.engine.result import Answer
from policygate.metrics import Metrics

# A decision evaluated while a reload swapped the OPA is asked again (at most this many times in
# all), so that its recorded policy revision is the one that answered.
SWAP_RETRIES = 3


def answer(engine: OpaEngine, doc: dict[str, Any], metrics: Metrics) -> tuple[Answer, str]:
    """(OPA's answer to ``doc``, the revision of the policy that produced it)."""
    for _ in range(SWAP_RETRIES):
        before = engine.cached_revision()  # no query: the answer's own error comes first
        with metrics.timed(metrics.evaluate_seconds):
            found = engine.answer(doc)
        engine.instance_id()  # asked once per OPA: the label its decision log would carry
        if found.revision is not None:  # OPA said which bundle revision answered: nothing to pair up
            return found, found.revision
        revision = engine.policy_revision
        if before in (None, revision):
            break
    return found, revision


async def answer_async(
    engine: OpaEngine, doc: dict[str, Any], metrics: Metrics, pool: Http1Pool | None = None
) -> tuple[Answer, str]:
    """:func:`answer` for the event loop (``pool``: the caller's connections to OPA)."""
    for _ in range(SWAP_RETRIES):
        before = engine.cached_revision()
        with metrics.timed(metrics.evaluate_seconds):
            found = await engine.answer_async(doc, pool)
        if not engine.instance_known():  # asked once per OPA, off the event loop
            await anyio.to_thread.run_sync(engine.instance_id)
        if found.revision is not None:
            return found, found.revision
        revision = await revision_async(engine)
        if before in (None, revision):
            break
    return found, revision


async def revision_async(engine: OpaEngine) -> str:
    """The policy revision; asks OPA (in a thread) only when the cached one is stale."""
    cached = engine.cached_revision()
    if cached is not None:
        return cached
    return await anyio.to_thread.run_sync(lambda: engine.policy_revision)
