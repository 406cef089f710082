"""Service security: tokens and scopes, OIDC, verified approvals, limits, and no secret in any log."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from policygate.api.app import create_app
from policygate.api.limits import json_depth
from policygate.auth.oidc import OidcSettings
from policygate.auth.principal import parse_scopes
from policygate.auth.tokens import TokenStore
from policygate.config import Settings
from policygate.decisions.log import DecisionLog
from policygate.demo.seed import ModelSpec, register
from tests.support.checkout import REGO, load_example, opa_binary, policy_copy, without_shipped_tests
from tests.support.served import Served
from tests.support.tokens import bearer, token

ISSUER = "https://login.example.test/tenant/v2.0"
AUDIENCE = "api://policygate"


def _clients(db_url: str) -> Iterator[Callable[..., TestClient]]:
    opened: list[TestClient] = []

    def make(**overrides: Any) -> TestClient:
        settings = Settings(db_url=db_url, opa_bin=opa_binary(), **{"policy_dir": REGO, **overrides})
        client = TestClient(create_app(settings))
        opened.append(client)
        return client.__enter__()

    yield make
    for client in opened:
        client.__exit__(None, None, None)


@pytest.fixture
def make_client(sqlite_url: str) -> Iterator[Callable[..., TestClient]]:
    yield from _clients(sqlite_url)


@pytest.fixture
def make_client_on(log_url: str) -> Iterator[Callable[..., TestClient]]:
    """The same service on SQLite and on PostgreSQL (the attacks are tried on both)."""
    yield from _clients(log_url)


def test_required_auth_refuses_anonymous_and_under_scoped_callers(
    make_client: Callable[..., TestClient], sqlite_url: str, compliant: dict[str, Any]
) -> None:
    client = make_client(auth_required=True)
    reader, decider = token(sqlite_url, "auditor", "read"), token(sqlite_url, "ci-bot", "decide")
    body = {"evidence": compliant}
    assert client.post("/v1/evaluate", json=body).status_code == 401
    assert client.get("/v1/decisions").status_code == 401
    assert client.post("/v1/evaluate", json=body, headers=bearer("pgt_nope_forged")).status_code == 401
    assert client.post("/v1/evaluate", json=body, headers=bearer(reader)).status_code == 403
    assert client.get("/v1/decisions", headers=bearer(decider)).status_code == 403
    ok = client.post("/v1/evaluate", json=body, headers=bearer(decider))
    assert ok.status_code == 200 and ok.json()["caller"] == "token:ci-bot"
    assert client.get("/v1/decisions", headers=bearer(reader)).status_code == 200
    assert client.get("/healthz").status_code == 200 and client.get("/readyz").status_code == 200
    # the caller recorded is the authenticated one, whatever the document claims
    compliant["request"]["caller"] = "someone-else"
    decided = client.post("/v1/evaluate", json={"evidence": compliant}, headers=bearer(decider)).json()
    stored = client.app.state.service.log.get(decided["decision_id"])  # type: ignore[attr-defined]
    assert stored["evidence"]["request"]["caller"] == "token:ci-bot"


def test_revoked_token_stops_working(make_client: Callable[..., TestClient], sqlite_url: str) -> None:
    client = make_client(auth_required=True)
    log = DecisionLog(sqlite_url)
    store = TokenStore(log)
    token_id, secret = store.create("temp", parse_scopes("read"), "test")
    assert client.get("/v1/decisions", headers=bearer(secret)).status_code == 200
    assert store.revoke(token_id, "test")
    time.sleep(5.1)  # the verification cache lives 5 s
    assert client.get("/v1/decisions", headers=bearer(secret)).status_code == 401
    kinds = [r["kind"] for r in log.query(kind="token")]
    assert kinds == ["token", "token"]  # created and revoked, both in the chain
    log.close()


def test_a_token_is_answered_from_memory_only_within_the_cache_ttl(sqlite_url: str) -> None:
    """The request path asks ``cached`` first (no thread, no database); what it answers is what
    ``verify`` found less than 5 s ago, and nothing older."""
    from sqlalchemy import text

    from policygate.auth import tokens

    log = DecisionLog(sqlite_url)
    now = [1000.0]
    store = TokenStore(log, clock=lambda: now[0])
    _, secret = store.create("ci", parse_scopes("decide"), "test")
    assert store.cached(secret) == (False, None)  # never verified: only the database can tell
    principal = store.verify(secret)
    assert principal is not None and principal.may("decide")
    with log.engine.begin() as conn:  # from here on the database cannot answer
        conn.execute(text("ALTER TABLE api_tokens RENAME TO api_tokens_gone"))
    assert store.cached(secret) == (True, principal)
    assert store.cached(secret + "x") == (False, None)  # another secret is another key
    now[0] += tokens.CACHE_TTL_S + 0.1
    assert store.cached(secret) == (False, None)  # expired: back to the database
    with log.engine.begin() as conn:
        conn.execute(text("ALTER TABLE api_tokens_gone RENAME TO api_tokens"))
    log.close()


def test_rate_limit_answers_429(make_client: Callable[..., TestClient], sqlite_url: str) -> None:
    client = make_client(auth_required=True, rate_limit_per_minute=6)  # burst of 1
    reader = token(sqlite_url, "busy", "read")
    assert client.get("/v1/decisions", headers=bearer(reader)).status_code == 200
    limited = client.get("/v1/decisions", headers=bearer(reader))
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1


def test_deeply_nested_json_is_refused(make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    deep = b'{"evidence": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    resp = client.post("/v1/evaluate", content=deep, headers={"content-type": "application/json"})
    assert resp.status_code == 422 and "nested deeper" in resp.json()["message"]
    assert json_depth(b'{"a": "[[[[[[", "b": [{}]}') == 3


# -- OIDC ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def oidc_keys() -> Iterator[tuple[Any, str]]:
    """An RSA key and its JWKS served on loopback, as an issuer would publish it."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwks = json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(jwks)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield key, f"http://127.0.0.1:{server.server_address[1]}/keys"
    server.shutdown()


def jwt_for(key: Any, **claims: Any) -> str:
    now = int(time.time())
    payload = {"iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 300, **claims}
    return jwt.encode(payload, key, algorithm="RS256", headers={"kid": "k1"})


def test_oidc_tokens_are_verified_and_mapped(
    make_client: Callable[..., TestClient], oidc_keys: tuple[Any, str], compliant: dict[str, Any]
) -> None:
    key, jwks_url = oidc_keys
    oidc = OidcSettings(
        issuer=ISSUER, audience=AUDIENCE, jwks_url=jwks_url, scope_map={"PolicyGate.Decide": "decide"}
    )
    client = make_client(auth_required=True, oidc=oidc)
    body = {"evidence": compliant}
    good = jwt_for(key, preferred_username="alice@corp", roles=["PolicyGate.Decide"])
    resp = client.post("/v1/evaluate", json=body, headers=bearer(good))
    assert resp.status_code == 200 and resp.json()["caller"] == "oidc:alice@corp"
    assert client.get("/v1/decisions", headers=bearer(good)).status_code == 403  # no read scope
    reader = jwt_for(key, preferred_username="bob@corp", scp="policygate.read")
    assert client.get("/v1/decisions", headers=bearer(reader)).status_code == 200
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    for bad in (
        jwt_for(key, preferred_username="a", roles=["PolicyGate.Decide"], exp=now - 10),  # expired
        jwt_for(key, preferred_username="a", roles=["PolicyGate.Decide"], aud="api://other"),
        jwt_for(key, preferred_username="a", roles=["PolicyGate.Decide"], iss="https://evil.example"),
        jwt_for(other_key, preferred_username="a", roles=["PolicyGate.Decide"]),  # not the issuer's key
        good[:-4] + "AAAA",  # signature tampered
    ):
        assert client.post("/v1/evaluate", json=body, headers=bearer(bad)).status_code == 401
    # validly signed, but odd claims: never an error, never more than they say
    for odd in (
        jwt_for(key, preferred_username="c", scp=5),
        jwt_for(key, preferred_username="c", scp=["read", 7, None], roles={"x": 1}),
        jwt_for(
            key, preferred_username="c", roles=["Admin", "ADMIN", "policygate.Admin"]
        ),  # no map for these
    ):
        assert (
            client.post(
                "/v1/waivers",
                json={"rule": "APR-001", "model": "m", "reason": "r", "approved_by": "c", "expires": "1d"},
                headers=bearer(odd),
            ).status_code
            == 403
        )
        assert client.post("/v1/evaluate", json=body, headers=bearer(odd)).status_code == 403


def test_a_slow_issuer_and_a_flood_of_unknown_kids_cost_one_fetch_and_block_no_one(
    sqlite_url: str, compliant: dict[str, Any]
) -> None:
    """60 JWT-shaped tokens with random kids while the JWKS endpoint takes 2 s: one fetch, and an
    API-token caller is answered at once."""
    fetches: list[float] = []

    class Slow(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            fetches.append(time.monotonic())
            time.sleep(2)
            body = json.dumps({"keys": []}).encode()
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    jwks = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=jwks.serve_forever, daemon=True).start()
    api_token = token(sqlite_url, "ci", "decide")
    env = {
        "POLICYGATE_DB_URL": sqlite_url,
        "POLICYGATE_AUTH_REQUIRED": "true",
        "POLICYGATE_OIDC__ISSUER": ISSUER,
        "POLICYGATE_OIDC__AUDIENCE": AUDIENCE,
        "POLICYGATE_OIDC__JWKS_URL": f"http://127.0.0.1:{jwks.server_address[1]}/keys",
        "POLICYGATE_AUTH_FAILURES_PER_MINUTE": "100000",  # here: no refusal by address
        "MLFLOW_TRACKING_URI": "",
    }
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    try:
        with Served(env) as server:
            url = f"{server.base}/v1/evaluate"

            def forged() -> int:
                bad = jwt.encode(
                    {"iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 60, "sub": "x"},
                    forger,
                    algorithm="RS256",
                    headers={"kid": uuid.uuid4().hex},
                )
                return requests.post(
                    url, json={"evidence": compliant}, headers=bearer(bad), timeout=30
                ).status_code

            with ThreadPoolExecutor(60) as pool:
                flood = [pool.submit(forged) for _ in range(60)]
                time.sleep(0.3)  # the first fetch is under way and slow
                started = time.monotonic()
                ok = requests.post(url, json={"evidence": compliant}, headers=bearer(api_token), timeout=30)
                answered_in = time.monotonic() - started
                codes = [f.result() for f in flood]
            assert ok.status_code == 200 and answered_in < 1.5, answered_in
            assert set(codes) == {401}
            assert len(fetches) == 1  # single flight, then no refresh for 30 s whatever the kids
    finally:
        jwks.shutdown()


def test_failed_authentications_are_limited_per_address(
    make_client: Callable[..., TestClient], sqlite_url: str, compliant: dict[str, Any]
) -> None:
    client = make_client(auth_required=True, auth_failures_per_minute=12)  # a burst of 2
    good = token(sqlite_url, "ci", "decide")
    body = {"evidence": compliant}
    assert client.post("/v1/evaluate", json=body, headers=bearer(good)).status_code == 200
    guesses = [client.post("/v1/evaluate", json=body, headers=bearer(f"pgt_{i}.guess")) for i in range(4)]
    assert [r.status_code for r in guesses] == [401, 401, 429, 429]
    assert int(guesses[-1].headers["Retry-After"]) >= 1
    # a right guess from that address is not even looked at now; a token verified a moment ago
    # (answered from memory) still works
    assert client.post("/v1/evaluate", json=body, headers=bearer(good + "x")).status_code == 429
    assert client.post("/v1/evaluate", json=body, headers=bearer(good)).status_code == 200


# -- verified approvals --------------------------------------------------------


def strict_policy(tmp_path: Path) -> Path:
    """rego/ with require_verified_approvals switched on (a documented parameter)."""
    target = without_shipped_tests(policy_copy(tmp_path), keep_helpers=False)  # they assume false
    data = json.loads((target / "data.json").read_text())
    data["policygate_params"]["require_verified_approvals"] = True
    (target / "data.json").write_text(json.dumps(data))
    return target


def test_approvals_are_recorded_in_the_callers_name_and_count_when_verified_ones_are_required(
    make_client: Callable[..., TestClient], sqlite_url: str, mlflow_server: str, tmp_path: Path
) -> None:
    client = make_client(auth_required=True, mlflow_uri=mlflow_server, policy_dir=strict_policy(tmp_path))
    decider = token(sqlite_url, "ci-bot", "decide")
    approver = token(sqlite_url, "carol@corp", "approve")
    spec = ModelSpec(f"sec-{uuid.uuid4().hex[:6]}")  # carries an (unverified) approval tag by bob@corp
    version = register(mlflow_server, spec)
    ref = f"mlflow:models:/{spec.name}/{version}"
    ask = {"model": ref, "target": {"stage": "production"}}  # the caller (ci-bot) is the requester
    first = client.post("/v1/decisions", json=ask, headers=bearer(decider)).json()
    assert first["outcome"] == "deny" and "APR-001" in [r["id"] for r in first["reasons"]]
    # an approval cannot be claimed in someone else's name
    forged = client.post(
        "/v1/approvals",
        json={"model": ref, "stage": "production", "by": "bob@corp"},
        headers=bearer(approver),
    )
    assert forged.status_code == 422
    assert (
        client.post(
            "/v1/approvals", json={"model": ref, "stage": "production"}, headers=bearer(decider)
        ).status_code
        == 403
    )
    resp = client.post("/v1/approvals", json={"model": ref, "stage": "production"}, headers=bearer(approver))
    assert resp.status_code == 201
    answer = resp.json()
    assert answer["approval"]["by"] == "carol@corp" and answer["mirrored"] is True
    second = client.post("/v1/decisions", json=ask, headers=bearer(decider)).json()
    assert second["outcome"] == "allow", second["reasons"]
    stored = client.app.state.service.log.get(second["decision_id"])  # type: ignore[attr-defined]
    verified = [a for a in stored["evidence"]["approvals"] if a["verified"]]
    assert [a["by"] for a in verified] == ["carol@corp"]
    assert client.app.state.service.log.verify().ok  # type: ignore[attr-defined]


def test_approvals_are_a_history_a_later_rejection_or_withdrawal_takes_one_back(
    make_client_on: Callable[..., TestClient], log_url: str, mlflow_server: str, tmp_path: Path
) -> None:
    """Attack: bob approves, later rejects (or withdraws); the approval must stop counting."""
    client = make_client_on(auth_required=True, mlflow_uri=mlflow_server, policy_dir=strict_policy(tmp_path))
    bob, dave = token(log_url, "bob@corp", "approve"), token(log_url, "dave@corp", "approve")
    decider = token(log_url, "ci-bot", "decide")
    spec = ModelSpec(f"hist-{uuid.uuid4().hex[:6]}")
    ref = f"mlflow:models:/{spec.name}/{register(mlflow_server, spec)}"
    ask = {"model": ref, "target": {"stage": "production"}}

    def outcome() -> str:
        return str(client.post("/v1/decisions", json=ask, headers=bearer(decider)).json()["outcome"])

    def entry(who: str, decision: str) -> Any:
        body = {"model": ref, "stage": "production", "decision": decision}
        return client.post("/v1/approvals", json=body, headers=bearer(who))

    approved = entry(bob, "approved")
    assert approved.status_code == 201 and outcome() == "allow"
    assert entry(bob, "rejected").status_code == 201 and outcome() == "deny"  # taken back
    assert entry(bob, "approved").status_code == 201 and outcome() == "allow"  # latest wins again
    # DELETE withdraws a recorded approval: only its approver (or an admin) may
    latest = client.get("/v1/models/" + ref + "/record", headers=bearer(token(log_url, "a", "read")))
    approval_id = latest.json()["recorded_approvals"][0]["id"]
    assert client.delete(f"/v1/approvals/{approval_id}", headers=bearer(dave)).status_code == 403
    gone = client.delete(f"/v1/approvals/{approval_id}", headers=bearer(bob))
    assert gone.status_code == 200, gone.text
    assert (
        gone.json()["approval"]["decision"] == "withdrawn"
        and gone.json()["approval"]["withdraws"] == approval_id
    )
    assert outcome() == "deny"
    assert client.delete("/v1/approvals/approval:nope", headers=bearer(bob)).status_code == 404
    # a version the platform does not have cannot be approved in advance
    missing = client.post(
        "/v1/approvals",
        json={"model": f"mlflow:models:/{spec.name}/999", "stage": "production"},
        headers=bearer(dave),
    )
    assert missing.status_code == 404 and "does not exist" in missing.text
    assert client.app.state.service.log.verify().ok  # type: ignore[attr-defined]


def test_the_authenticated_caller_is_the_requester(
    make_client_on: Callable[..., TestClient], log_url: str, mlflow_server: str, tmp_path: Path
) -> None:
    """Attack: carol approves, then asks under another name so that her own approval counts."""
    client = make_client_on(auth_required=True, mlflow_uri=mlflow_server, policy_dir=strict_policy(tmp_path))
    carol = token(log_url, "carol@corp", "approve,decide")
    ci = token(log_url, "ci-bot", "decide,delegate")
    spec = ModelSpec(f"req-{uuid.uuid4().hex[:6]}")
    ref = f"mlflow:models:/{spec.name}/{register(mlflow_server, spec)}"
    assert (
        client.post(
            "/v1/approvals", json={"model": ref, "stage": "production"}, headers=bearer(carol)
        ).status_code
        == 201
    )

    def ask(who: str | None, as_: str) -> Any:
        body = {"model": ref, "target": {"stage": "production"}, **({"requested_by": who} if who else {})}
        return client.post("/v1/decisions", json=body, headers=bearer(as_))

    forged = ask("ci-pipeline", carol)
    assert forged.status_code == 403, forged.text
    assert "'ci-pipeline' is not the authenticated caller 'carol@corp'" in forged.json()["message"]
    own = ask(None, carol).json()  # carol asks as herself: her approval is not independent
    assert own["outcome"] == "deny" and own["requested_by"] == "carol@corp"
    assert {"APR-001", "APR-002"} <= {r["id"] for r in own["reasons"]}
    for_carol = ask("carol@corp", ci).json()  # a delegate asking for her changes nothing
    assert for_carol["outcome"] == "deny" and for_carol["caller"] == "token:ci-bot"
    for_dave = ask("dave@corp", ci).json()  # for someone else, carol's approval is independent
    assert for_dave["outcome"] == "allow", for_dave["reasons"]
    assert (for_dave["requested_by"], for_dave["caller"]) == ("dave@corp", "token:ci-bot")
    ci_approves = token(log_url, "ci-bot", "approve")
    assert (
        client.post(
            "/v1/approvals", json={"model": ref, "stage": "production"}, headers=bearer(ci_approves)
        ).status_code
        == 201
    )
    # the delegate itself approved: as the caller of the request, its approval does not count either
    again = ask("dave@corp", ci).json()
    assert again["outcome"] == "deny" and "APR-002" in {r["id"] for r in again["reasons"]}


def test_evidence_a_caller_wrote_is_a_what_if_with_no_claims_of_its_own(
    make_client_on: Callable[..., TestClient], log_url: str, tmp_path: Path
) -> None:
    """Attack: a `decide` token posts evidence it wrote, naming a real model, with approvals marked
    `verified: true, source: policygate`. Never a release decision; the claims are rebuilt."""
    client = make_client_on(auth_required=True, policy_dir=strict_policy(tmp_path))
    decider = token(log_url, "ci-bot", "decide")
    reader = token(log_url, "auditor", "read")
    doc = load_example("compliant")
    ref = doc["subject"]["ref"]
    for a in doc["approvals"]:
        a.update(verified=True, source="policygate")
    doc["request"]["caller"] = "oidc:ciso@corp"
    resp = client.post("/v1/evaluate", json={"evidence": doc}, headers=bearer(decider))
    assert resp.status_code == 200, resp.text
    decision = resp.json()
    assert decision["evidence_origin"] == "supplied" and decision["caller"] == "token:ci-bot"
    assert decision["outcome"] == "deny" and "APR-001" in {r["id"] for r in decision["reasons"]}
    stored = client.app.state.service.log.get(decision["decision_id"])  # type: ignore[attr-defined]
    assert all(a["verified"] is False for a in stored["evidence"]["approvals"])
    assert all(a["source"] != "policygate" for a in stored["evidence"]["approvals"])
    assert stored["evidence"]["request"]["caller"] == "token:ci-bot"
    record = client.get(f"/v1/models/{ref}/record", headers=bearer(reader)).json()
    assert record["latest_decisions"] == {}  # a what-if never answers "what was decided"
    assert record["history"][0]["evidence_origin"] == "supplied"
    # an approval policygate did record is verified in a what-if too: rebuilt from the log
    client.app.state.service.log.append(  # type: ignore[attr-defined]
        "approval",
        "approval:test-carol",
        {"approval": {"id": "approval:test-carol", "model": ref, "by": "carol@corp", "stage": "production",
                      "decision": "approved", "at": "2026-11-20T00:00:00Z", "caller": "token:carol@corp"}},
        model_ref=ref,
    )  # fmt: skip
    client.app.state.service.approvals_changed(ref)  # type: ignore[attr-defined]  # as POST /v1/approvals does
    again = client.post("/v1/evaluate", json={"evidence": doc}, headers=bearer(decider)).json()
    stored = client.app.state.service.log.get(again["decision_id"])  # type: ignore[attr-defined]
    assert [a["by"] for a in stored["evidence"]["approvals"] if a["verified"]] == ["carol@corp"]


# -- secrets never logged -------------------------------------------------------


def test_no_secret_reaches_logs_or_records(
    make_client: Callable[..., TestClient],
    sqlite_url: str,
    compliant: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.DEBUG)
    webhook_secret = "whsec-" + uuid.uuid4().hex
    client = make_client(
        auth_required=True, mlflow_webhook_secret=webhook_secret, eventgrid_secret="egsec-" + uuid.uuid4().hex
    )
    good = token(sqlite_url, "ci-bot", "decide")
    client.post("/v1/evaluate", json={"evidence": compliant}, headers=bearer(good))
    client.post("/v1/evaluate", json={"evidence": compliant}, headers=bearer(good[:-3] + "xyz"))
    forged_signature = "v1,Zm9yZ2VkLXNpZ25hdHVyZS12YWx1ZQ=="
    client.post(
        "/v1/webhooks/mlflow",
        content=b"{}",
        headers={
            "x-mlflow-delivery-id": "d",
            "x-mlflow-timestamp": str(int(time.time())),
            "x-mlflow-signature": forged_signature,
        },
    )
    client.post("/v1/webhooks/azure-eventgrid?code=wrong-code-value", json=[])
    # what the server logs (the test client's own request log is not the server's)
    logged = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("httpx"))
    db_text = Path(sqlite_url.removeprefix("sqlite:///")).read_bytes().decode(errors="replace")
    for secret in (
        good,
        good.split("_", 2)[2],
        good[:-3] + "xyz",
        webhook_secret,
        forged_signature,
        "wrong-code-value",
    ):
        assert secret not in logged, f"secret in logs: {secret[:8]}..."
        assert secret not in db_text, f"secret in decision log: {secret[:8]}..."


def test_access_log_redacts_secrets_in_urls() -> None:
    from policygate.logredact import RedactQuerySecrets

    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "POST", "/v1/webhooks/azure-eventgrid?code=s3cr3t&x=1", "1.1", 202),
        None,
    )
    RedactQuerySecrets().filter(record)
    assert "s3cr3t" not in record.getMessage() and "code=[redacted]&x=1" in record.getMessage()


def test_credentials_in_urls_are_never_logged_stored_or_answered(
    make_client: Callable[..., TestClient], mlflow_server: str, sqlite_url: str, tmp_path: Path
) -> None:
    """A token in ?access_token= reaches no log line; an MLflow URI's user:password or ?token=
    reaches no record, no answer, no log."""
    secret = "tok-" + uuid.uuid4().hex
    spec = ModelSpec(f"cred-{uuid.uuid4().hex[:6]}")
    ref = f"mlflow:models:/{spec.name}/{register(mlflow_server, spec)}"
    ask = {"model": ref, "target": {"stage": "production"}}
    with_password = mlflow_server.replace("http://", f"http://ci:{secret}@")
    answered = make_client(mlflow_uri=with_password).post("/v1/decisions", json=ask)
    assert answered.status_code == 200 and answered.json()["outcome"] == "allow"
    dead = make_client(mlflow_uri=f"http://127.0.0.1:9/mlflow?token={secret}").post("/v1/decisions", json=ask)
    assert dead.json()["outcome"] == "error"
    db_text = Path(sqlite_url.removeprefix("sqlite:///")).read_bytes().decode(errors="replace")
    assert secret not in answered.text + dead.text + db_text
    assert "token=[redacted]" in dead.text
    env = {"POLICYGATE_DB_URL": f"sqlite:///{tmp_path}/served.db", "MLFLOW_TRACKING_URI": ""}
    with Served(env) as server:
        requests.get(f"{server.base}/v1/decisions?access_token={secret}&limit=1", timeout=5)
        requests.get(f"{server.base}/v1/decisions?api-key={secret}", timeout=5)
        requests.get(f"{server.base.replace('http://', f'http://u:{secret}@')}/healthz", timeout=5)
    assert "/v1/decisions?access_token=[redacted]&limit=1" in server.output
    assert secret not in server.output


def test_serve_off_loopback_requires_tokens_and_approve_uses_them(
    sqlite_url: str, mlflow_server: str, tmp_path: Path
) -> None:
    import requests
    from typer.testing import CliRunner

    from policygate.cli import app
    from tests.support.served import Served

    runner = CliRunner()
    created = runner.invoke(
        app, ["token", "create", "--name", "dave@corp", "--scopes", "approve,read", "--db", sqlite_url]
    )
    assert created.exit_code == 0, created.output
    secret = created.stdout.strip().splitlines()[-1]
    assert secret.startswith("pgt_")
    assert (
        runner.invoke(
            app, ["token", "create", "--name", "x", "--scopes", "root", "--db", sqlite_url]
        ).exit_code
        == 2
    )
    listed = runner.invoke(app, ["token", "list", "--db", sqlite_url]).stdout
    assert "dave@corp" in listed and secret not in listed

    env = {"POLICYGATE_DB_URL": sqlite_url, "MLFLOW_TRACKING_URI": mlflow_server}
    with Served(env, host="0.0.0.0") as server:
        base = server.base
        assert requests.get(f"{base}/v1/decisions", timeout=5).status_code == 401
        assert requests.get(f"{base}/v1/decisions", headers=bearer(secret), timeout=5).status_code == 200
        spec = ModelSpec(f"appr-{uuid.uuid4().hex[:6]}")
        version = register(mlflow_server, spec)
        ref = f"mlflow:models:/{spec.name}/{version}"
        no_token = runner.invoke(
            app, ["approve", ref, "--stage", "production", "--server", base], env={"POLICYGATE_TOKEN": ""}
        )
        assert no_token.exit_code == 2 and "POLICYGATE_TOKEN" in no_token.stderr
        ok = runner.invoke(
            app, ["approve", ref, "--stage", "production", "--server", base], env={"POLICYGATE_TOKEN": secret}
        )
        assert ok.exit_code == 0, ok.output
        assert f"approved {ref} for production by dave@corp" in ok.stdout
    output = server.output
    assert "authentication is required" in output
    assert secret not in output
