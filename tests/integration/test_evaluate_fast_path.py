"""``POST /v1/evaluate``'s fast path (api/routes/evaluate_fast.py) answers exactly as the FastAPI
route does: every request below goes to a service with the fast path and to one without it (each
with its own log and tokens), and the answers must be the same, refusals included; the fast path
must have answered the plain ones itself, and never a refusal twice (the rate limit counts once)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from policygate.api.app import create_app
from policygate.api.routes.evaluate_fast import FastEvaluate
from policygate.config import Settings
from policygate.decisions.log import DecisionLog
from tests.integration.test_health import immutable
from tests.support.checkout import REGO, load_example, opa_binary
from tests.support.tokens import bearer, token

VOLATILE = {"decision_id", "evaluated_at"}
HEADERS = ("content-type", "retry-after", "www-authenticate", "allow", "connection")


def _fast_path(app: FastAPI) -> FastEvaluate | None:
    layer: Any = app.middleware_stack
    while layer is not None and not isinstance(layer, FastEvaluate):
        layer = getattr(layer, "app", None)
    return layer


@contextlib.contextmanager
def _service(tmp_path: Path, name: str, fast: bool, **overrides: Any) -> Iterator[tuple[TestClient, str]]:
    db = f"sqlite:///{tmp_path / name}.db"
    overrides = {"auth_required": True, **overrides}
    settings = Settings(db_url=db, opa_bin=opa_binary(), policy_dir=REGO, **overrides)
    app = create_app(settings)
    if not fast:
        app.user_middleware = [m for m in app.user_middleware if m.cls is not FastEvaluate]  # type: ignore[comparison-overlap]
    with TestClient(app) as client:
        yield client, db


def _seen(response: Any) -> dict[str, Any]:
    """What a caller sees, less the decision's own id and time."""
    try:
        body = response.json()
    except json.JSONDecodeError:
        body = response.text
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k not in VOLATILE}
    headers = {h: response.headers.get(h) for h in HEADERS}
    return {"status": response.status_code, "headers": headers, "body": body}


Ask = Callable[[TestClient, dict[str, str]], Any]


def _ask(
    body: Any = None, *, raw: bytes | None = None, query: str = "", headers: dict[str, str] | None = None
) -> Ask:
    def ask(client: TestClient, tokens: dict[str, str]) -> Any:
        sent = {k: v.format(**tokens) for k, v in (headers or {}).items()}
        if raw is not None:
            return client.post(f"/v1/evaluate{query}", content=raw, headers=sent)
        return client.post(f"/v1/evaluate{query}", json=body, headers=sent)

    return ask


def _cases() -> list[tuple[str, Ask]]:
    compliant = {"evidence": load_example("compliant")}
    denied = {"evidence": load_example("APR-001")}
    decide = {"Authorization": "Bearer {decider}"}
    doc = json.dumps(compliant)
    return [
        ("no token", _ask(compliant)),
        ("a forged token", _ask(compliant, headers={"Authorization": "Bearer pgt_nope_forged"})),
        ("not a bearer token", _ask(compliant, headers={"Authorization": "Basic {decider}"})),
        ("a token without decide, first", _ask(compliant, headers={"Authorization": "Bearer {reader}"})),
        ("a token without decide, known", _ask(compliant, headers={"Authorization": "Bearer {reader}"})),
        ("a decider, first (verified in a thread)", _ask(compliant, headers=decide)),
        ("a decider, known", _ask(compliant, headers=decide)),
        ("another example", _ask(denied, headers=decide)),
        ("explain", _ask(compliant, query="?explain=true", headers=decide)),
        ("explain false", _ask(compliant, query="?explain=false", headers=decide)),
        ("an unknown field", _ask({**compliant, "extra": 1}, headers=decide)),
        ("no evidence", _ask({}, headers=decide)),
        ("evidence of the wrong type", _ask({"evidence": []}, headers=decide)),
        ("a JSON array", _ask([compliant], headers=decide)),
        ("not JSON", _ask(raw=b"{nope", headers={**decide, "content-type": "application/json"})),
        ("text/plain", _ask(raw=doc.encode(), headers={**decide, "content-type": "text/plain"})),
        ("no content type", _ask(raw=doc.encode(), headers=decide)),
        (
            "application/json with a charset",
            _ask(raw=doc.encode(), headers={**decide, "content-type": "application/json; charset=utf-8"}),
        ),
        (
            "a key given twice",
            _ask(
                raw=b'{"evidence": 1, "evidence": 2}', headers={**decide, "content-type": "application/json"}
            ),
        ),
    ]


def test_the_fast_path_answers_every_request_as_the_route_does(tmp_path: Path) -> None:
    seen: dict[bool, list[dict[str, Any]]] = {}
    answered: dict[bool, int] = {}
    for fast in (True, False):
        with _service(tmp_path, f"fast-{fast}", fast) as (client, db):
            tokens = {"decider": token(db, "ci-bot", "decide"), "reader": token(db, "auditor", "read")}
            seen[fast] = [_seen(ask(client, tokens)) for _, ask in _cases()]
            path = _fast_path(client.app)  # type: ignore[arg-type]
            answered[fast] = path.answered if path is not None else 0
            for one in seen[fast]:  # every decision answered was recorded, as the route records it
                if one["status"] == 200:
                    assert one["body"]["caller"] == "token:ci-bot"
            log = DecisionLog(db)
            try:
                recorded = [r["decision"]["outcome"] for r in log.query(limit=100)]
            finally:
                log.close()
            assert len(recorded) == sum(1 for one in seen[fast] if one["status"] == 200)
    for (name, _), by_fast_path, by_route in zip(_cases(), seen[True], seen[False], strict=True):
        assert by_fast_path == by_route, name
    # the known decider's plain requests (and the charset one): "explain false" has a query string
    assert answered == {True: 3, False: 0}
    statuses = {name: one["status"] for (name, _), one in zip(_cases(), seen[True], strict=True)}
    assert statuses["a decider, known"] == 200 and statuses["a token without decide, known"] == 403
    assert statuses["a key given twice"] == 422 and statuses["no token"] == 401


def test_a_rate_limited_caller_is_refused_and_counted_once(tmp_path: Path) -> None:
    compliant = {"evidence": load_example("compliant")}
    answers = {}
    for fast in (True, False):
        with _service(tmp_path, f"limit-{fast}", fast, rate_limit_per_minute=6) as (
            client,
            db,
        ):  # a burst of 1
            decider = bearer(token(db, "ci-bot", "decide"))
            first = client.post("/v1/evaluate", json=compliant, headers=decider)  # verified, a token taken
            second = client.post("/v1/evaluate", json=compliant, headers=decider)  # known: refused
            metrics = client.get("/metrics").text
            counted = [
                line
                for line in metrics.splitlines()
                if line.startswith('policygate_rate_limited_total{reason="caller"}')
            ]
            answers[fast] = (first.status_code, _seen(second), counted)
    assert answers[True] == answers[False]
    assert answers[True][0] == 200 and answers[True][1]["status"] == 429
    assert answers[True][1]["headers"]["retry-after"] is not None
    assert answers[True][2] == ['policygate_rate_limited_total{reason="caller"} 1.0']


def test_without_authentication_the_plain_request_takes_the_fast_path(tmp_path: Path) -> None:
    with _service(tmp_path, "open", True, auth_required=False) as (client, _):
        ok = client.post("/v1/evaluate", json={"evidence": load_example("compliant")})
        path = _fast_path(client.app)  # type: ignore[arg-type]
        assert ok.status_code == 200 and ok.json()["caller"] == "anonymous"
        assert path is not None and path.answered == 1


def test_a_log_that_cannot_be_written_is_503_on_the_fast_path_too(tmp_path: Path) -> None:
    compliant = {"evidence": load_example("compliant")}
    answers = {}
    for fast in (True, False):
        with _service(tmp_path, f"readonly-{fast}", fast, auth_required=False) as (client, db):
            assert client.post("/v1/evaluate", json=compliant).status_code == 200
            file = Path(db.removeprefix("sqlite:///"))
            with immutable(file, file.with_name(file.name + "-wal")):
                answers[fast] = _seen(client.post("/v1/evaluate", json=compliant))
            answers[fast]["body"]["message"] = answers[fast]["body"]["message"].replace(db, "<the log>")
            path = _fast_path(client.app)  # type: ignore[arg-type]
            assert (path.answered if path is not None else 0) == (2 if fast else 0)
    assert answers[True] == answers[False]
    assert answers[True]["status"] == 503 and answers[True]["body"]["error"] == "decision_log_unavailable"
    assert answers[True]["headers"]["retry-after"] == "5"
