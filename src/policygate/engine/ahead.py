"""An engine started before the caller's heavier imports, and taken once it needs it.

A cold ``policygate evaluate`` imports the decision log's libraries (SQLAlchemy and the decision
modules: about 0.25 s of Python) and compiles the policy into the in-process OPA (about 0.1 s in Go,
which releases the GIL). Done one after the other, they add up; so the start runs on its own thread,
alone until it hands the compile to Go, and then the caller goes on importing while OPA compiles
(docs/benchmarks.md, "Cold start"). Letting both threads run Python at once was measured slower: they
only took the GIL from each other. Nothing is decided before the runtime holds the engine and its log.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from types import TracebackType

from policygate.engine.inproc import on_compile
from policygate.engine.opa import OpaEngine

logger = logging.getLogger(__name__)


class EngineAhead:
    """``start()`` on its own thread. The constructor returns once the start is compiling in Go (or
    has ended); :meth:`take` hands the engine over (or raises what the start raised); :meth:`close`,
    or leaving the ``with`` block, stops an engine nobody took."""

    def __init__(self, start: Callable[[], OpaEngine]) -> None:
        self._start = start
        self._engine: OpaEngine | None = None
        self._error: BaseException | None = None
        self._taken = False
        self._compiling = threading.Event()
        self._thread = threading.Thread(target=self._run, name="engine-ahead", daemon=True)
        self._thread.start()
        self._compiling.wait()

    def _run(self) -> None:
        on_compile(self._compiling.set)
        try:
            self._engine = self._start()
        except BaseException as exc:  # noqa: BLE001 - handed to take(), which raises it in the caller
            self._error = exc
        finally:
            on_compile(None)
            self._compiling.set()

    def take(self) -> OpaEngine:
        """The started engine, now the caller's to close; what the start raised, raised here."""
        self._thread.join()
        self._taken = True
        if self._error is not None:
            raise self._error
        assert self._engine is not None
        return self._engine

    def close(self) -> None:
        """Stop the engine when nobody took it (the command ended first: a bad input, a log that
        would not open)."""
        self._thread.join()
        if self._taken:
            return
        self._taken = True
        if self._engine is not None:
            self._engine.close()
        elif self._error is not None:
            logger.debug("an engine started ahead failed and was not needed: %s", self._error)

    def __enter__(self) -> EngineAhead:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
