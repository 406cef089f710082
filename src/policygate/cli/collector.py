"""Python's cyclic garbage collector over a command's life.

A command is short, and nearly all it allocates (modules, classes, pydantic's schemas, the OPA
library's bindings) lives until it exits. With the default thresholds the collector walks that heap
again and again while it is being imported, and once more at interpreter exit: about a sixth of a
cold ``policygate evaluate`` (docs/benchmarks.md, "Cold start"). So a command runs with a higher
first-generation threshold (cyclic garbage is still collected, every ``FIRST_GENERATION``
allocations) and freezes its heap when it ends, so exit frees it without walking it. ``serve`` and
``witness`` live long: they freeze what their start allocated and go back to the defaults.
"""

from __future__ import annotations

import gc

DEFAULTS = gc.get_threshold()
FIRST_GENERATION = 10_000  # Python's default is 700


def for_a_command() -> None:
    """At the start of ``policygate``, before a command imports what it uses."""
    gc.set_threshold(FIRST_GENERATION, *DEFAULTS[1:])


def for_a_service() -> None:
    """Before a long-running server starts: what was allocated so far lives as long as it does."""
    gc.freeze()
    gc.set_threshold(*DEFAULTS)


def at_exit() -> None:
    """When the command has ended: the interpreter's last collections skip what exit frees anyway."""
    gc.freeze()
