"""The public Python API: every name docs/python-api.md uses imports from ``policygate`` and from the
path the doc shows, as the same object, and ``policygate.__all__`` is exactly that set."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib import import_module

import policygate
from tests.support.checkout import ROOT

DOC = (ROOT / "docs" / "python-api.md").read_text()
# `from policygate.x import A, B` (code blocks and inline), "`Name` (`policygate.x`" and
# "`policygate.x.Name`" in the prose
IMPORTED = [
    (module, name.strip())
    for module, names in re.findall(r"from (policygate[\w.]*) import (\w+(?:, \w+)*)", DOC)
    for name in names.split(",")
]
NAMED = [(module, name) for name, module in re.findall(r"`(\w+)` \(`(policygate[\w.]*)`", DOC)]
DOTTED = re.findall(r"`(policygate(?:\.[a-z_]+)+)\.([A-Z]\w*)`", DOC)
DOCUMENTED = sorted({*IMPORTED, *NAMED, *DOTTED})


def test_the_doc_names_what_we_expect_to_check() -> None:
    names = {name for _, name in DOCUMENTED}
    assert {"Settings", "DecisionService", "OpaEngine", "open_runtime", "app", "ArtifactSettings"} <= names


def test_every_documented_name_imports_from_both_places_as_one_object() -> None:
    for module, name in DOCUMENTED:
        old = getattr(import_module(module), name)
        assert getattr(policygate, name) is old, f"policygate.{name} is not {module}.{name}"


def test_all_is_exactly_the_documented_api() -> None:
    assert set(policygate.__all__) == {"__version__"} | {name for _, name in DOCUMENTED}


def test_an_unknown_name_is_an_attribute_error() -> None:
    try:
        policygate.NoSuchThing  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("policygate.NoSuchThing did not raise")


def test_importing_the_package_stays_cheap() -> None:
    """``import policygate`` (run by every submodule import, the CLI's included) loads no layer."""
    code = "import sys, policygate; print(sorted(m for m in sys.modules if m.startswith('policygate')))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "['policygate', 'policygate.version']"
