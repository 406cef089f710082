"""A passing load is remembered by what decided it (policy/check_cache.py): the next load of the same
directory skips the checks, and any change to a policy file, a data file or an example, a new OPA
binary, or a load that fails is checked afresh. Real OPA, on both engines."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from policygate.engine.result import PolicyResult
from policygate.policy import check_cache
from policygate.policy.load import load_policy
from tests.support.checkout import load_example, opa_binary, policy_copy

ENGINES = ("inprocess", "http")


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.delenv("POLICYGATE_CHECK_CACHE", raising=False)
    return cache / "policygate" / "checked"


def checks_run(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The directories the static checks ran on (recorded, not replaced: they still run for real)."""
    import policygate.policy.load as load

    ran: list[str] = []
    real = load.static_errors

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        ran.append(str(args[2]))
        return real(*args, **kwargs)

    monkeypatch.setattr(load, "static_errors", counted)
    return ran


def decide(rego: Path, engine: str) -> tuple[bool, str | None, list[str]]:
    report, checked = load_policy(opa_binary(), rego, engine=engine)
    if checked is None:
        return False, None, [e.code for e in report.errors]
    try:
        outcome = PolicyResult.from_opa(checked.evaluate(load_example("compliant"))).outcome
        return report.ok, outcome, [r.id for r in report.rules]
    finally:
        checked.close()


@pytest.mark.parametrize("engine", ENGINES)
def test_a_passing_load_is_remembered_and_decides_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, own_cache: Path, engine: str
) -> None:
    rego = policy_copy(tmp_path)
    ran = checks_run(monkeypatch)
    first = decide(rego, engine)
    assert first[0] and first[1] == "allow"
    assert ran == [str(rego)] and len(list(own_cache.glob("*.json"))) == 1
    second = decide(rego, engine)
    assert second == first  # same outcome, same rule catalogue
    assert ran == [str(rego)]  # not checked again


@pytest.mark.parametrize(
    "change",
    [
        "a rule edited",
        "data edited",
        "an example edited",
        "another opa binary",
    ],
)
def test_any_change_is_checked_afresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: str) -> None:
    rego = policy_copy(tmp_path)
    examples = tmp_path / "examples" / "evidence"
    ran = checks_run(monkeypatch)
    assert decide(rego, "inprocess")[0]
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
    report, checked = load_policy(binary, rego, engine="inprocess")
    if checked is not None:
        checked.close()
    assert len(ran) == 2, change  # checked again
    if change != "another opa binary":
        assert not report.ok, change
        # and a refusal is never remembered: the same mistake is found again
        again, checked = load_policy(binary, rego, engine="inprocess")
        assert checked is None and [e.code for e in again.errors] == [e.code for e in report.errors]
        assert len(ran) == 3


def test_off_remembers_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, own_cache: Path) -> None:
    monkeypatch.setenv("POLICYGATE_CHECK_CACHE", "off")
    rego = policy_copy(tmp_path)
    ran = checks_run(monkeypatch)
    assert decide(rego, "inprocess")[0] and decide(rego, "inprocess")[0]
    assert len(ran) == 2 and not own_cache.exists()


def test_an_unreadable_entry_is_a_miss(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, own_cache: Path
) -> None:
    rego = policy_copy(tmp_path)
    ran = checks_run(monkeypatch)
    assert decide(rego, "inprocess")[0]
    (entry,) = own_cache.glob("*.json")
    entry.write_bytes(b'{"parsed": [{"name": 1}]')  # cut short
    assert decide(rego, "inprocess")[1] == "allow"
    assert len(ran) == 2
    assert check_cache.recall(entry.stem) is not None  # written whole again


def test_an_entry_others_could_write_is_not_believed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, own_cache: Path
) -> None:
    """Another local user able to write the cache could mark a broken policy as checked."""
    rego = policy_copy(tmp_path)
    ran = checks_run(monkeypatch)
    assert decide(rego, "inprocess")[0]
    (entry,) = own_cache.glob("*.json")
    assert own_cache.stat().st_mode & 0o777 == 0o700 and entry.stat().st_mode & 0o777 == 0o600
    own_cache.chmod(0o777)
    assert check_cache.recall(entry.stem) is None
    assert decide(rego, "inprocess")[0] and len(ran) == 2  # checked again
    own_cache.chmod(0o700)
    entry.chmod(0o666)
    assert check_cache.recall(entry.stem) is None


def test_only_the_newest_entries_are_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, own_cache: Path
) -> None:
    monkeypatch.setattr(check_cache, "KEEP", 2)
    for n in range(3):  # three revisions of one directory
        rego = policy_copy(tmp_path / str(n))
        (rego / "policygate" / "note.rego").write_text(f"package policygate_notes\n\nrevision := {n}\n")
        assert decide(rego, "inprocess")[0]
    assert len(list(own_cache.glob("*.json"))) == 2
