"""One module per output: the decision formats (`<fmt>_output.render(decision)`) and one per report."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import TYPE_CHECKING

from policygate.decisions.model import Decision

if TYPE_CHECKING:
    from policygate.audit.model import AuditRun

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


AUDIT_FORMATS = ("text", "json", "junit", "github", "csv")


def audit_renderer(fmt: str) -> Callable[[AuditRun], str]:
    """The renderer of an audit run's report (``policygate audit report``): one module per format."""
    if fmt not in AUDIT_FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(AUDIT_FORMATS)}")
    module = import_module(f"policygate.output.audit_{fmt}")
    render: Callable[[AuditRun], str] = module.render
    return render
