"""Seeding a governed world on a real MLflow server: a version released through `policygate check`
(with its change ticket) and put in use by an alias, as the register and auditor tests build it."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from policygate.cli import app
from policygate.demo.seed import ModelSpec, register

runner = CliRunner()
RUN = "https://ci.example.com/corp/models/actions/runs/7"


def released(uri: str, db: str, spec: ModelSpec, *, ticket: str, alias: str = "champion") -> str:
    """Register ``spec`` (trained: its files hashed) and release it (:func:`checked_in_use`)."""
    version = register(uri, spec, train=True)
    return checked_in_use(uri, db, f"mlflow:models:/{spec.name}/{version}", ticket=ticket, alias=alias)


def checked_in_use(uri: str, db: str, ref: str, *, ticket: str, alias: str = "champion") -> str:
    """`check` ``ref`` for production with ``ticket`` (the outcome must be allow), then set ``alias``."""
    args = ["check", ref, "-t", "production", "--mlflow-uri", uri, "--db", db, "-f", "json"]
    args += ["--requested-by", "ci@corp", "--ticket", ticket, "--run-url", RUN]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    name, version = ref.removeprefix("mlflow:models:/").split("/")
    MlflowClient(uri, registry_uri=uri).set_registered_model_alias(name, alias, version)
    return ref


def aliased_by_hand(uri: str, spec: ModelSpec, alias: str = "champion") -> str:
    """A version put in use with no decision asked for (a bypass); returns its reference."""
    version = register(uri, spec, train=True)
    MlflowClient(uri, registry_uri=uri).set_registered_model_alias(spec.name, alias, version)
    return f"mlflow:models:/{spec.name}/{version}"


def pack_members(pack: Path | bytes) -> dict[str, bytes]:
    """The files of an evidence pack (log pack), by name."""
    data = pack.read_bytes() if isinstance(pack, Path) else pack
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]


def pack_manifest(pack: Path) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads(pack_members(pack)["manifest.json"])
    return manifest
