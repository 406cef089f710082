from __future__ import annotations

import pytest

from policygate.refs import ModelRef, RefError, parse

SUB = "00000000-1111-2222-3333-444444444444"


@pytest.mark.parametrize(
    ("text", "expected", "canonical"),
    [
        ("mlflow:models:/fraud/7", ModelRef("mlflow", "fraud", version="7"), "mlflow:models:/fraud/7"),
        ("mlflow:models:/fraud/007", ModelRef("mlflow", "fraud", version="7"), "mlflow:models:/fraud/7"),
        ("mlflow:models:/fraud@champion", ModelRef("mlflow", "fraud", alias="champion"), None),
        ("  mlflow:models:/cat.schema.m/1 ", ModelRef("mlflow", "cat.schema.m", version="1"), None),
        ("azureml:fraud:3", ModelRef("azureml", "fraud", version="3"), None),
        (
            f"azureml://subscriptions/{SUB}/resourceGroups/rg-ml/workspaces/ws1/models/fraud/versions/3",
            ModelRef("azureml", "fraud", "3", subscription=SUB, resource_group="rg-ml", workspace="ws1"),
            None,
        ),
        (
            "azureml://registries/shared/models/fraud/versions/2",
            ModelRef("azureml", "fraud", "2", registry="shared"),
            None,
        ),
    ],
)
def test_parses_every_form(text: str, expected: ModelRef, canonical: str | None) -> None:
    ref = parse(text)
    assert ref == expected
    assert str(ref) == (canonical or text.strip())
    assert parse(str(ref)) == ref


@pytest.mark.parametrize(
    "text",
    [
        "",
        "fraud/7",
        "mlflow:models:/fraud",
        "mlflow:models:/fraud/",
        "mlflow:models:/fraud/seven",
        "mlflow:models:/fraud/7/extra",
        "mlflow:models:/fraud@",
        "mlflow:models:/../etc/7",
        "models:/fraud/7",
        "azureml:fraud",
        "azureml:fraud:latest",
        "azureml://subscriptions/not-a-guid/resourceGroups/g/workspaces/w/models/m/versions/1",
        "mlflow:models:/" + "a" * 2000 + "/1",
    ],
)
def test_malformed_refs_name_the_accepted_forms(text: str) -> None:
    with pytest.raises(RefError) as info:
        parse(text)
    assert "mlflow:models:/NAME/VERSION" in str(info.value) or "longer than" in str(info.value)


def test_alias_resolution_pins_the_version() -> None:
    assert str(parse("mlflow:models:/fraud@champion").with_version("4")) == "mlflow:models:/fraud/4"
