"""The console's "Reviews due" page (issue 29), over HTTP: the owners report of the latest audit run of a
real MLflow server with a file: directory, judged by the real OPA; the order of its rows."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from policygate.api.app import create_app
from policygate.api.console.reviews_page import review_order
from policygate.audit.owners import OwnerRow
from policygate.cli import app
from policygate.config import Settings
from policygate.demo.mlflow_server import MlflowServer
from policygate.demo.seed import ModelSpec, register

runner = CliRunner()


@pytest.fixture(scope="module")
def mlflow_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with MlflowServer(tmp_path_factory.mktemp("reviews-mlflow")) as server:
        yield server.url


def test_the_reviews_page_lists_every_model_in_use(
    mlflow_uri: str, sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    people = [
        {"id": "alice@corp", "active": True, "kind": "person", "groups": ["risk-ml"]},
        {"id": "bob@corp", "active": True, "kind": "person", "groups": ["model-risk"]},
        {"id": "<script>x</script>@corp", "active": True, "kind": "person"},
    ]
    directory = tmp_path / "directory.yaml"
    directory.write_text(yaml.safe_dump({"people": people}))
    monkeypatch.setenv("POLICYGATE_DIRECTORY", f"file:{directory}")
    settings = Settings(db_url=sqlite_url, mlflow_uri=mlflow_uri)
    with TestClient(create_app(settings)) as api:
        empty = api.get("/ui/reviews")
        assert empty.status_code == 200 and "No audit run recorded yet" in empty.text
        assert 'href="/ui/reviews" aria-current="page"' in empty.text  # the nav links it

    for spec in (ModelSpec("fraud"), ModelSpec("hostile", owner="<script>x</script>@corp")):
        version = register(mlflow_uri, spec)
        MlflowClient(mlflow_uri).set_registered_model_alias(spec.name, "champion", version)
    result = runner.invoke(
        app, ["audit", "run", "--mlflow-uri", mlflow_uri, "--db", sqlite_url, "-f", "json"]
    )
    assert result.exit_code in (0, 1), result.output

    with TestClient(create_app(settings)) as api:
        page = api.get("/ui/reviews")
        assert page.status_code == 200
        html = page.text
        models = re.findall(r'<a href="/ui/models/[^"]+">([^<]+)</a>', html)
        assert models == ["mlflow:models:/fraud/1", "mlflow:models:/hostile/1"]
        assert "production via alias champion" in html and "never reviewed" in html
        assert ">active</span>" in html and "bob@corp" in html
        assert "<script>x</script>" not in html and "&lt;script&gt;" in html  # text, never markup
        assert page.headers["Content-Security-Policy"].startswith("default-src 'none'")
        assert api.get("/ui").status_code == 200 and 'href="/ui/reviews"' in api.get("/ui").text


def row(model: str, due: str | None, overdue: bool = False) -> OwnerRow:
    return OwnerRow(
        model=model, target="production", via="alias champion", owner="alice@corp", owner_status="active",
        next_review_due=due, review_overdue=overdue,
    )  # fmt: skip


def test_overdue_first_then_never_reviewed_then_next_due() -> None:
    rows = [
        row("later", "2027-06-01T00:00:00Z"),
        row("never", None),
        row("overdue-recent", "2026-11-01T00:00:00Z", overdue=True),
        row("soon", "2027-01-01T00:00:00Z"),
        row("overdue-old", "2026-01-01T00:00:00Z", overdue=True),
    ]
    assert [r.model for r in sorted(rows, key=review_order)] == [
        "overdue-old", "overdue-recent", "never", "soon", "later",
    ]  # fmt: skip
