"""The install line every CI recipe uses (docs/ci-cd.md) works: `make dist` builds the wheel from a
checkout, and the wheel installed with --no-deps into a fresh virtualenv gives a working `policygate`.

The locked dependencies are not downloaded again here: the fresh venv sees the project venv's
site-packages through a path file (not as a site directory, so its editable policygate stays out)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from tests.support.checkout import ROOT
from tests.unit.test_docs import canonical_install

SKIP = shutil.ignore_patterns(
    ".venv", ".bin", ".git", ".policygate", "dist", "build", "*.egg-info", "__pycache__"
)


def test_the_documented_install_line_gives_a_working_policygate(tmp_path: Path) -> None:
    steps = [s.strip() for s in canonical_install().split("&&")]
    make, _locked, wheel = steps  # the lock step is the venv's own (hash-checked) stack here
    assert make == "make -C policygate dist"
    assert wheel.startswith("pip install --no-deps ")
    shutil.copytree(ROOT, tmp_path / "policygate", ignore=SKIP)
    subprocess.run([*make.split(), f"PYTHON={sys.executable}"], cwd=tmp_path, check=True, timeout=300)

    venv = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    fresh_site = next((venv / "lib").glob("python3*/site-packages"))
    (fresh_site / "locked-stack.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    pip = [str(venv / "bin" / "python"), "-m", "pip"]
    subprocess.run([*pip, *wheel.split()[1:]], cwd=tmp_path, check=True, timeout=120)

    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import policygate; print(policygate.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert where.startswith(str(fresh_site)), f"policygate imported from {where}, not the installed wheel"
    helped = subprocess.run(
        [str(venv / "bin" / "policygate"), "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert helped.returncode == 0, helped.stderr
    assert "check" in helped.stdout and "serve" in helped.stdout
