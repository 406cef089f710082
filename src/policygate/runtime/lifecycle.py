"""One lifecycle for every background part of a running policygate (OPA's plugin manager, in small):
each part starts, stops and says how it is; the runtime starts them in order and stops them in
reverse, so a part never outlives what it depends on, and ``/readyz`` reads their statuses."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PartStatus:
    """How a part is. ``check``: the ``/readyz`` check it answers (None: none), failing with
    ``problem``; ``detail``: what ``/readyz`` shows under that check's name (e.g. the policy state)."""

    name: str
    running: bool
    problem: str | None = None
    check: str | None = None
    detail: dict[str, Any] | None = None


class Part(Protocol):
    """A background part: the waiver sync, the watcher, the webhook worker, ..."""

    name: str

    def start(self) -> object: ...

    def stop(self) -> None: ...

    def status(self) -> PartStatus: ...


class Startable(Protocol):
    def start(self) -> object: ...

    def stop(self) -> None: ...


T = TypeVar("T", bound=Startable)


class Adapted(Generic[T]):
    """A class with its own ``start()``/``stop()`` as a :class:`Part`: its name, and how its status
    reads (``problem`` and ``detail`` ask the running object)."""

    def __init__(
        self,
        name: str,
        inner: T,
        *,
        check: str | None = None,
        problem: Callable[[T], str | None] = lambda _: None,
        detail: Callable[[T], dict[str, Any] | None] = lambda _: None,
    ) -> None:
        self.name, self.inner, self.check = name, inner, check
        self._problem, self._detail = problem, detail
        self.running = False

    def start(self) -> T:
        self.inner.start()
        self.running = True
        return self.inner

    def stop(self) -> None:
        self.running = False
        self.inner.stop()

    def status(self) -> PartStatus:
        inner = self.inner
        return PartStatus(self.name, self.running, self._problem(inner), self.check, self._detail(inner))


class Lifecycle:
    """The parts started so far, in the order they were started."""

    def __init__(self) -> None:
        self.parts: list[Part] = []

    def start(self, part: Part) -> None:
        part.start()
        self.parts.append(part)

    def started(self, part: Adapted[T]) -> T:
        """Start ``part``; the object it adapts, running."""
        self.start(part)
        return part.inner

    def stop(self) -> None:
        """Stop every part, the last started first; one that fails to stop does not keep the
        others running."""
        while self.parts:
            part = self.parts.pop()
            try:
                part.stop()
            except Exception:  # noqa: BLE001 - the rest must still stop
                log.exception("stopping %s failed", part.name)

    def statuses(self) -> list[PartStatus]:
        return [part.status() for part in self.parts]
