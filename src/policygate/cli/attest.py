"""``policygate attest``: a signed attestation of a release decision, and its offline check.

    policygate attest DECISION_ID --key FILE --out FILE [--db URL]
    policygate attest verify FILE --key PUB --target STAGE (--artifact DIR | --digest sha256:...)
        [--at TIME] [--server URL]

``attest`` refuses a decision that no longer stands (superseded, an approval it counted withdrawn).
``verify`` exits 0 only for a valid signature within its validity period (at ``--at``, default now), an
allow decision for that target, matching digests and, with ``--server``, a decision the service says
still stands; 1 otherwise, naming which; 2 when it could not check (a file or key it cannot read, a
special file, the deadline, a service that cannot be asked).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup

from policygate.cli.common import fail, opened_log
from policygate.cli.options import DbOption


class _AttestGroup(TyperGroup):
    """``attest DECISION_ID ...`` and ``attest verify ...``: a first word that is no subcommand is a
    decision id (for the hidden ``create``)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            args = ["create", *args]
        return super().parse_args(ctx, args)


attest_app = typer.Typer(
    cls=_AttestGroup,
    help="Signed attestations of release decisions, for the deploy step (docs/integrity.md): "
    "`attest DECISION_ID --key FILE --out FILE`, `attest verify FILE --key PUB --target STAGE ...`.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@attest_app.command("create", hidden=True)
def attest_create(
    decision_id: Annotated[str, typer.Argument(help="A collected release decision's id.")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the DSSE envelope (JSON).")],
    key: Annotated[
        Path | None,
        typer.Option(
            "--key", help="Ed25519 private key (default: POLICYGATE_CHECKPOINT_KEY; policygate key create)."
        ),
    ] = None,
    db: DbOption = None,
) -> None:
    """Attest a recorded release decision: an in-toto statement in a DSSE envelope."""
    from policygate.config import Settings
    from policygate.decisions.checkpoint import CheckpointError, load_private
    from policygate.decisions.standing import attestation_of
    from policygate.integrity.attest import AttestError, sign, write

    settings = Settings()

    key = key or settings.checkpoint_key
    if key is None:
        fail("no signing key: pass --key FILE or set POLICYGATE_CHECKPOINT_KEY (policygate key create)")
    try:
        private = load_private(key)
    except CheckpointError as exc:
        fail(str(exc))
    with opened_log(db, read_only=True) as log:
        try:
            envelope = sign(attestation_of(log, decision_id, ttl_s=settings.attestation_ttl_s), private)
        except (AttestError, LookupError) as exc:
            fail(str(exc))
    try:
        write(envelope, out)
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror or exc}")
    typer.echo(f"attestation of decision {decision_id}: {out}")


@attest_app.command("verify")
def attest_verify(
    file: Annotated[Path, typer.Argument(help="The attestation (DSSE envelope) to check.")],
    key: Annotated[Path, typer.Option("--key", help="policygate's Ed25519 public key (FILE.pub).")],
    target: Annotated[str, typer.Option("--target", "-t", help="The stage the deploy step deploys to.")],
    artifact: Annotated[
        Path | None, typer.Option("--artifact", help="The directory about to be deployed (hashed here).")
    ] = None,
    digest: Annotated[str | None, typer.Option("--digest", help="Or its manifest digest, sha256:...")] = None,
    at: Annotated[
        str | None,
        typer.Option("--at", help="Check validity at this time (ISO 8601, for audits); default now."),
    ] = None,
    server: Annotated[
        str | None,
        typer.Option(
            "--server",
            help="Also ask this policygate whether the decision still stands (token: POLICYGATE_TOKEN).",
        ),
    ] = None,
    signing_key: Annotated[
        Path | None,
        typer.Option(
            "--signing-key",
            help="Public key (PEM) of the model's signer: a top-level model.sig is verified with it "
            "(required when the decision saw a verified signature); without it model.sig is a file.",
        ),
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, help="Seconds the reading of --artifact may take.")
    ] = 300.0,
) -> None:
    """Check offline that the files about to be deployed are the files an allow decision for this target
    attested: exit 0 yes, 1 no (naming why), 2 could not check."""
    from policygate.cli.remote import RemoteError, not_standing
    from policygate.decisions.checkpoint import CheckpointError, load_public
    from policygate.integrity.attest import AttestError, check, open_envelope
    from policygate.integrity.deployed import DeadlineExceeded, deployed
    from policygate.integrity.manifest import BudgetExceeded
    from policygate.timeutil import parse_iso

    if (artifact is None) == (digest is None):
        fail("pass one of --artifact DIR or --digest sha256:...")
    if digest is not None and not (digest.startswith("sha256:") and len(digest) == 71):
        fail(f"--digest {digest!r}: expected sha256: and 64 hex digits")
    when = parse_iso(at) if at is not None else None
    if at is not None and when is None:
        fail(f"--at {at!r}: expected an ISO 8601 time, e.g. 2026-12-07T10:00:00Z")
    try:
        public = load_public(key)
    except CheckpointError as exc:
        fail(str(exc))
    try:
        envelope = json.loads(file.read_text())
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror or exc}")
    except ValueError:
        _refused("not a policygate attestation: the file is not JSON")
    try:
        stmt = open_envelope(envelope, public)
    except AttestError as exc:
        _refused(str(exc))
    files = signature = None
    if artifact is not None:
        try:
            found = deployed(artifact, signing_key, timeout, _attested_model(stmt))
        except (OSError, ValueError, BudgetExceeded, DeadlineExceeded) as exc:
            fail(f"cannot hash {artifact}: {exc}")
        files, signature = found.files, found.signature
    verdict = check(stmt, target, digest, files, at=when, signature=signature)
    if not verdict.ok:
        _refused("\n".join(verdict.problems), verdict.model)
    decision = (stmt.get("predicate") or {}).get("decision") or {}
    if server is not None:
        try:
            why = not_standing(server, str(decision.get("decision_id")), os.environ.get("POLICYGATE_TOKEN"))
        except RemoteError as exc:
            fail(str(exc))
        if why is not None:
            _refused(f"withdrawn: {why}", verdict.model)
    typer.echo(f"OK: {verdict.model} -> {target}: decision {decision.get('decision_id')} allowed these files")


def _refused(problem: str, model: str | None = None) -> NoReturn:
    typer.echo(f"REFUSED{f': {model}' if model else ''}: {problem}", err=True)
    raise typer.Exit(1)


def _attested_model(stmt: dict[str, Any]) -> str | None:
    from policygate.integrity.attest import MODEL_PREFIX

    for subject in stmt.get("subject") or []:
        name = str(subject.get("name", "")) if isinstance(subject, dict) else ""
        if name.startswith(MODEL_PREFIX):
            return name.removeprefix(MODEL_PREFIX)
    return None
