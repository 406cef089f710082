"""The file: directory (sources.directory_file): a person marked ``left: true`` is never active and is
reported as left, not merely disabled, in the evidence's identities."""

from __future__ import annotations

from pathlib import Path

import yaml

from policygate.evidence import EvidenceV1, Ownership
from policygate.sources.directory_file import FileDirectory
from policygate.sources.identities import identities_of
from tests.support.checkout import load_example


def test_a_person_who_left_is_not_active_and_says_left(tmp_path: Path) -> None:
    path = tmp_path / "directory.yaml"
    people = [
        {"id": "dana@corp", "active": True, "left": True},  # left wins over a stale active flag
        {"id": "erin@corp", "active": False},
        {"id": "alice@corp", "active": True},
    ]
    path.write_text(yaml.safe_dump({"people": people}))
    found = FileDirectory(str(path)).lookup(["dana@corp", "erin@corp", "alice@corp"])
    assert [(e.active, e.left) for e in found.values()] == [(False, True), (False, False), (True, False)]

    evidence = EvidenceV1.model_validate(load_example("compliant"))
    evidence = evidence.model_copy(
        update={"ownership": Ownership(**{**evidence.ownership.model_dump(), "owner": "dana@corp"})}
    )
    identities, _ = identities_of(evidence, FileDirectory(str(path)))
    assert identities.owner is not None and (identities.owner.active, identities.owner.left) == (False, True)
