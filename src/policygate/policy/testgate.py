"""The policy's own Rego tests as a load check: a change whose tests fail (or, with
``policygate_params.min_test_coverage``, whose tests cover too little) is refused like any other
mistake, at ``policy check``, start-up, a ``--watch`` reload, ``evaluate`` and ``bundle build``.

A logic slip (``every`` over an empty list, ``not x == "false"`` when x is absent, a case-sensitive
compare) is only caught by a test; before, a reload never ran them. The outcome of a passing run is
cached by the digest of every loaded file (and the OPA binary and floor), so a CLI run on an unchanged
directory does not pay for ``opa test`` again.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from policygate.config.paths import cache_home
from policygate.engine.runner import CheckError, output_text, run_opa

TIMEOUT_S = 120.0


def cache_dir() -> Path:
    return cache_home("opa-test")


def _key(files: dict[str, bytes], binary: str, floor: float | None) -> str:
    h = hashlib.sha256(f"{binary}\0{floor}\0".encode())
    for path in sorted(files):
        h.update(Path(path).name.encode() + b"\0" + hashlib.sha256(files[path]).digest())
    return h.hexdigest()


def test_errors(
    binary: str, copy: Path, files: dict[str, bytes], floor: float | None, policy_dir: Path
) -> list[CheckError]:
    """``opa test`` on the checked copy: each failing test (file, line, name), or too little coverage."""
    if not any(p.endswith("_test.rego") for p in files):
        return []
    marker = cache_dir() / _key(
        {str(Path(p).relative_to(policy_dir)): c for p, c in files.items()}, binary, floor
    )
    if marker.is_file():
        return []
    proc = run_opa(binary, ["test", str(copy), "--format", "json"], timeout_s=TIMEOUT_S)
    try:
        raw: Any = json.loads(proc.stdout)
    except ValueError:
        return [CheckError(str(policy_dir), 0, 0, "policy_test_failed", f"opa test: {output_text(proc)}")]
    errors = _failures(raw if isinstance(raw, list) else [], copy, policy_dir)
    if not errors and proc.returncode == 0 and floor is not None:  # (--coverage reports no results)
        proc = run_opa(binary, ["test", str(copy), "--format", "json", "--coverage"], timeout_s=TIMEOUT_S)
        try:
            coverage = float(json.loads(proc.stdout).get("coverage") or 0)
        except (ValueError, AttributeError, TypeError):
            coverage = 0.0
        if coverage < floor:
            errors.append(
                CheckError(
                    str(policy_dir),
                    0,
                    0,
                    "policy_test_coverage",
                    f"the Rego tests cover {coverage:.1f}% of the policy, below min_test_coverage {floor:g}%",
                )
            )
    if not errors and proc.returncode == 0:
        marker.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        marker.write_text("pass\n")
    elif not errors:
        errors = [CheckError(str(policy_dir), 0, 0, "policy_test_failed", f"opa test: {output_text(proc)}")]
    return errors


def _failures(results: list[Any], copy: Path, policy_dir: Path) -> list[CheckError]:
    errors = []
    for result in results:
        if not isinstance(result, dict) or not (result.get("fail") or result.get("error")):
            continue
        loc = result.get("location") or {}
        file = str(loc.get("file", ""))
        for prefix in (str(copy), str(copy).lstrip("/")):
            if file.startswith(prefix):
                file = str(policy_dir) + file[len(prefix) :]
                break
        err = result.get("error")
        why = f": {err.get('message', err) if isinstance(err, dict) else err}" if err else ""
        errors.append(
            CheckError(
                file,
                int(loc.get("row", 0) or 0),
                1,
                "policy_test_failed",
                f"test {result.get('name', '?')} fails{why} (the policy's own tests must pass before it "
                "may decide: `policygate policy test` shows why)",
            )
        )
    return errors
