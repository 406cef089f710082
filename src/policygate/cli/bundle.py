"""`policygate bundle build`: a signed OPA bundle of the policies for OPA sidecars (docs/deploy.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from policygate.cli.common import examples_dir_or_default, fail, group, policy_dir_or_default
from policygate.cli.options import ExamplesDirOption, PolicyDirOption

bundle_app = group(help="OPA bundles of the policies, for OPA sidecars that pull them.")


@bundle_app.command("build")
def bundle_build(
    out: Annotated[Path, typer.Option("--out", help="The bundle file to write (.tar.gz).")],
    policy_dir: PolicyDirOption = None,
    signing_key: Annotated[
        Path | None,
        typer.Option(
            "--signing-key",
            help="What `opa build --signing-key` takes: a PEM private key (RSA for the default RS256), "
            "or an HMAC secret for HS256.",
        ),
    ] = None,
    signing_alg: Annotated[
        str, typer.Option("--signing-alg", help="RS256 (default), RS384, RS512, PS256..., ES256..., HS256.")
    ] = "RS256",
    examples_dir: ExamplesDirOption = None,
) -> None:
    """Check the policies as any load does, then write them with their parameters (data.json) as an OPA
    bundle whose .manifest revision is the policy revision, signed when a key is given.

    Exit 0: written; 2: refused (a policy that would not load, an unreadable key), nothing written."""
    from policygate.bundles.build import ALGORITHMS, build_bundle
    from policygate.config import Settings
    from policygate.engine.errors import EngineError
    from policygate.output import load_report

    if signing_alg not in ALGORITHMS:
        fail(f"--signing-alg: {signing_alg!r} is not one of {', '.join(ALGORITHMS)}")
    if signing_key is not None and not signing_key.is_file():
        fail(f"--signing-key: {signing_key} is not a readable file")
    directory = policy_dir_or_default(policy_dir)
    settings = Settings()
    partial = out.with_name(out.name + ".partial")  # never a half-written bundle under the real name
    try:
        built = build_bundle(
            settings.opa_binary,
            directory,
            partial,
            signing_key=signing_key,
            signing_alg=signing_alg,
            examples_dir=examples_dir_or_default(policy_dir, examples_dir),
            timeout_s=settings.opa_timeout_s,
        )
    except EngineError as exc:
        partial.unlink(missing_ok=True)
        fail(exc.message)
    if built.revision is None:
        fail(
            f"the policies in {directory} are refused, no bundle written:\n{load_report.render(built.report)}"
        )
    partial.replace(out)
    state = "signed" if built.signed else "NOT signed: OPA can take it only without --verification-key"
    typer.echo(f"bundle {out} (revision {built.revision}, {state})")
