"""The runtime's lifecycle: parts start in order and stop in reverse; a part that fails to stop does
not keep the others running; "no OPA" is an engine whose every query is the start-up error."""

from __future__ import annotations

import asyncio

import pytest

from policygate.engine.errors import EngineError
from policygate.runtime.lifecycle import Adapted, Lifecycle, PartStatus
from policygate.runtime.null_engine import NullEngine


class Thing:
    def __init__(self, name: str, events: list[str], fail_stop: bool = False) -> None:
        self.name, self.events, self.fail_stop = name, events, fail_stop

    def start(self) -> Thing:
        self.events.append(f"start {self.name}")
        return self

    def stop(self) -> None:
        self.events.append(f"stop {self.name}")
        if self.fail_stop:
            raise RuntimeError("stuck")


def test_parts_start_in_order_and_stop_in_reverse_even_when_one_fails() -> None:
    events: list[str] = []
    lifecycle = Lifecycle()
    a = lifecycle.started(Adapted("a", Thing("a", events)))
    lifecycle.start(Adapted("b", Thing("b", events, fail_stop=True), check="b", problem=lambda _: "bad"))
    assert a.name == "a"
    assert lifecycle.statuses() == [
        PartStatus("a", True),
        PartStatus("b", True, problem="bad", check="b"),
    ]
    lifecycle.stop()
    assert events == ["start a", "start b", "stop b", "stop a"]
    assert lifecycle.statuses() == []


def test_the_null_engine_answers_every_query_with_its_start_error() -> None:
    engine = NullEngine(EngineError("policy_error", "the policy is refused"))
    for query in (lambda: engine.answer({}), lambda: engine.policy_revision, engine.policies):
        with pytest.raises(EngineError, match="the policy is refused"):
            query()
    with pytest.raises(EngineError, match="the policy is refused"):
        asyncio.run(engine.answer_async({}))
    assert not engine.healthy()
    assert engine.cached_revision() is None and engine.bundle_status() is None
    assert engine.instance_id() is None and engine.policy_files is None
    engine.close()
