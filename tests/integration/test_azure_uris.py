"""Every form Azure ML uses for a job's data input (and a deployment's model) parses."""

from __future__ import annotations

import pytest

from policygate.sources.azureml.uris import AssetRef, parse_asset_uri
from tests.fixtures.azure.world import RG, SUB, WS, WS_ID

AZ_WS = f"azureml://subscriptions/{SUB}/resourcegroups/{RG}/workspaces/{WS}"
OTHER = "0a0b0c0d-1111-4222-8333-444455556666"


@pytest.mark.parametrize(
    ("uri", "kind", "name", "version", "label", "in_workspace", "registry"),
    [
        # the SDK's own normalisation of an ARM data id
        ("transactions:12", "asset", "transactions", "12", None, True, None),
        ("azureml:transactions:12", "asset", "transactions", "12", None, True, None),
        ("azureml:transactions@latest", "asset", "transactions", None, "latest", True, None),
        ("azureml:transactions", "asset", "transactions", None, None, True, None),
        (f"azureml:{WS_ID}/data/transactions/versions/12", "asset", "transactions", "12", None, True, None),
        (f"{WS_ID}/data/transactions/versions/12", "asset", "transactions", "12", None, True, None),
        (f"{WS_ID.lower()}/data/transactions/versions/12", "asset", "transactions", "12", None, True, None),
        (f"{AZ_WS}/data/features/versions/7", "asset", "features", "7", None, True, None),
        (
            f"azureml://subscriptions/{OTHER}/resourceGroups/rg-x/workspaces/ws-x/data/features/versions/7",
            "asset",
            "features",
            "7",
            None,
            False,
            None,
        ),
        (
            "azureml://registries/shared-data/data/ref-rates/versions/1",
            "asset",
            "ref-rates",
            "1",
            None,
            False,
            "shared-data",
        ),
        (
            "azureml://registries/shared-data/data/ref-rates/labels/latest",
            "asset",
            "ref-rates",
            None,
            "latest",
            False,
            "shared-data",
        ),
        ("azureml://datastores/workspaceblobstore/paths/raw/2026-10/", "path", None, None, None, False, None),
        (
            f"{AZ_WS}/datastores/workspaceblobstore/paths/raw/2026-10/part-0.parquet",
            "path",
            None,
            None,
            None,
            False,
            None,
        ),
        ("https://stfraud.blob.core.windows.net/raw/2026-10/", "path", None, None, None, False, None),
        ("abfss://raw@stfraud.dfs.core.windows.net/2026-10/", "path", None, None, None, False, None),
        ("wasbs://raw@stfraud.blob.core.windows.net/2026-10/", "path", None, None, None, False, None),
        ("./local/data.csv", "path", None, None, None, False, None),
        ("", "path", None, None, None, False, None),
    ],
)
def test_data_input_forms(
    uri: str,
    kind: str,
    name: str | None,
    version: str | None,
    label: str | None,
    in_workspace: bool,
    registry: str | None,
) -> None:
    ref = parse_asset_uri(uri)
    assert (ref.kind, ref.name, ref.version, ref.label) == (kind, name, version, label)
    assert ref.in_workspace(SUB, RG, WS) is in_workspace
    assert ref.registry == registry
    assert ref.uri == uri


@pytest.mark.parametrize(
    "uri",
    [
        f"{WS_ID}/models/fraud-detector/versions/3",
        f"azureml:{WS_ID}/models/fraud-detector/versions/3",
        f"{AZ_WS}/models/fraud-detector/versions/3",
        "azureml:fraud-detector:3",
        "fraud-detector:3",
    ],
)
def test_deployment_model_forms_match_the_workspace_version(uri: str) -> None:
    ref = parse_asset_uri(uri, "models")
    assert (ref.kind, ref.name, ref.version) == ("asset", "fraud-detector", "3")
    assert ref.in_workspace(SUB, RG, WS)


def test_an_asset_of_the_other_type_is_not_taken_for_one() -> None:
    assert parse_asset_uri(f"{WS_ID}/models/fraud-detector/versions/3", "data").kind == "path"
    assert parse_asset_uri(f"{WS_ID}/data/transactions/versions/12", "models").kind == "path"
    registry_model = parse_asset_uri("azureml://registries/shared/models/fraud-detector/versions/3", "models")
    assert registry_model.in_registry("SHARED") and not registry_model.in_workspace(SUB, RG, WS)


def test_parse_never_raises_on_garbage() -> None:
    for junk in ("azureml:", "azureml://", "::", "azureml://registries//data//versions/", "\x00", " " * 3):
        assert isinstance(parse_asset_uri(junk), AssetRef)
