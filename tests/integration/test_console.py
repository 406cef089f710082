"""The console (/ui) in a real browser: Debian's Chromium driven by Playwright, against a real
`policygate serve` with authentication required, the demo's models on a real MLflow server, the real
OPA and a SQLite log. Screenshots of each page go to .policygate/screenshots/ (not committed)."""

from __future__ import annotations

import dataclasses
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
import requests

from policygate.config import Settings
from policygate.decisions.approvals import record_approval
from policygate.demo.seed import DEMO_MODELS, register
from policygate.evidence import Target
from policygate.policy import waivers
from policygate.refs import parse
from policygate.runtime import open_service
from tests.support.checkout import ROOT
from tests.support.served import Served
from tests.support.tokens import token

BROWSER = os.environ.get("POLICYGATE_CHROMIUM", "/usr/bin/chromium")
SHOTS = ROOT / ".policygate" / "screenshots"


@dataclass
class Demo:
    db: str
    refs: dict[str, str]  # demo model name -> the version reference decided
    decisions: dict[str, dict[str, Any]]  # demo model name -> the production decision
    reader: str  # an API token with the read scope
    deployer: str  # an API token without it


@pytest.fixture(scope="module")
def demo(mlflow_server: str, tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """The demo's five models (trained, registered, aliased), each decided for production; the first
    also for staging, approved through policygate and waived for one rule."""
    suffix = uuid.uuid4().hex[:6]
    db = f"sqlite:///{tmp_path_factory.mktemp('console')}/decisions.db"
    refs, decisions = {}, {}
    for spec in DEMO_MODELS:
        named = dataclasses.replace(spec, name=f"{spec.name}-{suffix}")
        refs[spec.name] = f"mlflow:models:/{named.name}/{register(mlflow_server, named, train=True)}"
    settings = Settings(db_url=db, mlflow_uri=mlflow_server)
    with open_service(settings) as service:
        first = refs["fraud-detector"]
        record_approval(service.log, parse(first), "bob@corp", "token:bob", "production", "approved", "ok")
        waiver = waivers.new_waiver(
            waivers.WaiverRequest(
                rule="OWN-001",
                model=first,
                reason="owner moved teams, new owner named next sprint",
                approved_by="ciso@corp",
                expires=(datetime.now(UTC) + timedelta(days=30)).isoformat(),
            )
        )
        waivers.record_add(service.log, waiver)
        service.decide(parse(first), Target(stage="staging"), "ci@corp")
        for name, ref in refs.items():
            decisions[name] = service.decide(parse(ref), Target(stage="production"), "ci@corp").model_dump(
                mode="json"
            )
    return Demo(db, refs, decisions, token(db, "auditor@corp", "read"), token(db, "deploy-bot", "decide"))


@pytest.fixture(scope="module")
def served(demo: Demo, mlflow_server: str) -> Iterator[Served]:
    env = {
        "POLICYGATE_DB_URL": demo.db,
        "POLICYGATE_MLFLOW_URI": mlflow_server,
        "POLICYGATE_AUTH_REQUIRED": "true",
    }
    with Served(env) as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    assert Path(BROWSER).exists(), f"{BROWSER} is missing: scripts/ensure-chromium.sh installs it"
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=BROWSER, args=["--no-sandbox"])
        yield chromium
        chromium.close()


def contrast(page: Any, selector: str) -> float:
    """WCAG contrast ratio of the first element matching ``selector``: its text against the nearest
    background colour set on it or an ancestor."""
    fg, bg = page.evaluate(
        """sel => {
            const el = document.querySelector(sel);
            let node = el, bg = "rgba(0, 0, 0, 0)";
            while (node && (bg === "rgba(0, 0, 0, 0)" || bg === "transparent")) {
                bg = getComputedStyle(node).backgroundColor; node = node.parentElement;
            }
            return [getComputedStyle(el).color, bg];
        }""",
        selector,
    )

    def luminance(css: str) -> float:
        r, g, b = (int(v) / 255 for v in re.findall(r"\d+", css)[:3])
        lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in (r, g, b)]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    hi, lo = sorted((luminance(fg), luminance(bg)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def accessible(page: Any) -> None:
    """Every form control has a label; text, muted text, links and outcome badges reach WCAG AA (4.5:1)."""
    assert page.evaluate(
        "[...document.querySelectorAll('input:not([type=hidden]), select')].every(e => e.labels.length > 0)"
    )
    for selector in ("h1", ".muted", "main a", ".badge.allow", ".badge.deny", ".badge.warn", ".badge.error"):
        if page.locator(selector).count():
            assert contrast(page, selector) >= 4.5, selector


class Watched:
    """A browser page whose console errors and requests are recorded."""

    def __init__(self, context: Any, origin: str) -> None:
        self.page = context.new_page()
        self.origin = origin
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))

    def goto(self, path: str) -> Any:
        return self.page.goto(self.origin + path)

    def shot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

    def assert_clean(self) -> None:
        assert self.errors == [], self.errors
        outside = [u for u in self.requests if not u.startswith(self.origin + "/")]
        assert outside == [], f"requests left the origin: {outside}"


def sign_in(browser: Any, served: Served, demo: Demo, **options: Any) -> tuple[Any, Watched]:
    context = browser.new_context(**options)
    watched = Watched(context, served.base)
    watched.goto("/ui/sign-in")
    watched.page.fill("#token", demo.reader)
    watched.page.click("button[type=submit]")
    watched.page.wait_for_url(served.base + "/ui")
    return context, watched


def test_signed_out_goes_to_sign_in_and_a_token_without_read_is_refused(
    browser: Any, served: Served, demo: Demo
) -> None:
    context = browser.new_context()
    w = Watched(context, served.base)
    ref = demo.refs["fraud-detector"]
    w.goto(f"/ui/models/{quote(ref, safe='')}")
    assert w.page.url.startswith(served.base + "/ui/sign-in?next=")
    assert w.page.get_by_label("Token").is_visible()
    w.shot("sign-in")
    w.page.fill("#token", demo.deployer)
    w.page.click("button[type=submit]")
    assert "lacks the 'read' scope" in w.page.inner_text("[role=alert]")
    w.page.fill("#token", "pgt_not-a-token")
    w.page.click("button[type=submit]")
    assert "invalid, expired or revoked" in w.page.inner_text("[role=alert]")
    w.page.fill("#token", demo.reader)
    w.page.click("button[type=submit]")
    w.page.wait_for_url(re.compile(r".*/ui/models/.*"))  # back where the visitor was going
    assert ref in w.page.inner_text("h1")
    cookie = next(c for c in context.cookies() if c["name"] == "policygate_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/ui"
    assert cookie["secure"] is False  # plain http on loopback; Secure everywhere else
    w.page.click("text=Sign out")
    w.page.wait_for_url(served.base + "/ui/sign-in")
    w.goto("/ui")
    assert "/ui/sign-in" in w.page.url
    # the refused sign-ins answered 403 and 401 (the browser logs those); nothing else went wrong
    assert w.errors == [
        "Failed to load resource: the server responded with a status of 403 (Forbidden)",
        "Failed to load resource: the server responded with a status of 401 (Unauthorized)",
    ]
    w.errors.clear()
    w.assert_clean()
    # not a page for someone who only has the cookie's name: an API route ignores the cookie
    assert (
        requests.get(served.base + "/v1/decisions", cookies={"policygate_session": demo.reader}).status_code
        == 401
    )
    context.close()


def test_the_pages_show_the_governed_record(
    browser: Any, served: Served, demo: Demo, mlflow_server: str
) -> None:
    context, w = sign_in(browser, served, demo)
    rows = w.page.locator("table.models tbody tr")
    names = [rows.nth(i).locator("th").inner_text() for i in range(rows.count())]
    assert sorted(names) == sorted(demo.refs.values())
    fraud = rows.filter(has_text=demo.refs["fraud-detector"])
    assert fraud.locator("td").nth(0).inner_text() == "alice@corp"
    outcomes = {name: d["outcome"] for name, d in demo.decisions.items()}
    assert outcomes["fraud-detector"] == "allow" and outcomes["marketing-uplift"] != "allow"
    for name, ref in demo.refs.items():
        row = rows.filter(has_text=ref)
        assert row.locator("a.badge").last.inner_text() == outcomes[name]
    w.shot("models")
    accessible(w.page)

    w.page.select_option("#outcome", "allow")  # progressive: applies at once
    w.page.wait_for_url(re.compile(r".*outcome=allow.*"))
    shown = [r.inner_text() for r in w.page.locator("table.models tbody th").all()]
    assert shown == sorted(ref for name, ref in demo.refs.items() if outcomes[name] == "allow")

    w.goto("/ui")
    w.page.click(f"text={demo.refs['fraud-detector']}")
    svg = w.page.locator("svg.lineage")
    kinds = svg.locator("[data-kind]").evaluate_all("nodes => nodes.map(n => n.dataset.kind)")
    assert {"dataset", "run", "commit", "model", "deployment", "decision"} <= set(kinds)
    labels = svg.locator("[data-kind=decision]").evaluate_all("nodes => nodes.map(n => n.dataset.label)")
    assert sorted(labels) == ["production: allow", "staging: allow"]
    assert svg.locator("[data-kind=deployment][data-label='@champion']").count() == 1
    assert "bob@corp" in w.page.inner_text("#approvals-h + div")
    assert "OWN-001" in w.page.inner_text("#waivers-h + div") and "active" in w.page.inner_text(
        "#waivers-h + div"
    )
    w.shot("model")
    # every node's link resolves: the MLflow run and model pages, the decisions' pages
    links = svg.locator("a").evaluate_all("nodes => nodes.map(n => n.getAttribute('href'))")
    assert any(h.startswith(mlflow_server + "/#/experiments/") for h in links)
    for href in links:
        url = href if href.startswith("http") else served.base + href
        if urlsplit(url).netloc not in (urlsplit(mlflow_server).netloc, urlsplit(served.base).netloc):
            continue  # e.g. the commit on github.com: nothing leaves this machine in tests
        answer = w.page.request.get(url)
        assert answer.status == 200, (href, answer.status)

    svg.locator("[data-kind=decision][data-label='production: allow']").click()
    assert w.page.locator("h1 .badge").inner_text() == "allow"
    assert w.page.locator("#chain-state").inner_text().startswith("not checked yet")
    w.page.click("text=verify the chain up to this record")
    assert w.page.locator("#chain-state").inner_text().startswith("verifies")
    assert "hash and link verify" in w.page.inner_text("#chain-h + dl")
    w.shot("decision-allow")

    denied = demo.decisions["marketing-uplift"]
    w.goto(f"/ui/decisions/{denied['decision_id']}")
    reasons = w.page.locator("article.reason")
    assert reasons.count() >= 1
    first = denied["reasons"][0]
    article = reasons.filter(has_text=first["id"]).first
    assert first["message"] in article.inner_text()
    assert "Severity" in article.inner_text() and "Controls" in article.inner_text()
    assert article.locator("table.fields code").count() >= 1  # the evidence fields it read
    w.shot("decision-deny")
    accessible(w.page)

    w.goto("/ui/policy")
    policy_rows = w.page.locator("table tbody tr")
    assert policy_rows.filter(has_text="INT-001").locator(".badge").inner_text() == "warn"
    assert policy_rows.filter(has_text="APR-001").locator(".badge").inner_text() == "enforce"
    w.shot("policy")
    w.assert_clean()
    context.close()


def test_readable_without_javascript_in_dark_on_a_phone(browser: Any, served: Served, demo: Demo) -> None:
    context, w = sign_in(browser, served, demo)
    cookies = context.cookies()
    context.close()
    phone = browser.new_context(
        java_script_enabled=False, color_scheme="dark", viewport={"width": 390, "height": 844}, is_mobile=True
    )
    phone.add_cookies(cookies)
    w = Watched(phone, served.base)
    ref = demo.refs["fraud-detector"]
    for path in ("/ui", f"/ui/models/{quote(ref, safe='')}", "/ui/policy"):
        w.goto(path)
        assert w.page.locator("h1").is_visible()
        overflow = w.page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, (path, overflow)  # wide tables and the picture scroll in their own box
        background = w.page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(13, 17, 23)", background
        accessible(w.page)
    w.shot("model-phone-dark")
    # without JavaScript the filter form still works: the button submits it
    w.goto("/ui")
    w.page.select_option("#platform", "mlflow")
    w.page.click("text=Filter")
    assert "platform=mlflow" in w.page.url and w.page.locator("table.models tbody tr").count() == len(
        demo.refs
    )
    # keyboard: the first Tab reaches the skip link
    w.page.keyboard.press("Tab")
    assert w.page.evaluate("document.activeElement.className") == "skip"
    w.assert_clean()
    phone.close()


def test_bad_input_is_a_page_never_a_500(served: Served, demo: Demo) -> None:
    auth = {"Authorization": f"Bearer {demo.reader}"}
    cases = {
        "/ui/models/mlflow:models:/nope/1": 404,
        "/ui/decisions/" + "x" * 200: 422,
        "/ui/decisions/00000000-0000-0000-0000-000000000000": 404,
        "/ui/policy/replay": 404,  # no candidate given to serve
        "/ui?after=" + "z" * 2000: 422,
        "/ui?outcome=maybe&target=moon": 200,  # unknown filter values are ignored
    }
    for path, status in cases.items():
        answer = requests.get(served.base + path, headers=auth, timeout=10)
        assert answer.status_code == status, (path, answer.status_code, answer.text[:200])
        assert answer.headers["content-type"].startswith("text/html")
        assert "default-src 'none'" in answer.headers["content-security-policy"]
    redirect = requests.post(
        served.base + "/ui/sign-in",
        data={"token": demo.reader, "next": "//evil.example/x"},
        allow_redirects=False,
    )
    assert redirect.status_code == 303 and redirect.headers["location"] == "/ui"  # no open redirect


def test_a_cross_site_sign_in_or_sign_out_is_refused(served: Served, demo: Demo) -> None:
    """Login CSRF: a form another site posts (Origin or Sec-Fetch-Site say so) signs nobody in or out;
    the console's own forms (same origin) and clients that send neither header still work."""
    url = served.base + "/ui/sign-in"
    form = {"token": demo.reader, "next": "/ui"}
    for headers in (
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Origin": served.base.replace("127.0.0.1", "localhost")},  # another origin, same machine
        {"Origin": served.base, "Sec-Fetch-Site": "cross-site"},
        {"Origin": "https://evil.example", "Sec-Fetch-Site": "same-origin"},
        {"Origin": "null", "Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ):
        refused = requests.post(url, data=form, headers=headers, allow_redirects=False, timeout=10)
        assert refused.status_code == 403, (headers, refused.status_code)
        assert "cross-site sign-in refused" in refused.text and "set-cookie" not in refused.headers
        out = requests.post(served.base + "/ui/sign-out", headers=headers, allow_redirects=False, timeout=10)
        assert out.status_code == 403 and "set-cookie" not in out.headers
    for headers in (
        {"Origin": served.base, "Sec-Fetch-Site": "same-origin"},
        {"Origin": "null", "Sec-Fetch-Site": "same-origin"},  # Chromium's own form (no referrer sent)
        {},
    ):
        ok = requests.post(url, data=form, headers=headers, allow_redirects=False, timeout=10)
        assert ok.status_code == 303 and "set-cookie" in ok.headers, headers
        out = requests.post(served.base + "/ui/sign-out", headers=headers, allow_redirects=False, timeout=10)
        assert out.status_code == 303
