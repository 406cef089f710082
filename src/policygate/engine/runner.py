"""The one runner of the ``opa`` command (eval, test, check, inspect, parse) and its error parsing.

Every other module asks OPA through here, so a missing binary, a timeout or an error
OPA printed as text instead of JSON is handled once, and an error is never empty.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from policygate.engine.errors import EngineError


@dataclass
class CheckError:
    """One problem with a policy directory: where (file, line, column), what (code) and why."""

    file: str
    row: int
    col: int
    code: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.row}" if self.row else self.file
        where += f":{self.col}" if self.row and self.col else ""
        return f"{where}: {self.code}: {self.message}"


def run_opa(
    binary: str, args: list[str], *, timeout_s: float = 300, stdin: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``opa ARGS``; a binary that cannot run raises :class:`EngineError` (``unreachable``)."""
    try:
        return subprocess.run(
            [binary, *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
            cwd=cwd,
        )
    except FileNotFoundError:
        raise EngineError("unreachable", f"OPA binary {binary!r} not found: run `make setup`") from None
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EngineError("unreachable", f"cannot run {binary} {args[0]}: {exc}") from exc


def output_text(proc: subprocess.CompletedProcess[str]) -> str:
    """What OPA said, never empty: stderr, else stdout, else the exit status."""
    text = (proc.stderr or "").strip() or (proc.stdout or "").strip()
    return text[:4000] or f"{proc.args[0] if proc.args else 'opa'} exited with status {proc.returncode}"


def errors_of(raw: Any) -> list[CheckError]:
    """OPA's JSON errors (``{"errors": [{code, message, location}]}``) as :class:`CheckError`."""
    errors = raw.get("errors") if isinstance(raw, dict) else None
    out = []
    for err in errors or []:
        if not isinstance(err, dict):
            continue
        loc = err.get("location") or {}
        out.append(
            CheckError(
                file=str(loc.get("file", "")),
                row=int(loc.get("row", 0) or 0),
                col=int(loc.get("col", 0) or 0),
                code=str(err.get("code", "") or "opa_error"),
                message=str(err.get("message", "") or "(OPA gave no message)"),
            )
        )
    return out


def check_errors(proc: subprocess.CompletedProcess[str], where: Path | str) -> list[CheckError]:
    """The errors of a failed ``opa check|eval --format json``; one from the raw output when none parse."""
    if proc.returncode == 0 and not proc.stderr.strip().startswith("{"):
        return []
    for text in (proc.stdout, proc.stderr):
        try:
            found = errors_of(json.loads(text))
        except ValueError:
            continue
        if found:
            return found
    if proc.returncode == 0:
        return []
    return [CheckError(str(where), 0, 0, "opa_failed", output_text(proc))]


def check(
    binary: str,
    paths: list[Path],
    *,
    strict: bool = True,
    schema: Path | None = None,
    capabilities: Path | None = None,
) -> list[CheckError]:
    """``opa check [--strict] [--schema FILE] [--capabilities FILE]``: compile errors, strict lints,
    schema type errors and builtins the capabilities leave out."""
    args = ["check", "--format", "json", *(["--strict"] if strict else [])]
    if schema is not None:
        args += ["--schema", str(schema)]
    if capabilities is not None:
        args += ["--capabilities", str(capabilities)]
    return check_errors(run_opa(binary, [*args, *map(str, paths)]), paths[0] if paths else "")
