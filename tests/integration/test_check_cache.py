"""A passing load is remembered by what decided it (policy/check_cache.py): the next load of the same
directory skips the checks, and any change to a policy file, a data file or an example, a new OPA
binary, or a load that fails is checked afresh. Real OPA, on both engines."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import NamedTuple

import pytest

from policygate.engine.result import PolicyResult
from policygate.policy import check_cache
from policygate.policy.files import snapshot
from policygate.policy.load import load_policy
from tests.support.checkout import load_example, opa_binary, policy_copy

ENGINES = ("inprocess", "http")


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.delenv("POLICYGATE_CHECK_CACHE", raising=False)
    return cache / "policygate" / "checked"


class Decided(NamedTuple):
    ok: bool
    outcome: str | None
    found: list[str]  # the rule ids, or the codes of what was refused
    remembered: bool  # the checks did not run (LoadReport.remembered)


def decide(rego: Path, engine: str = "inprocess", binary: str | None = None) -> Decided:
    report, checked = load_policy(binary or opa_binary(), rego, engine=engine)
    if checked is None:
        return Decided(False, None, [e.code for e in report.errors], report.remembered)
    try:
        outcome = PolicyResult.from_opa(checked.evaluate(load_example("compliant"))).outcome
        return Decided(report.ok, outcome, [r.id for r in report.rules], report.remembered)
    finally:
        checked.close()


@pytest.fixture
def passed_once(tmp_path: Path, own_cache: Path) -> tuple[Path, Path]:
    """A copy of rego/ that passed its checks once: (the directory, its cache entry)."""
    rego = policy_copy(tmp_path)
    first = decide(rego)
    assert first.ok and not first.remembered
    (entry,) = own_cache.glob("*.json")
    return rego, entry


@pytest.mark.parametrize("engine", ENGINES)
def test_a_passing_load_is_remembered_and_decides_the_same(
    tmp_path: Path, own_cache: Path, engine: str
) -> None:
    rego = policy_copy(tmp_path)
    first = decide(rego, engine)
    assert first.ok and first.outcome == "allow" and not first.remembered
    assert len(list(own_cache.glob("*.json"))) == 1
    second = decide(rego, engine)
    assert second.remembered  # not checked again
    assert second._replace(remembered=False) == first  # same outcome, same rule catalogue


@pytest.mark.parametrize(
    "change",
    [
        "a rule edited",
        "data edited",
        "an example edited",
        "another opa binary",
    ],
)
def test_any_change_is_checked_afresh(tmp_path: Path, passed_once: tuple[Path, Path], change: str) -> None:
    rego, _ = passed_once
    examples = tmp_path / "examples" / "evidence"
    binary = opa_binary()
    if change == "a rule edited":  # a misspelled input path: the checks refuse it
        target = rego / "policygate" / "lineage.rego"
        target.write_text(target.read_text().replace("input.lineage", "input.lineag", 1))
    elif change == "data edited":  # a parameter of the wrong type
        data = json.loads((rego / "data.json").read_text())
        data["policygate_params"]["required_approvals"]["production"]["high"] = "two"
        (rego / "data.json").write_text(json.dumps(data))
    elif change == "an example edited":  # an example that no longer fires its rule
        (examples / "ACC-001.json").write_text((examples / "compliant.json").read_text())
    else:
        other = tmp_path / "opa"
        shutil.copy(binary, other)
        binary = str(other)
    after = decide(rego, binary=binary)
    assert not after.remembered, change  # checked again
    if change != "another opa binary":
        assert not after.ok, change
        # and a refusal is never remembered: the same mistake is found again
        again = decide(rego, binary=binary)
        assert not again.ok and not again.remembered and again.found == after.found


def test_another_pydantic_is_another_key(passed_once: tuple[Path, Path]) -> None:
    """The evidence schema the checks compile with is not rendered for a remembered load: it is
    keyed by policygate's modules and by the pydantic that renders them, so an upgraded pydantic
    (which may render it differently) is another key, and the checks run again."""
    rego, _ = passed_once
    assert decide(rego).remembered
    args = (snapshot(rego), rego, rego.parent / "examples" / "evidence", opa_binary(), None, "inprocess", 5.0)
    assert check_cache.key(*args) == check_cache.key(*args, schema_renderer=check_cache.SCHEMA_RENDERER)
    assert check_cache.key(*args) != check_cache.key(*args, schema_renderer="pydantic 0.0.0-another")


def test_off_remembers_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, own_cache: Path) -> None:
    monkeypatch.setenv("POLICYGATE_CHECK_CACHE", "off")
    rego = policy_copy(tmp_path)
    first, second = decide(rego), decide(rego)
    assert first.ok and second.ok and not first.remembered and not second.remembered
    assert not own_cache.exists()


def test_an_unreadable_entry_is_a_miss(passed_once: tuple[Path, Path]) -> None:
    rego, entry = passed_once
    entry.write_bytes(b'{"parsed": [{"name": 1}]')  # cut short
    again = decide(rego)
    assert again.outcome == "allow" and not again.remembered
    assert check_cache.recall(entry.stem) is not None  # written whole again


def test_an_entry_others_could_write_is_not_believed(own_cache: Path, passed_once: tuple[Path, Path]) -> None:
    """Another local user able to write the cache could mark a broken policy as checked."""
    rego, entry = passed_once
    assert own_cache.stat().st_mode & 0o777 == 0o700 and entry.stat().st_mode & 0o777 == 0o600
    own_cache.chmod(0o777)
    assert check_cache.recall(entry.stem) is None
    again = decide(rego)
    assert again.ok and not again.remembered  # checked again
    own_cache.chmod(0o700)
    entry.chmod(0o666)
    assert check_cache.recall(entry.stem) is None


def test_only_the_newest_entries_are_kept(own_cache: Path) -> None:
    for n in range(3):
        check_cache.remember(f"{n}" * 64, [], [], keep=2)
        os.utime(own_cache / f"{str(n) * 64}.json", ns=(n, n))  # written in this order, oldest first
    assert sorted(p.stem[0] for p in own_cache.glob("*.json")) == ["1", "2"]
