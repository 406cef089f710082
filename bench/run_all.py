"""Benchmark: policygate against raw OPA, side by side, in one run (not a test).

Starts everything on loopback, measures with wrk (a separate process, bounded by
``--duration`` per point), checks the answers, and prints one table (``--markdown``
for docs/benchmarks.md):

1. raw OPA: ``POST /v1/data/policygate/decision`` with examples/evidence/compliant.json
   as ``input``, at concurrency 1, 16 and 64 (an ``opa run --server`` on rego/);
2. policygate ``POST /v1/evaluate`` with the same evidence, same concurrencies, from a real
   ``policygate serve`` process, decision log on SQLite, then on PostgreSQL (the test server
   of scripts/ensure-postgres.sh, in a schema of its own, dropped afterwards). After each
   backend the log is verified and must hold at least as many decisions as wrk got answers;
3. the same ``/v1/evaluate`` as a non-loopback deployment runs it: authentication required, an
   API token made with ``policygate token create``, SQLite, concurrency 16;
4. the same ``/v1/evaluate`` as a scaled-out replica runs it: a separate stock OPA holding the
   policies as a signed bundle (``policygate bundle build``; ``opa run --verification-key``), the
   revision read from each query's provenance (docs/deploy.md), SQLite;
5. MLflow-backed decisions ``POST /v1/decisions`` for ``mlflow:models:/bench-model@champion``
   against a local MLflow server (one worker, seeded with policygate.demo.seed.register),
   at concurrency 1 and 16, with MLflow REST calls per decision counted from the MLflow
   server's own access log.

    .venv/bin/python bench/run_all.py                 # about 3 minutes on 2 cores
    .venv/bin/python bench/run_all.py --duration 5 --markdown

Installs wrk with ``apt-get install -y wrk`` when it is missing (Debian, as root).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from percentiles import pct  # noqa: E402

from policygate.demo.mlflow_server import MlflowServer, free_port  # noqa: E402

EVIDENCE_FILE = ROOT / "examples" / "evidence" / "compliant.json"
REGO = ROOT / "rego"
CONCURRENCY = (1, 16, 64)
MODEL = "bench-model"

LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
%(auth)slocal f = assert(io.open("%(body)s", "rb"))
wrk.body = f:read("*a")
f:close()

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRKJSON {\\"requests\\":%%d,\\"duration_us\\":%%d,\\"connect\\":%%d,\\"read\\":%%d,"
    .. "\\"write\\":%%d,\\"status\\":%%d,\\"timeout\\":%%d,\\"p50\\":%%d,\\"p95\\":%%d,"
    .. "\\"p99\\":%%d,\\"max\\":%%d}\\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
"""


@dataclass
class Point:
    what: str
    concurrency: int
    requests: int
    errors: int
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    extra: str = ""

    def line(self) -> str:
        return (
            f"{self.what:44} c={self.concurrency:<3} {self.rps:8.1f} req/s  p50 {self.p50_ms:6.2f}  "
            f"p95 {self.p95_ms:6.2f}  p99 {self.p99_ms:6.2f}  max {self.max_ms:7.2f} ms  "
            f"errors {self.errors}  {self.extra}"
        )


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    print("bench: wrk missing, installing it with apt-get (Debian package wrk) ...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], env=env, capture_output=True).returncode:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], env=env, check=True, capture_output=True)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("bench: wrk could not be installed (apt-get install -y wrk)")
    return found


def opa_binary() -> str:
    local = ROOT / ".bin" / "opa"
    return str(local) if local.exists() else (shutil.which("opa") or "opa")


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"bench: {what} exited (code {proc.returncode})")
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise SystemExit(f"bench: {what} not ready at {url} within {timeout_s:.0f} s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def raw_opa(workdir: Path) -> Iterator[tuple[str, list[int]]]:
    port = free_port()
    cmd = [opa_binary(), "run", "--server", "--addr", f"127.0.0.1:{port}", "--log-level", "error"]
    cmd += ["--skip-version-check", str(REGO)]
    with open(workdir / "opa.log", "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/health?bundles=true", proc, 30, "opa run --server")
        yield url, [proc.pid]
    finally:
        stop(proc)


@contextlib.contextmanager
def served(workdir: Path, name: str, env: dict[str, str]) -> Iterator[tuple[str, list[int]]]:
    """A real ``policygate serve`` process (with its managed OPA) on a free loopback port."""
    port = free_port()
    full_env = {
        **os.environ,
        "POLICYGATE_POLICY_DIR": str(REGO),
        "POLICYGATE_OPA_BIN": opa_binary(),
        **env,
    }
    cmd = [sys.executable, "-m", "policygate.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    with open(workdir / f"serve-{name}.log", "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=full_env, cwd=workdir)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/readyz", proc, 90, f"policygate serve ({name})")
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        yield url, [proc.pid, *(int(c) for c in children)]  # policygate, then its managed OPA
    finally:
        stop(proc)


def wrk(
    wrk_bin: str,
    url: str,
    body: bytes,
    concurrency: int,
    duration_s: float,
    workdir: Path,
    token: str | None = None,
) -> dict[str, Any]:
    body_path = workdir / f"body-{uuid.uuid4().hex[:8]}.json"
    body_path.write_bytes(body)
    script = workdir / f"post-{uuid.uuid4().hex[:8]}.lua"
    auth = f'wrk.headers["Authorization"] = "Bearer {token}"\n' if token else ""
    script.write_text(LUA % {"body": str(body_path), "auth": auth})
    # one wrk thread: it drives 64 connections easily and leaves the cores to the servers
    cmd = [
        wrk_bin,
        "-t1",
        f"-c{concurrency}",
        f"-d{max(1, round(duration_s))}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
    ]
    out = subprocess.run(
        [*cmd, url], capture_output=True, text=True, timeout=duration_s + 60, check=True
    ).stdout
    line = next((x for x in out.splitlines() if x.startswith("WRKJSON ")), None)
    if line is None:
        raise SystemExit(f"bench: wrk gave no summary:\n{out}")
    result: dict[str, Any] = json.loads(line.removeprefix("WRKJSON "))
    return result


def cpu_s(pid: int) -> float:
    """CPU time (user + system) a process has used so far, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def point(what: str, concurrency: int, r: dict[str, Any], extra: str = "") -> Point:
    errors = r["connect"] + r["read"] + r["write"] + r["status"] + r["timeout"]
    ok = r["requests"] - r["status"]
    return Point(
        what,
        concurrency,
        r["requests"],
        errors,
        ok / (r["duration_us"] / 1e6),
        r["p50"] / 1000,
        r["p95"] / 1000,
        r["p99"] / 1000,
        r["max"] / 1000,
        extra,
    )


def measure(
    wrk_bin: str,
    what: str,
    url: str,
    body: bytes,
    duration_s: float,
    workdir: Path,
    pids: list[int],
    concurrencies: tuple[int, ...] = CONCURRENCY,
    token: str | None = None,
) -> list[Point]:
    wrk(wrk_bin, url, body, 16, max(2.0, duration_s / 4), workdir, token)  # warm-up, not reported
    points = []
    for c in concurrencies:
        before = [cpu_s(pid) for pid in pids]
        r = wrk(wrk_bin, url, body, c, duration_s, workdir, token)
        used = [(cpu_s(pid) - b) * 1000 / max(1, r["requests"]) for pid, b in zip(pids, before, strict=True)]
        p = point(what, c, r, "CPU per request: " + " + ".join(f"{u:.2f}" for u in used) + " ms")
        print(f"  {p.line()}", flush=True)
        points.append(p)
    return points


def verify_log(db_url: str, answered: int) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "policygate.cli", "log", "verify", "--db", db_url],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    match = re.search(r"(\d+) records, chain intact", out.stdout)
    if out.returncode != 0 or match is None:
        raise SystemExit(f"bench: log verify failed:\n{out.stdout}\n{out.stderr}")
    records = int(match.group(1))
    if records < answered:
        raise SystemExit(f"bench: {answered} decisions answered but only {records} in the log")
    return f"log verified: {records} records (>= {answered} answered), chain intact"


def check_policygate(url: str, path: str, body: bytes) -> dict[str, Any]:
    resp = requests.post(f"{url}{path}", data=body, headers={"Content-Type": "application/json"}, timeout=30)
    resp.raise_for_status()
    decision: dict[str, Any] = resp.json()
    if decision.get("outcome") != "allow":
        raise SystemExit(f"bench: expected an allow from {path}, got {json.dumps(decision)[:600]}")
    return decision


@contextlib.contextmanager
def pg_schema() -> Iterator[str]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    url = os.environ.get("POLICYGATE_TEST_PG_URL")
    if not url:
        subprocess.run([str(ROOT / "scripts" / "ensure-postgres.sh")], check=True)
        url = (ROOT / ".policygate" / "pg" / "test-url").read_text().strip()
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url, poolclass=NullPool)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield (
            make_url(url)
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(hide_password=False)
        )
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def count_decisions(db_url: str) -> int:
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    engine = create_engine(db_url, poolclass=NullPool)
    with engine.connect() as conn:
        n = int(conn.execute(text("SELECT count(*) FROM decision_log WHERE kind = 'decision'")).scalar_one())
    engine.dispose()
    return n


def mlflow_calls(log_path: Path, since: int) -> int:
    text = log_path.read_bytes()[since:].decode(errors="replace")
    return len(re.findall(r'"(?:GET|POST) /(?:ajax-)?api/[23]\.0/mlflow/', text))


def run_mlflow(
    wrk_bin: str, workdir: Path, duration_s: float, ttl: str | None
) -> tuple[list[Point], list[str]]:
    notes: list[str] = []
    from policygate.demo.seed import ModelSpec, register

    # its uvicorn access log counts the calls; it runs as installed, whatever PYTHONPATH points
    # policygate at (a run of an older checkout: PYTHONPATH=OLD/src, see docs/benchmarks.md)
    with MlflowServer(workdir / "mlflow", env={"PYTHONPATH": ""}) as server:
        register(server.url, ModelSpec(MODEL, alias="champion"))
        db = f"sqlite:///{workdir}/mlflow-decisions.db"
        env = {"POLICYGATE_DB_URL": db, "MLFLOW_TRACKING_URI": server.url}
        if ttl is not None:
            env["POLICYGATE_EVIDENCE_CACHE_TTL_S"] = ttl
        body = json.dumps(
            {"model": f"mlflow:models:/{MODEL}@champion", "target": {"stage": "production"}}
        ).encode()
        with served(workdir, "mlflow", env) as (url, _):
            decision = check_policygate(url, "/v1/decisions", body)
            mark = server.log_path.stat().st_size
            n_seq = 0
            # concurrency 1, counted one by one: latency of one decision as a CI job sees it
            lat = []
            deadline = time.monotonic() + duration_s
            session = requests.Session()
            calls_log_probe = 0
            while time.monotonic() < deadline and n_seq < 2000:
                t0 = time.perf_counter()
                resp = session.post(
                    f"{url}/v1/decisions", data=body, headers={"Content-Type": "application/json"}, timeout=30
                )
                lat.append((time.perf_counter() - t0) * 1000)
                if resp.status_code != 200 or resp.json().get("outcome") != "allow":
                    raise SystemExit(f"bench: MLflow-backed decision failed: {resp.text[:600]}")
                n_seq += 1
            time.sleep(0.5)  # let the server's log catch up
            calls_log_probe = mlflow_calls(server.log_path, mark)
            if calls_log_probe == 0:
                notes.append("MLflow calls could not be counted (no access log lines found)")
            per = calls_log_probe / n_seq
            lat.sort()
            seq_point = Point(
                "MLflow-backed /v1/decisions",
                1,
                n_seq,
                0,
                n_seq / sum(x / 1000 for x in lat),
                statistics.median(lat),
                pct(lat, 95),
                pct(lat, 99),
                lat[-1],
                f"{per:.2f} MLflow calls/decision",
            )
            print(f"  {seq_point.line()}", flush=True)
            mark, before = server.log_path.stat().st_size, count_decisions(db)
            r = wrk(wrk_bin, f"{url}/v1/decisions", body, 16, duration_s, workdir)
            time.sleep(1.0)  # requests wrk left in flight finish and are logged
            calls, decided = mlflow_calls(server.log_path, mark), count_decisions(db) - before
            conc = point(
                "MLflow-backed /v1/decisions", 16, r, f"{calls / max(1, decided):.2f} MLflow calls/decision"
            )
            print(f"  {conc.line()}", flush=True)
            notes.append(f"MLflow decision example: subject {decision['subject']['ref']}")
    return [seq_point, conc], notes


def run_with_token(
    wrk_bin: str, workdir: Path, body: bytes, duration_s: float, notes: list[str]
) -> list[Point]:
    """/v1/evaluate as a non-loopback deployment runs it: authentication required, an API token
    (created with `policygate token create`), SQLite, concurrency 16. The per-caller rate limit is
    raised out of the way: it is a limit, not a cost."""
    db_url = f"sqlite:///{workdir}/decisions-token.db"
    out = subprocess.run(
        [sys.executable, "-m", "policygate.cli", "token", "create", "--db", db_url]
        + ["--name", "bench", "--scopes", "decide"],
        capture_output=True,
        text=True,
        check=True,
    )
    token = out.stdout.strip().splitlines()[-1]
    env = {
        "POLICYGATE_DB_URL": db_url,
        "POLICYGATE_AUTH_REQUIRED": "true",
        "POLICYGATE_RATE_LIMIT_PER_MINUTE": "100000000",
    }
    with served(workdir, "token", env) as (url, pids):
        refused = requests.post(f"{url}/v1/evaluate", data=body, timeout=30)
        if refused.status_code != 401:
            raise SystemExit(f"bench: without a token expected 401, got {refused.status_code}")
        got = measure(
            wrk_bin,
            "policygate /v1/evaluate, SQLite, API token",
            f"{url}/v1/evaluate",
            body,
            duration_s,
            workdir,
            pids,
            concurrencies=(16,),
            token=token,
        )
    notes.append("API token: " + verify_log(db_url, sum(p.requests - p.errors for p in got)))
    print(f"  {notes[-1]}", flush=True)
    return got


def run_bundle(wrk_bin: str, workdir: Path, body: bytes, duration_s: float, notes: list[str]) -> list[Point]:
    """/v1/evaluate as a scaled-out replica runs it: policygate deciding with a separate, stock OPA that
    holds the policies as a signed bundle (`policygate bundle build`, `opa run --verification-key`),
    each decision recording the bundle revision from the query's provenance. SQLite."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private, public = workdir / "bundle.pem", workdir / "bundle.pub.pem"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    bundle = workdir / "policygate.tar.gz"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "policygate.cli",
            "bundle",
            "build",
            "--policy-dir",
            str(REGO),
            "--out",
            str(bundle),
        ]
        + ["--signing-key", str(private)],
        check=True,
        capture_output=True,
    )
    port = free_port()
    cmd = [opa_binary(), "run", "--server", "--addr", f"127.0.0.1:{port}", "--log-level", "error"]
    cmd += ["--skip-version-check", "--bundle", str(bundle), "--verification-key", str(public)]
    with open(workdir / "opa-bundle.log", "wb") as out:
        opa = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    try:
        opa_url = f"http://127.0.0.1:{port}"
        wait_http(f"{opa_url}/health?bundles=true", opa, 30, "opa run --bundle")
        db_url = f"sqlite:///{workdir}/decisions-bundle.db"
        with served(workdir, "bundle", {"POLICYGATE_DB_URL": db_url, "POLICYGATE_OPA_URL": opa_url}) as (
            url,
            pids,
        ):
            decided = check_policygate(url, "/v1/evaluate", body)
            with tarfile.open(bundle) as tar:
                member = next(m for m in tar.getmembers() if m.name.endswith(".manifest"))
                manifest = tar.extractfile(member)
                revision = json.loads(manifest.read() if manifest else b"{}")["revision"]
            if decided["policy_revision"] != revision:
                raise SystemExit("bench: the decision does not carry the bundle's revision")
            got = measure(
                wrk_bin,
                "policygate /v1/evaluate, SQLite, OPA on a signed bundle",
                f"{url}/v1/evaluate",
                body,
                duration_s,
                workdir,
                [*pids, opa.pid],
            )
    finally:
        stop(opa)
    notes.append("bundle: " + verify_log(db_url, sum(p.requests - p.errors for p in got)))
    print(f"  {notes[-1]}", flush=True)
    return got


def table(points: list[Point]) -> str:
    lines = [
        "| what | concurrency | requests | errors | throughput (req/s) "
        "| p50 ms | p95 ms | p99 ms | max ms | note |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for p in points:
        lines.append(
            f"| {p.what} | {p.concurrency} | {p.requests} | {p.errors} | {p.rps:.0f} | {p.p50_ms:.1f} | "
            f"{p.p95_ms:.1f} | {p.p99_ms:.1f} | {p.max_ms:.1f} | {p.extra} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--duration", type=float, default=10.0, help="seconds per measured point (default 10)"
    )
    parser.add_argument(
        "--only", choices=["opa", "sqlite", "postgresql", "token", "bundle", "mlflow"], action="append"
    )
    parser.add_argument("--markdown", action="store_true", help="print the result as a Markdown table")
    parser.add_argument(
        "--evidence-cache-ttl", default=None, help="POLICYGATE_EVIDENCE_CACHE_TTL_S for the MLflow part"
    )
    args = parser.parse_args()
    only = set(args.only or ["opa", "sqlite", "postgresql", "token", "bundle", "mlflow"])
    wrk_bin = ensure_wrk()
    evidence = json.loads(EVIDENCE_FILE.read_text())
    opa_body = json.dumps({"input": evidence}).encode()
    pg_body = json.dumps({"evidence": evidence}).encode()
    points: list[Point] = []
    notes: list[str] = []
    started = time.time()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="policygate-bench-") as tmp:
        workdir = Path(tmp)
        if "opa" in only:
            with raw_opa(workdir) as (opa, pids):
                url = f"{opa}/v1/data/policygate/decision"
                answer = requests.post(url, data=opa_body, timeout=10).json()
                assert answer["result"]["allow"] is True, answer
                points += measure(wrk_bin, "raw OPA", url, opa_body, args.duration, workdir, pids)
        backends: list[tuple[str, Any]] = []
        if "sqlite" in only:
            backends.append(("SQLite", contextlib.nullcontext(f"sqlite:///{workdir}/decisions.db")))
        if "postgresql" in only:
            backends.append(("PostgreSQL", pg_schema()))
        for name, db in backends:
            with db as db_url, served(workdir, name, {"POLICYGATE_DB_URL": db_url}) as (url, pids):
                check_policygate(url, "/v1/evaluate", pg_body)
                got = measure(
                    wrk_bin,
                    f"policygate /v1/evaluate, {name}",
                    f"{url}/v1/evaluate",
                    pg_body,
                    args.duration,
                    workdir,
                    pids,
                )
                points += got
                answered = sum(p.requests - p.errors for p in got)
                notes.append(f"{name}: " + verify_log(db_url, answered))
                print(f"  {notes[-1]}", flush=True)
        if "token" in only:
            points += run_with_token(wrk_bin, workdir, pg_body, args.duration, notes)
        if "bundle" in only:
            points += run_bundle(wrk_bin, workdir, pg_body, args.duration, notes)
        if "mlflow" in only:
            got, more = run_mlflow(wrk_bin, workdir, args.duration, args.evidence_cache_ttl)
            points += got
            notes += more
    elapsed = time.time() - started
    print()
    print(
        f"machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}"
    )
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])} ({elapsed:.0f} s)")
    print(
        "load average (1 min) before / after: "
        f"{load_before[0]:.2f} / {os.getloadavg()[0]:.2f} (the machine's other work competes for the cores)"
    )
    raw = {p.concurrency: p.rps for p in points if p.what == "raw OPA"}
    for p in points:
        if p.what.startswith("policygate /v1/evaluate") and p.concurrency in raw:
            p.extra = f"**{p.rps / raw[p.concurrency]:.0%} of raw OPA**; {p.extra} (policygate + its OPA)"
    print(table(points) if args.markdown else "\n".join(p.line() for p in points))
    for note in notes:
        print(f"- {note}")


if __name__ == "__main__":
    main()
