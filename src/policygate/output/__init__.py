"""One module per output format; each exposes ``render(decision) -> str``."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module

from policygate.decisions.model import Decision

FORMATS = ("text", "json", "junit", "github")


def renderer(fmt: str) -> Callable[[Decision], str]:
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    module = import_module(f"policygate.output.{fmt}_output")
    render: Callable[[Decision], str] = module.render
    return render
