""" "No OPA" as an engine: what the runtime serves with when OPA would not start (a refused policy,
no binary, an address that does not answer). It has the engine's interface and answers every
query with the EngineError that says why, so each decision fails closed as ``outcome: error``
and no caller has to ask whether there is an engine."""

from __future__ import annotations

from typing import Any

from policygate.engine.errors import EngineError
from policygate.engine.http1 import Http1Pool
from policygate.engine.opa import OpaEngine
from policygate.engine.result import Answer


class NullEngine(OpaEngine):
    kind = "none"  # /readyz names no engine for it

    def __init__(self, error: EngineError, timeout_s: float = 5.0) -> None:
        # no OpaEngine.__init__: there is no address to talk to (it would refuse an empty URL)
        self.error = error
        self.url = ""
        self.managed = None
        self.describe = None
        self.token = None
        self.timeout_s = timeout_s
        self._init_state()

    def _fail(self) -> EngineError:
        """A fresh copy for each caller: one exception object is never raised on two threads."""
        return EngineError(self.error.code, self.error.message)

    def healthy(self) -> bool:
        return False

    def answer(self, evidence: dict[str, Any]) -> Answer:
        raise self._fail()

    async def answer_async(self, evidence: dict[str, Any], pool: Http1Pool | None = None) -> Answer:
        raise self._fail()

    def _query(self, evidence: dict[str, Any], params: dict[str, str] | None = None) -> dict[str, Any]:
        raise self._fail()

    async def _query_async(self, evidence: dict[str, Any], pool: Http1Pool | None = None) -> dict[str, Any]:
        raise self._fail()

    def _get(self, path: str) -> dict[str, Any]:
        raise self._fail()

    def put_data(self, path: str, value: Any) -> None:
        raise self._fail()

    def query(self, query: str, input_: Any = None) -> list[dict[str, Any]]:
        raise self._fail()

    def reconnect(self, url: str) -> None:
        raise self._fail()

    def adopt(self, other: OpaEngine) -> Any:
        raise self._fail()

    def close(self) -> None:
        """Nothing was started."""
