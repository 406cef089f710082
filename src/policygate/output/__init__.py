"""One module per output: the decision formats (`<fmt>_output.render(decision)`) and one per report."""

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


def many_renderer(fmt: str) -> Callable[[list[tuple[str, Decision]]], str]:
    """The renderer of several decisions, each with the file it came from (``evaluate A B C``)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    module = import_module(f"policygate.output.{fmt}_output")
    render: Callable[[list[tuple[str, Decision]]], str] = module.render_many
    return render
