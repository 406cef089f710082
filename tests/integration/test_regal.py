"""Regal v0.34.1 (OPA's Rego linter, scripts/ensure-regal.sh) passes on rego/ with the checked-in
.regal/config.yaml, and fails on a deliberately long line: the lint `make test` runs is not a no-op."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.support.checkout import ROOT

REGAL = ROOT / ".bin" / "regal"


def regal_lint(where: Path) -> subprocess.CompletedProcess[str]:
    assert REGAL.is_file(), "no .bin/regal: run scripts/ensure-regal.sh (make test does)"
    return subprocess.run(
        [str(REGAL), "lint", "rego/"], cwd=where, capture_output=True, text=True, timeout=120, check=False
    )


def copy(tmp: Path) -> Path:
    shutil.copytree(ROOT / "rego", tmp / "rego")
    shutil.copytree(ROOT / ".regal", tmp / ".regal")
    return tmp


def test_rego_is_lint_clean_under_the_checked_in_config(tmp_path: Path) -> None:
    result = regal_lint(copy(tmp_path))
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_a_long_line_fails_the_lint(tmp_path: Path) -> None:
    where = copy(tmp_path)
    util = where / "rego" / "policygate" / "util.rego"
    util.write_text(util.read_text() + "\n# " + "a deliberately long line " * 12 + "\n")
    result = regal_lint(where)
    assert result.returncode != 0
    assert "line-length" in result.stdout and "util.rego" in result.stdout


def test_unknown_data_references_are_still_reported(tmp_path: Path) -> None:
    """Only policygate's own data documents are declared: a typo in one is still an error."""
    where = copy(tmp_path)
    util = where / "rego" / "policygate" / "util.rego"
    util.write_text(util.read_text() + "\ntypo_param := data.policygate_parms.modes\n")
    result = regal_lint(where)
    assert result.returncode != 0
    assert "unresolved-reference" in result.stdout and "policygate_parms" in result.stdout
