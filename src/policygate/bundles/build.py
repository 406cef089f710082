"""``policygate bundle build``: an OPA bundle of the policies and their parameters whose manifest
revision is policygate's policy revision, signed with OPA's own bundle signing (``opa build
--signing-key``). The same checks as any load run first: a policy that would be refused is never
bundled.

The bundle owns the data roots of the policy's own packages and data files (for rego/: ``policygate``
and ``policygate_params``), not the whole tree: policygate keeps writing the waivers to
``policygate_waivers`` in an OPA that pulls the bundle. Test modules (``*_test.rego``) are left out.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from policygate.engine.errors import EngineError
from policygate.engine.revision import is_policy_module
from policygate.engine.runner import output_text, run_opa
from policygate.policy.files import policy_data, revision_of_files, snapshot
from policygate.policy.layout import bundle_layout, bundle_roots
from policygate.policy.load import load_policy
from policygate.policy.report import LoadReport

ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "HS256")


@dataclass
class Built:
    report: LoadReport
    revision: str | None = None  # None: refused (report.errors says why)
    path: Path | None = None
    signed: bool = False


def build_bundle(
    binary: str,
    policy_dir: Path,
    out: Path,
    *,
    signing_key: Path | None = None,
    signing_alg: str = "RS256",
    examples_dir: Path | None = None,
    timeout_s: float = 5.0,
) -> Built:
    report, engine = load_policy(binary, policy_dir, examples_dir, timeout_s=timeout_s)
    if engine is None or report.revision is None:
        return Built(report)
    engine.close()
    files = snapshot(policy_dir)
    if revision_of_files(files, policy_data(files, policy_dir)[0]) != report.revision:
        raise EngineError("policy_error", f"the policies in {policy_dir} changed while they were checked")
    staged = Path(tempfile.mkdtemp(prefix="policygate-bundle-"))
    try:
        bundled = {
            path: content
            for path, content in files.items()  # what a load reads: modules and data files
            if not path.endswith(".rego") or is_policy_module(Path(path).name, content.decode())
        }  # tests (and OPA's own system configuration) stay out of the bundle
        layout = bundle_layout(bundled, policy_dir)
        for relative, content in layout.items():
            target = staged / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        # the roots are the policy's own (as for the managed OPA's copy): the waivers stay writable
        manifest = {"revision": report.revision, "roots": bundle_roots(layout)}
        (staged / ".manifest").write_text(json.dumps(manifest))
        # built from inside the staged copy: the bundle's paths are the policy directory's own
        args = ["build", "--bundle", ".", "--output", str(out.resolve())]
        if signing_key is not None:
            args += ["--signing-key", str(signing_key.resolve()), "--signing-alg", signing_alg]
        proc = run_opa(binary, args, timeout_s=120, cwd=staged)
        if proc.returncode != 0:
            raise EngineError("policy_error", f"opa build refused the bundle: {output_text(proc)}")
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    return Built(report, report.revision, out, signing_key is not None)
