"""One exception tree (policygate/errors.py): every error policygate raises on purpose derives from
PolicygateError, the two that become an ``error`` decision are DecisionErrors, and the input errors
are still ValueErrors for callers (and pydantic validators) that catch those."""

from __future__ import annotations

import ast
from importlib import import_module

import pytest

from policygate.errors import DecisionError, InputError, PolicygateError
from tests.support.checkout import ROOT

SRC = ROOT / "src" / "policygate"


def public_exceptions() -> list[tuple[str, str]]:
    """(module, class) for every public class in src whose name says it is an error."""
    found = []
    for path in SRC.rglob("*.py"):
        module = ".".join(path.relative_to(SRC.parent).with_suffix("").parts).removesuffix(".__init__")
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_") and node.bases:
                value = getattr(import_module(module), node.name)
                if isinstance(value, type) and issubclass(value, BaseException):
                    found.append((module, node.name))
    return found


def test_every_public_exception_is_in_the_tree() -> None:
    outside = [
        f"{module}.{name}"
        for module, name in public_exceptions()
        if not issubclass(getattr(import_module(module), name), PolicygateError)
    ]
    assert len(public_exceptions()) >= 25
    assert outside == []


@pytest.mark.parametrize(
    ("module", "name"),
    [("policygate.sources.base", "SourceError"), ("policygate.engine.errors", "EngineError")],
)
def test_what_becomes_an_error_decision(module: str, name: str) -> None:
    assert issubclass(getattr(import_module(module), name), DecisionError)


def test_input_errors_stay_value_errors() -> None:
    from policygate.refs import RefError, parse

    assert issubclass(InputError, ValueError)
    with pytest.raises(RefError) as caught:
        parse("not a ref")
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, PolicygateError)


def test_the_log_error_is_not_a_decision_error() -> None:
    """A log that cannot record must never be turned into a (recorded) error decision."""
    from policygate.decisions.database import LogError

    assert not issubclass(LogError, DecisionError)
