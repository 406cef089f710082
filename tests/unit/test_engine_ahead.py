"""The hand-over of an engine started ahead (policygate.engine.ahead): what the start raised is
raised to whoever takes it, and an engine nobody took is closed exactly once."""

from __future__ import annotations

from typing import Any, cast

import pytest

from policygate.engine.ahead import EngineAhead
from policygate.engine.errors import EngineError
from policygate.engine.opa import OpaEngine


class Started:
    """Stands in for a started engine: only its closing is observed here."""

    def __init__(self) -> None:
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


def ahead_of(started: Any) -> EngineAhead:
    return EngineAhead(lambda: cast(OpaEngine, started))


def test_an_engine_nobody_took_is_closed_once() -> None:
    started = Started()
    with ahead_of(started) as ahead:
        pass
    ahead.close()
    assert started.closed == 1


def test_a_taken_engine_is_the_takers_to_close() -> None:
    started = Started()
    with ahead_of(started) as ahead:
        assert cast(object, ahead.take()) is started
    assert started.closed == 0


def test_what_the_start_raised_is_raised_to_the_taker() -> None:
    def refuse() -> OpaEngine:
        raise EngineError("policy_error", "rego/ refused")

    with EngineAhead(refuse) as ahead, pytest.raises(EngineError, match="rego/ refused"):
        ahead.take()
    ahead.close()  # nothing to close, nothing raised
