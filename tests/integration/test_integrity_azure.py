"""The files behind an Azure ML model version, read from its workspace datastore's blob storage with
the real SDKs (azure-ai-ml, azure-storage-blob) on replayed wire shapes (tests/fixtures/azure; no live
tenant): hashed into the evidence like MLflow's, INT-002 when one is replaced, a named gap whenever
they cannot be read, and no download at all while the listing's ETags are unchanged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from policygate.cli import app
from policygate.config.azure import AzureSettings
from policygate.config.integrity import ArtifactSettings
from policygate.integrity.manifest import manifest_of
from policygate.refs import parse
from policygate.sources.azureml import AzureMLSource
from tests.fixtures.azure.world import BLOB_HOST, REGISTRY, RG, SUB, WS, AzureWorld

pytestmark = pytest.mark.filterwarnings("ignore::marshmallow.warnings.Marshmallow4Warning")
runner = CliRunner()
WORKSPACE = AzureSettings(subscription_id=SUB, resource_group=RG, workspace=WS)
REF = "azureml:fraud-detector:3"


def check(world: AzureWorld, db: str) -> tuple[int, dict[str, Any]]:
    result = runner.invoke(
        app,
        ["check", REF, "-t", "production", "--db", db, "-f", "json"],
        obj=world.client_options(),
    )
    assert result.exit_code in (0, 1, 2), result.output
    return result.exit_code, json.loads(result.stdout)


def on_disk(files: dict[str, bytes], root: Path) -> Path:
    for relative, data in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(data)
    return root


def source(world: AzureWorld, **settings: Any) -> AzureMLSource:
    return AzureMLSource(WORKSPACE, artifacts=ArtifactSettings(**settings), **world.client_options())


def blob_reads(world: AzureWorld) -> list[Any]:
    return [r for r in world.requests if r.host == BLOB_HOST and "comp" not in r.query]


def test_the_files_are_hashed_from_blob_storage_and_a_replaced_one_is_int002(
    azure_with_foundry: AzureWorld, sqlite_url: str, tmp_path: Path
) -> None:
    world = azure_with_foundry
    code, decision = check(world, sqlite_url)
    assert code == 0, decision["reasons"]
    from policygate.decisions.log import DecisionLog

    log = DecisionLog(sqlite_url, create=False)
    artifacts = (log.get(decision["decision_id"]) or {})["evidence"]["artifacts"]
    log.close()
    # the digest a deploy step computes over the same files (attest verify --artifact DIR)
    assert artifacts["digest"] == manifest_of(on_disk(world.files, tmp_path / "files")).digest
    assert {f["path"] for f in artifacts["files"]} == set(world.files)
    assert "/datastores/workspaceblobstore/paths/" in artifacts["source"]
    assert "https://storage.azure.com/.default" in world.credential.scopes  # policygate's own identity
    reads = blob_reads(world)
    assert len(reads) == len(world.files) and all(r.if_match and r.authorization for r in reads)
    assert not any("listSecrets" in r.path for r in world.requests)  # never the account key

    world.files["model.pkl"] = b"other weights"  # replaced in the datastore after the allow
    code, after = check(world, sqlite_url)
    assert code == 1 and [r["id"] for r in after["reasons"]] == ["INT-002"]
    assert decision["decision_id"] in after["reasons"][0]["message"]


def test_unchanged_blobs_are_not_downloaded_again(azure_world: AzureWorld) -> None:
    src = source(azure_world)
    first = src.collect(parse(REF)).artifacts
    assert first is not None and len(blob_reads(azure_world)) == len(azure_world.files)
    again = src.collect(parse(REF)).artifacts
    assert again == first and len(blob_reads(azure_world)) == len(azure_world.files)  # listed, not read
    azure_world.files["conda.yaml"] += b"- numpy\n"  # one blob written: its ETag changes
    changed = src.collect(parse(REF)).artifacts
    assert changed is not None and changed.digest != first.digest
    assert len(blob_reads(azure_world)) == 2 * len(azure_world.files)


@pytest.mark.parametrize(
    ("case", "settings"),
    [
        ("storage refuses policygate's identity", {}),
        ("a blob name leaves the model's folder", {}),
        ("over the byte budget", {"max_bytes": 1000}),
        ("a blob replaced between listing and download", {}),
        ("a registry model", {}),
        ("the datastore is gone", {}),
    ],
)
def test_files_that_cannot_be_read_are_a_named_gap(
    azure_world: AzureWorld, case: str, settings: dict[str, Any]
) -> None:
    ref = REF
    if case == "storage refuses policygate's identity":
        azure_world.failures[r"^/azureml-blobstore-"] = (403, {"error": "AuthorizationPermissionMismatch"})
    elif case == "a blob name leaves the model's folder":
        azure_world.files["../../other-model/model.pkl"] = b"x"
    elif case == "a blob replaced between listing and download":
        answer = azure_world.adapter.handler

        def replace_then_answer(method: str, host: str, path: str, query: dict[str, list[str]]) -> Any:
            if host == BLOB_HOST and "comp" not in query:
                azure_world.files["model.pkl"] = b"written after the listing"
            return answer(method, host, path, query)

        azure_world.adapter.handler = replace_then_answer
    elif case == "a registry model":
        ref = f"azureml://registries/{REGISTRY}/models/fraud-detector/versions/3"
    elif case == "the datastore is gone":
        azure_world.failures[r"/datastores/"] = (404, {"error": {"code": "UserError", "message": "gone"}})
    parts = source(azure_world, **settings).collect(parse(ref))
    assert parts.artifacts is None and "artifacts" in parts.gaps, case
    if case == "over the byte budget":
        assert blob_reads(azure_world) == []  # refused from the listing's sizes, nothing downloaded


def test_files_that_cannot_be_hashed_say_why_and_a_wrong_content_md5_is_caught(
    azure_world: AzureWorld,
) -> None:
    """Every read checks the blob's Content-MD5 when Blob Storage serves one; what could not be
    hashed is evidence of its own (INT-003): why, and how much was listed and read."""
    parts = source(azure_world).collect(parse(REF))
    assert parts.artifacts is not None and parts.artifacts_unverified is None  # served MD5s all match

    azure_world.files["model.pkl"] = b"other weights"  # a new ETag: read again
    azure_world.content_md5["model.pkl"] = b"\x00" * 16  # damaged in transit, or not what was stored
    parts = source(azure_world).collect(parse(REF))
    unverified = parts.artifacts_unverified
    assert parts.artifacts is None and "artifacts" in parts.gaps and unverified is not None
    assert unverified.reason == "store" and "Content-MD5" in unverified.detail

    parts = source(azure_world, max_bytes=10).collect(parse(REF))
    unverified = parts.artifacts_unverified
    assert unverified is not None and unverified.reason == "size_cap"
    assert unverified.size == sum(len(d) for d in azure_world.files.values())
    assert unverified.files == len(azure_world.files) and unverified.bytes_read == 0

    registry = f"azureml://registries/{REGISTRY}/models/fraud-detector/versions/3"
    unverified = source(azure_world).collect(parse(registry)).artifacts_unverified
    assert unverified is not None and unverified.reason == "store" and "registry" in unverified.detail
