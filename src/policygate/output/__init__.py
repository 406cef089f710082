"""One module per output: the decision formats (`<fmt>_output.render(decision)`) and one per report."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import TYPE_CHECKING, Any

from policygate.decisions.decision import Decision

if TYPE_CHECKING:
    from policygate.audit.findings import AuditRun

FORMATS = ("text", "json", "junit", "github")


def _function(module: str, fmt: str, formats: tuple[str, ...], name: str = "render") -> Any:
    if fmt not in formats:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(formats)}")
    return getattr(import_module(f"policygate.output.{module}"), name)


def renderer(fmt: str) -> Callable[[Decision], str]:
    render: Callable[[Decision], str] = _function(f"{fmt}_output", fmt, FORMATS)
    return render


def many_renderer(fmt: str) -> Callable[[list[tuple[str, Decision]]], str]:
    """The renderer of several decisions, each with the file it came from (``evaluate A B C``)."""
    render: Callable[[list[tuple[str, Decision]]], str] = _function(
        f"{fmt}_output", fmt, FORMATS, "render_many"
    )
    return render


AUDIT_FORMATS = ("text", "json", "junit", "github", "csv")


def audit_renderer(fmt: str) -> Callable[[AuditRun], str]:
    """The renderer of an audit run's report (``policygate audit report``): one module per format."""
    render: Callable[[AuditRun], str] = _function(f"audit_{fmt}", fmt, AUDIT_FORMATS)
    return render
