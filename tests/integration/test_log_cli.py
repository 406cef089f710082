"""`policygate log verify|show|export` on SQLite and PostgreSQL, over decisions made by the real OPA."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from typer.testing import CliRunner, Result

from policygate.cli import app
from policygate.decisions.log import DecisionLog
from policygate.decisions.service import DecisionService
from policygate.engine.opa import OpaEngine
from policygate.evidence import EvidenceV1
from tests.support.checkout import load_example

runner = CliRunner()
REF = "mlflow:models:/fraud-detector/7"


def run(*args: str) -> Result:
    return runner.invoke(app, list(args))


@pytest.fixture
def decided(log_url: str, opa: OpaEngine) -> dict[str, Any]:
    """Four real release decisions (as recorded once collected): allow, two denials, and one for another
    model; returns their ids."""
    log = DecisionLog(log_url)
    service = DecisionService(opa, log)
    ids = {}
    for name in ("compliant", "APR-002", "LIN-004"):
        evidence = EvidenceV1.model_validate(load_example(name))
        ids[name] = service.evaluate(evidence, origin="collected").decision_id
    other = load_example("compliant")
    other["subject"].update(name="churn", version="2", ref="mlflow:models:/churn/2")
    ids["other"] = service.evaluate(EvidenceV1.model_validate(other), origin="collected").decision_id
    log.close()
    return ids


def tamper(url: str, sql: str) -> None:
    log = DecisionLog(url, create=False)
    with log.engine.begin() as conn:
        conn.execute(text(sql))
    log.close()


def test_verify_intact_exits_0_and_prints_the_head(log_url: str, decided: dict[str, Any]) -> None:
    result = run("log", "verify", "--db", log_url)
    assert result.exit_code == 0, result.output
    assert "OK" in result.stdout and "4 records, chain intact" in result.stdout
    assert "head: seq 4 hash " in result.stdout


def test_verify_names_an_edited_record(log_url: str, decided: dict[str, Any]) -> None:
    tamper(log_url, "UPDATE decision_log SET body = replace(body, '\"deny\"', '\"allow\"') WHERE seq = 2")
    result = run("log", "verify", "--db", log_url)
    assert result.exit_code == 1
    assert "TAMPERED" in result.stdout and "record 2 was changed" in result.stdout


def test_verify_names_an_edited_column(log_url: str, decided: dict[str, Any]) -> None:
    tamper(log_url, "UPDATE decision_log SET outcome = 'allow' WHERE seq = 3")
    result = run("log", "verify", "--db", log_url)
    assert result.exit_code == 1 and "record 3 was changed" in result.stdout


def test_verify_names_a_removed_record(log_url: str, decided: dict[str, Any]) -> None:
    tamper(log_url, "DELETE FROM decision_log WHERE seq = 2")
    result = run("log", "verify", "--db", log_url)
    assert result.exit_code == 1 and "record 2 is missing" in result.stdout


def test_verify_names_reordered_records(log_url: str, decided: dict[str, Any]) -> None:
    tamper(log_url, "UPDATE decision_log SET seq = seq + 100 WHERE seq IN (2, 3)")
    tamper(log_url, "UPDATE decision_log SET seq = 5 - (seq - 100) WHERE seq > 100")  # 2<->3 swapped
    result = run("log", "verify", "--db", log_url)
    assert result.exit_code == 1 and "record 2" in result.stdout


def test_verify_names_an_edited_recorded_at(log_url: str, decided: dict[str, Any]) -> None:
    """Attack: move a record in time only in its column (`log export --since` reads it)."""
    tamper(log_url, "UPDATE decision_log SET recorded_at = '2001-01-01 00:00:00' WHERE seq = 2")
    result = run("log", "verify", "--db", log_url)
    assert result.exit_code == 1 and "record 2 was changed (recorded_at column" in result.stdout


@pytest.fixture
def signed(log_url: str, decided: dict[str, Any], tmp_path: Path) -> tuple[Path, Path]:
    """A signing key, and a signed checkpoint of the four decisions, kept outside the database."""
    made = run("key", "create", "--out", str(tmp_path / "log.key"))
    assert made.exit_code == 0, made.output
    assert (tmp_path / "log.key").stat().st_mode & 0o777 == 0o600
    cp = run("log", "checkpoint", "--db", log_url, "--key", str(tmp_path / "log.key"))
    assert cp.exit_code == 0, cp.output
    assert cp.stdout.splitlines()[1] == "4" and cp.stdout.startswith("policygate-log/")
    (tmp_path / "cp.txt").write_text(cp.stdout)
    return tmp_path / "cp.txt", tmp_path / "log.key.pub"


def verify_against(log_url: str, signed: tuple[Path, Path]) -> Result:
    return run("log", "verify", "--db", log_url, "--checkpoint", str(signed[0]), "--key", str(signed[1]))


def test_a_log_that_extends_its_checkpoint_verifies(log_url: str, signed: tuple[Path, Path]) -> None:
    result = verify_against(log_url, signed)
    assert result.exit_code == 0, result.output
    assert "extends the signed checkpoint" in result.stdout


@pytest.mark.parametrize(
    ("sql", "problem"),
    [
        ("DELETE FROM decision_log WHERE seq = 4", "ends at record 3, but the checkpoint"),  # tail
        ("DELETE FROM decision_log WHERE seq >= 3", "2 record(s) were removed from its end"),
        ("DELETE FROM decision_log", "the log is empty"),  # a wipe
    ],
)
def test_truncation_and_wipes_are_caught_by_the_checkpoint(
    log_url: str, signed: tuple[Path, Path], sql: str, problem: str
) -> None:
    tamper(log_url, sql)
    plain = run("log", "verify", "--db", log_url)
    assert plain.exit_code == 0  # the chain alone cannot see a shortened tail
    result = verify_against(log_url, signed)
    assert result.exit_code == 1 and problem in result.stdout, result.stdout


def test_a_replaced_log_and_a_forged_checkpoint_are_caught(
    log_url: str, signed: tuple[Path, Path], opa: OpaEngine
) -> None:
    tamper(log_url, "DELETE FROM decision_log")
    log = DecisionLog(log_url)
    service = DecisionService(opa, log)
    for _ in range(5):  # a new chain, longer than the old one
        service.evaluate(EvidenceV1.model_validate(load_example("compliant")), origin="collected")
    log.close()
    result = verify_against(log_url, signed)
    assert result.exit_code == 1 and "first record is not the one the checkpoint names" in result.stdout
    text = signed[0].read_text()
    signed[0].write_text(text.replace("\n4\n", "\n2\n", 1))  # claims fewer records
    forged = verify_against(log_url, signed)
    assert forged.exit_code == 1 and "signature does not verify" in forged.stdout


def test_serve_writes_signed_checkpoints_outside_the_database(
    log_url: str, opa: OpaEngine, tmp_path: Path
) -> None:
    from policygate.config import Settings
    from policygate.runtime import open_service

    assert run("key", "create", "--out", str(tmp_path / "k")).exit_code == 0
    settings = Settings(
        db_url=log_url,
        opa_url=opa.url,
        opa_token=opa.token,
        checkpoint_key=tmp_path / "k",
        checkpoint_dir=tmp_path / "cps",
        checkpoint_every=1,
    )
    with open_service(settings) as service:
        service.evaluate(EvidenceV1.model_validate(load_example("compliant")), origin="collected")
    latest = tmp_path / "cps" / "latest.txt"
    assert latest.read_text().splitlines()[1] == "1"  # written on the way out at the latest
    result = run(
        "log", "verify", "--db", log_url, "--checkpoint", str(latest), "--key", str(tmp_path / "k.pub")
    )
    assert result.exit_code == 0, result.output
    assert run("key", "create", "--out", str(tmp_path / "k")).exit_code == 2  # never overwritten


def test_verify_never_prints_the_password(pg_url: str) -> None:
    password = "policygate-test"
    assert password in pg_url
    log = DecisionLog(pg_url)
    log.append(
        "decision",
        "d1",
        {"decision": {"outcome": "allow", "subject": {"ref": "m"}}},
        model_ref="m",
        outcome="allow",
    )
    log.close()
    result = run("log", "verify", "--db", pg_url)
    assert result.exit_code == 0 and password not in result.output and "***" in result.output


def test_verify_of_no_log_exits_2_and_creates_nothing(tmp_path: Path) -> None:
    result = run("log", "verify", "--db", f"sqlite:///{tmp_path}/none.db")
    assert result.exit_code == 2 and "no decision log" in result.stderr
    assert not (tmp_path / "none.db").exists()


def test_show_answers_who_what_which_policy_and_lineage(log_url: str, decided: dict[str, Any]) -> None:
    result = run("log", "show", REF, "--db", log_url)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "owner      alice@example.com" in out and "risk tier medium" in out
    # lineage of the newest evidence: LIN-004's, whose commit is missing
    assert "run 4f2a9c1e7b3d4e5f8a6b0c1d2e3f4a5b" in out and "commit -" in out
    assert "production   DENY" in out and "LIN-004" in out  # the newest production decision
    assert "decisions  3 (allow 1, deny 2, error 0)" in out
    record = json.loads(run("log", "show", REF, "--db", log_url, "--format", "json").stdout)
    assert record["latest_decisions"]["production"]["decision_id"] == decided["LIN-004"]
    assert record["policy_revision"].startswith("sha256:")


def test_show_a_decision_by_id_and_nothing_recorded(log_url: str, decided: dict[str, Any]) -> None:
    result = run("log", "show", decided["other"], "--db", log_url)
    assert result.exit_code == 0 and json.loads(result.stdout)["decision"]["subject"]["name"] == "churn"
    missing = run("log", "show", "mlflow:models:/nobody/1", "--db", log_url)
    assert missing.exit_code == 1 and "no decision recorded" in missing.stderr


def test_export_jsonl_is_opa_decision_log_events(log_url: str, decided: dict[str, Any]) -> None:
    result = run("log", "export", "--format", "jsonl", "--db", log_url)
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["decision_id"] for e in events] == [
        decided[k] for k in ("compliant", "APR-002", "LIN-004", "other")
    ]
    for event in events:
        assert {"decision_id", "path", "input", "result", "timestamp", "revision", "bundles"} <= set(event)
        assert event["path"] == "policygate/decision" and event["input"]["schema"] == "policygate.evidence/v1"
    assert events[0]["result"]["allow"] is True
    assert [r["id"] for r in events[1]["result"]["deny"]] == ["APR-002"]
    assert "exported 4 decisions" in result.stderr


def test_export_since_until_and_csv(log_url: str, decided: dict[str, Any], tmp_path: Path) -> None:
    log = DecisionLog(log_url)
    second = log.get(decided["APR-002"])["recorded_at"]  # type: ignore[index]
    fourth = log.get(decided["other"])["recorded_at"]  # type: ignore[index]
    log.close()
    result = run("log", "export", "--since", second, "--until", fourth, "--db", log_url)
    assert [json.loads(x)["decision_id"] for x in result.stdout.splitlines()] == [
        decided["APR-002"],
        decided["LIN-004"],
    ]
    out = tmp_path / "decisions.csv"
    result = run("log", "export", "--format", "csv", "--output", str(out), "--db", log_url)
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [r["outcome"] for r in rows] == ["allow", "deny", "deny", "allow"]
    assert rows[1]["reasons"] == "APR-002" and rows[0]["owner"] == "alice@example.com"
    assert rows[3]["model_ref"] == "mlflow:models:/churn/2"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--since", "yesterday"], "--since: 'yesterday' is not an ISO 8601"),
        (["--since", "2026-12-01", "--until", "2026-11-01"], "--since must be earlier than --until"),
        (["--format", "xml"], "xml"),
    ],
)
def test_export_bad_input_exits_2_naming_it(
    args: list[str], expected: str, log_url: str, decided: dict[str, Any]
) -> None:
    result = run("log", "export", *args, "--db", log_url)
    assert result.exit_code == 2 and expected in result.output
    assert "Traceback" not in result.output


@pytest.fixture
def alias_moved(mlflow_server: str, sqlite_url: str, opa: OpaEngine) -> tuple[str, str, str]:
    """Two versions decided while `champion` pointed at each in turn; then the alias moved back to the
    first in MLflow with no decision since: MLflow says version 1, the newest recorded evidence 2."""
    import uuid

    from mlflow.tracking import MlflowClient

    from policygate.demo.seed import ModelSpec, register
    from policygate.evidence import Target
    from policygate.refs import parse
    from policygate.sources.collect import Collector
    from policygate.sources.mlflow import MlflowSource

    name = f"alias-{uuid.uuid4().hex[:6]}"
    log = DecisionLog(sqlite_url)
    service = DecisionService(opa, log, collector=Collector({"mlflow": MlflowSource(mlflow_server)}))
    first = register(mlflow_server, ModelSpec(name, alias="champion"))
    service.decide(parse(f"mlflow:models:/{name}@champion"), Target(stage="production"), "ci")  # type: ignore[arg-type]
    second = register(mlflow_server, ModelSpec(name, alias="champion"))
    service.decide(parse(f"mlflow:models:/{name}@champion"), Target(stage="production"), "ci")  # type: ignore[arg-type]
    log.close()
    MlflowClient(mlflow_server).set_registered_model_alias(name, "champion", first)
    return name, first, second


def test_show_and_export_an_alias_resolved_through_mlflow_else_from_the_log(
    sqlite_url: str, mlflow_server: str, alias_moved: tuple[str, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from policygate.demo.mlflow_server import free_port

    name, first, second = alias_moved
    alias = f"mlflow:models:/{name}@champion"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    shown = run("log", "show", alias, "--db", sqlite_url)
    assert shown.exit_code == 0, shown.output
    assert f"model      mlflow:models:/{name}/{first}\n" in shown.stdout
    assert f"{alias} -> mlflow:models:/{name}/{first} (resolved through MLflow)" in shown.stdout
    as_json = json.loads(run("log", "show", alias, "--db", sqlite_url, "--format", "json").stdout)
    assert as_json["alias"]["via"] == "source" and as_json["model"] == f"mlflow:models:/{name}/{first}"
    exported = run("log", "export", "--model", alias, "--db", sqlite_url)
    assert exported.exit_code == 0, exported.output
    [line] = exported.stdout.splitlines()  # the one decision about version 1, not version 2's
    assert json.loads(line)["input"]["subject"]["ref"] == f"mlflow:models:/{name}/{first}"

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")  # MLflow is not there
    shown = run("log", "show", alias, "--db", sqlite_url)
    assert shown.exit_code == 0, shown.output
    assert f"model      mlflow:models:/{name}/{second}\n" in shown.stdout
    assert "MLflow did not answer" in shown.stdout and "from the decision log" in shown.stdout
    assert "it may have moved since" in shown.stdout
    as_json = json.loads(run("log", "show", alias, "--db", sqlite_url, "--format", "json").stdout)
    assert as_json["alias"]["via"] == "log" and as_json["model"] == f"mlflow:models:/{name}/{second}"
    nowhere = run("log", "show", f"mlflow:models:/{name}@retired", "--db", sqlite_url)
    assert nowhere.exit_code == 1 and "no decision recorded" in nowhere.stderr


@pytest.mark.parametrize(
    "url", ["not a url", "postgresql://auditor:s3cret@db.internal:notaport/log", "://auditor:s3cret@db"]
)
@pytest.mark.parametrize("command", [["log", "verify"], ["log", "show", "mlflow:models:/fraud-detector/7"]])
def test_a_log_url_that_does_not_parse_is_a_clear_error_that_never_echoes_it(
    url: str, command: list[str]
) -> None:
    result = runner.invoke(app, [*command, "--db", url])
    assert result.exit_code == 2
    assert "the decision log URL does not parse" in result.output
    assert "s3cret" not in result.output
    assert isinstance(result.exception, SystemExit)  # an exit with a message, not a crash
