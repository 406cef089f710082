"""``POLICYGATE_DIRECTORY=file:PATH``: people and services from a YAML or JSON file (docs/identity.md).

The file is read at every lookup that misses the cache, so an edit is seen without a restart; a file
that is missing or malformed is a DirectoryError (fail closed), never an empty directory.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from policygate.sources.directory import Credential, DirectoryError, Entry


class _Cred(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["secret", "certificate", "federated"]
    expires: str | None = None


class _Person(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1)
    active: bool
    left: bool = False  # has left the organisation (then never active), not merely disabled
    kind: Literal["person", "service"] = "person"
    groups: list[str] = Field(default_factory=list)
    manager: str | None = None
    department: str | None = None


class _Service(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1)
    active: bool = True
    owners: list[str] = Field(default_factory=list)
    credentials: list[_Cred] = Field(default_factory=list)


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")
    people: list[_Person] = Field(default_factory=list)
    services: list[_Service] = Field(default_factory=list)


class FileDirectory:
    provider = "file"

    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def _read(self) -> _File:
        try:
            raw: Any = yaml.safe_load(self.path.read_text(encoding="utf-8"))  # JSON is YAML too
            return _File.model_validate(raw if raw is not None else {})
        except (OSError, yaml.YAMLError, ValidationError) as exc:
            raise DirectoryError(self.provider, f"{self.path}: {exc}") from None

    def lookup(self, ids: Iterable[str]) -> dict[str, Entry]:
        data = self._read()
        wanted = {i.strip().lower() for i in ids}
        out: dict[str, Entry] = {}
        for p in data.people:
            key = p.id.strip().lower()
            if key in wanted:
                out[key] = Entry(
                    id=p.id, found=True, active=p.active and not p.left, left=p.left, kind=p.kind,
                    groups=tuple(p.groups),
                    manager=p.manager, department=p.department,
                )  # fmt: skip
        for s in data.services:
            key = s.id.strip().lower()
            if key in wanted:
                out[key] = Entry(
                    id=s.id, found=True, active=s.active, kind="service", owners=tuple(s.owners),
                    credentials=tuple(Credential(c.type, c.expires) for c in s.credentials),
                )  # fmt: skip
        return out

    def close(self) -> None:
        pass
