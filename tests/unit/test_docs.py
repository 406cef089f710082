"""docs/evidence.md documents every field of the evidence schema, as generated."""

from __future__ import annotations

import re
from pathlib import Path

from policygate.schema_doc import markdown
from tests.support.checkout import ROOT


def test_evidence_doc_matches_the_schema() -> None:
    doc = (ROOT / "docs" / "evidence.md").read_text()
    assert markdown() in doc, (
        "docs/evidence.md is stale: regenerate with `policygate schema --format markdown`"
    )


# `policygate` on the public package index is someone else's project: no document may install it by
# name (docs/ci-cd.md "Installing policygate in a pipeline"); every recipe installs the one pinned way.
BARE_INSTALL = re.compile(
    r"""(?:pip3?\s+install|pipx\s+install|uv\s+tool\s+install|uv\s+add|poetry\s+add)\s+"""
    r"""(?:-{1,2}[\w-]+(?:[ =]\S+)?\s+)*['"]?policygate(?![\w./-])(?!\s*@)"""
)
INSTALL_SECTION = "## Installing policygate in a pipeline"


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def canonical_install() -> str:
    """The one install line docs/ci-cd.md gives (the first ```sh block of its install section)."""
    text = (ROOT / "docs" / "ci-cd.md").read_text()
    section = text.split(INSTALL_SECTION, 1)[1]
    return section.split("```sh\n", 1)[1].split("\n```", 1)[0].strip()


def test_bare_install_pattern_catches_every_spelling() -> None:
    for bad in (
        "pip install policygate",
        "pip install -U policygate",
        "pip3 install 'policygate[postgres]'",
        'pip install "policygate==0.1.0"',
        "pip install --upgrade policygate",
        "pipx install policygate",
        "uv add policygate",
        "poetry add policygate",
    ):
        assert BARE_INSTALL.search(bad), bad
    for good in (
        'pip install "policygate @ git+https://example.com/policygate@v0.1.0"',
        "pip install --no-deps policygate/dist/policygate-0.1.0-py3-none-any.whl",
        "pip install --require-hashes -r policygate/requirements.lock",
    ):
        assert not BARE_INSTALL.search(good), good


def test_no_document_installs_policygate_from_the_public_index() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in doc_files()
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if BARE_INSTALL.search(line)
    ]
    assert not found, "installs the public index's (foreign) policygate:\n" + "\n".join(found)


def test_every_ci_recipe_installs_policygate_the_one_pinned_way() -> None:
    line = canonical_install()
    assert "pip install --no-deps policygate/dist/" in line and "--require-hashes" in line
    recipes = 0
    for path in doc_files():
        for block in re.findall(r"```ya?ml\n(.*?)```", path.read_text(), flags=re.S):
            installs = [x for x in block.splitlines() if re.search(r"\bpip3?\s+install\b", x)]
            assert all(line in x for x in installs), f"{path.name}: {installs}"
            recipes += bool(installs)
    assert recipes >= 5  # GitHub Actions and Azure Pipelines gates, deploys, and the audit job
