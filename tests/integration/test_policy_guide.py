"""docs/policy-authoring.md's walk-through is a test: its files are written where the guide says,
its commands run in order (a shell, the real `policygate` and OPA) in a fresh directory holding a
copy of rego/ and the examples and a fresh decision log, and each command's shown output must match
what the tool prints (``...`` alone on a line: any lines; inside a line: any text). With
GUIDE_DUMP=FILE every command's real output is appended to FILE instead of compared (to update the
guide). And every row of its "What policygate refuses" table is a case refused with a code it shows."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.checkout import EXAMPLES, REGO, ROOT, opa_binary

DOC = ROOT / "docs" / "policy-authoring.md"
WALKTHROUGH = ("## Walk-through", "\n## Waivers")
BLOCK = re.compile(r"(?:^`([^`\n]+)`(?:(?!\n\n|```).)*\n\n)?```(\w+)\n(.*?)```", re.S | re.M)


@dataclass(frozen=True)
class Step:
    kind: str  # file | modes | command
    text: str
    path: str = ""
    shown: str = ""


def steps() -> list[Step]:
    """The walk-through in order: files to write (a block right after a line naming its path),
    the modes to merge into rego/data.json, and console commands with their shown output."""
    doc = DOC.read_text()
    start = doc.index(WALKTHROUGH[0])
    section = doc[start : doc.index(WALKTHROUGH[1], start)]
    found: list[Step] = []
    for match in BLOCK.finditer(section):
        path, lang, body = match.group(1), match.group(2), match.group(3)
        if lang == "console":
            found += _commands(body)
        elif lang == "json" and body.lstrip().startswith('"modes"'):
            found.append(Step("modes", body))
        elif path and lang in ("rego", "json"):
            found.append(Step("file", body, path=path))
    return found


def _commands(block: str) -> list[Step]:
    commands: list[Step] = []
    command: list[str] = []
    shown: list[str] = []
    lines = block.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("$ "):
            if command:
                commands.append(Step("command", "\n".join(command), shown="\n".join(shown)))
            command, shown = [line[2:]], []
            while command[-1].endswith("\\") and i + 1 < len(lines):
                i += 1
                command.append(lines[i])
        else:
            shown.append(line)
        i += 1
    if command:
        commands.append(Step("command", "\n".join(command), shown="\n".join(shown)))
    return commands


def matches(shown: str, printed: str) -> bool:
    """Every shown line in order, ``...`` alone skipping any lines and inside a line any text."""
    pattern = ""
    for line in shown.splitlines():
        if line.strip() == "...":
            pattern += r"(?:.*\n)*?"
        else:
            pattern += ".*?".join(re.escape(part) for part in line.rstrip().split("...")) + r"[ \t]*\n"
    return re.fullmatch(pattern, printed.rstrip("\n") + "\n" if printed.strip() else "") is not None


def test_the_walkthrough_runs_as_shown(tmp_path: Path) -> None:
    work = tmp_path / "repo"
    shutil.copytree(REGO, work / "rego")
    shutil.copytree(EXAMPLES, work / "examples" / "evidence")
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(ROOT / "src"),
        "POLICYGATE_OPA_BIN": str(Path(opa_binary()).resolve()),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "COLUMNS": "200",
    }
    for key in [k for k in env if k.startswith("POLICYGATE_") and k != "POLICYGATE_OPA_BIN"]:
        del env[key]
    exports = ""  # an `export` in the guide holds for the commands after it
    ran = 0
    for step in steps():
        if step.kind == "file":
            target = work / step.path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(step.text)
        elif step.kind == "modes":
            data_file = work / "rego" / "data.json"
            data = json.loads(data_file.read_text())
            data["policygate_params"].update(json.loads("{" + step.text.strip() + "}"))
            data_file.write_text(json.dumps(data, indent=2))
        else:
            proc = subprocess.run(
                ["bash", "-c", f"{exports}{step.text}"],
                cwd=work,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            printed = proc.stdout
            if os.environ.get("GUIDE_DUMP"):
                with open(os.environ["GUIDE_DUMP"], "a") as f:
                    f.write(
                        f"$ {step.text}\n[exit {proc.returncode}]\n{printed}{proc.stderr[-1500:]}\n=====\n"
                    )
            if step.text.startswith("export "):
                exports += step.text + "\n"
            assert os.environ.get("GUIDE_DUMP") or matches(step.shown, printed), (
                f"docs/policy-authoring.md: `{step.text}` printed (exit {proc.returncode}):\n{printed}"
                f"{proc.stderr[-2000:]}\nbut the guide shows:\n{step.shown}"
            )
            ran += 1
    assert ran >= 6, f"only {ran} commands found in the walk-through"


# ---------------------------------------------------------------------------
# "What policygate refuses": every row is a case, refused with a code its message column shows
# ---------------------------------------------------------------------------


def refuses_rows() -> dict[str, list[str]]:
    """Check name -> the codes its message column shows."""
    doc = DOC.read_text()
    table = doc[doc.index("## What policygate refuses") :].split("\n### ", 1)[0]
    rows = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if (
            len(cells) == 4
            and cells[0] not in ("check", "---|---|---|---")
            and not cells[0].startswith("---")
        ):
            name = cells[0].split("`")[1] if cells[0].startswith("`") else cells[0]
            rows[name] = [c for c in re.findall(r"`([a-z][a-z_]+)(?::|`)", cells[2]) if "_" in c]
    return rows


def _row_cases() -> dict[str, Any]:
    from tests.integration import test_policy_mistakes_authored as authored

    m, write, replace, privacy = authored.MISTAKES, authored.write, authored.replace, authored.PRIVACY
    return {
        "data files parse": (write("data.yaml", "policygate_params: [\n"),),
        "data merges": m["data-conflict-names-key-and-files"].edits,
        "reserved data": m["standing-waiver-in-a-data-file"].edits,
        "opa check --strict --schema": (replace(privacy, "input.subject.tags.pii", "input.subject.tag.pii"),),
        "literal evidence paths": (
            replace(
                privacy, "\thandles_pii\n", '\thandles_pii\n\tpresent(ev(["lineage", "code", "comit"]))\n'
            ),
        ),
        "rule package": (
            write(
                "policygate/typo.rego",
                "package policygat\n\n# METADATA\n# title: t\n# custom:\n#   id: TYP-001\n#   severity: low\n"
                "#   controls:\n#     - X\n"
                'violation contains {"id": "TYP-001"} if input.subject.name == "x"\n',
            ),
        ),
        "rule metadata": (replace(privacy, "#   severity: high\n", ""),),
        "rule heads": m["deny-head-instead-of-violation"].edits,
        "test files": m["rule-written-in-a-test-file"].edits,
        "one definition per name": m["local-helper-merges-with-util"].edits,
        "builtins": m["network-builtin"].edits,
        "custom parameters": m["custom-param-quoted-number"].edits,
        "defaults hiding typos": m["evidence-key-typo-through-a-function-parameter"].edits,
        "sprintf": m["sprintf-argument-count"].edits,
        "the tests pass": m["vacuous-every"].edits,
        "unique ids": (replace(privacy, "id: PRV-001", "id: LIN-003"),),
        "parameters": (replace("data.json", '"max_approval_age_days": 90', '"max_approval_age_days": "90"'),),
        "every rule fires": m["example-for-a-rule-nobody-has"].edits,
        "the OPA starts": (write("policygate/decision/data.json", '{"x": 1}'),),
    }


def test_every_refuses_row_has_a_case() -> None:
    assert set(refuses_rows()) == set(_row_cases())


@pytest.mark.parametrize("row", sorted(refuses_rows()))
def test_each_refuses_row_is_true(row: str, tmp_path: Path) -> None:
    from tests.integration.test_policy_mistakes_authored import authored_copy, refusal

    rego = authored_copy(tmp_path)
    for edit in _row_cases()[row]:
        edit(rego)
    refused = refusal(rego)
    codes = refuses_rows()[row]
    assert refused and any(f": {code}" in refused or code in refused for code in codes), (row, codes, refused)
