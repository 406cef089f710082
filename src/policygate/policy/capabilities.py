"""The builtins a policy may call: OPA's own minus those that reach the network or give a different
answer each time (``opa check --capabilities``).

A gate's decision must follow from the evidence, the policy and its data alone: ``http.send`` to a
data catalogue turns an outage into "not PII", ``rand.intn`` or ``uuid.rfc4122`` decide differently
on a replay, ``time.now_ns`` ages approvals differently tomorrow. So these builtins are left out of
the capabilities every load checks with, and a policy calling one is refused naming the builtin and
line. ``time.now_ns`` is the one exception, read only by util.rego's ``ref_time_ns`` (the request
time when the evidence has one). A builtin is opted back in by naming it in
``policygate_params.allow_builtins`` (docs/policy-authoring.md says what that costs).
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

from policygate.engine.catalogue import DECISION_PACKAGE, ParsedRule
from policygate.engine.errors import EngineError
from policygate.engine.runner import CheckError, output_text, run_opa
from policygate.policy.checks import calls

# network (http.send, net.lookup_ip_addr; the whole net. namespace), time-dependent verification
# (it reads the clock), randomness, and OPA's own runtime (its environment and configuration)
DENIED = frozenset(
    {
        "http.send",
        "opa.runtime",
        "rand.intn",
        "uuid.rfc4122",
        "io.jwt.decode_verify",
        "crypto.x509.parse_and_verify_certificates",
        "crypto.x509.parse_and_verify_certificates_with_options",
        "providers.aws.sign_req",
    }
)
DENIED_PREFIXES = ("net.",)
NOW = "time.now_ns"
NOW_READER = "ref_time_ns"  # util.rego's one reader of the clock

_UNDEFINED = re.compile(r"undefined function (\S+)")


def denied(name: str, allowed: frozenset[str] = frozenset()) -> bool:
    return name not in allowed and (name in DENIED or name.startswith(DENIED_PREFIXES))


@functools.cache
def _current(binary: str) -> str:
    proc = run_opa(binary, ["capabilities", "--current"])
    if proc.returncode != 0:
        raise EngineError("policy_error", f"opa capabilities failed: {output_text(proc)}")
    return proc.stdout


def write_capabilities(binary: str, target: Path, allowed: frozenset[str] = frozenset()) -> Path:
    """The capabilities file for ``opa check``: OPA's own without the denied builtins."""
    caps: dict[str, Any] = json.loads(_current(binary))
    caps["builtins"] = [b for b in caps.get("builtins") or [] if not denied(str(b.get("name")), allowed)]
    target.write_text(json.dumps(caps))
    return target


def allowed_of(params: Any) -> frozenset[str]:
    allow = params.get("allow_builtins") if isinstance(params, dict) else None
    return frozenset(str(x) for x in allow) if isinstance(allow, list) else frozenset()


def explained(error: CheckError, allowed: frozenset[str] = frozenset()) -> CheckError:
    """OPA's "undefined function http.send" for a denied builtin, saying why and how to opt in."""
    match = _UNDEFINED.search(error.message)
    if match is None or not denied(match[1], allowed):
        return error
    return CheckError(
        error.file,
        error.row,
        error.col,
        "builtin_refused",
        f"{match[1]} is not allowed in a policy: it reaches the network or answers differently each "
        "time, so the same evidence could be decided differently (an outage could read as a pass); "
        "to accept that, list it in policygate_params.allow_builtins (docs/policy-authoring.md)",
    )


def now_errors(rules: list[ParsedRule], allowed: frozenset[str] = frozenset()) -> list[CheckError]:
    """``time.now_ns()`` anywhere but util.rego's ``ref_time_ns``."""
    if NOW in allowed:
        return []
    errors = []
    for rule in rules:
        if rule.package == DECISION_PACKAGE and rule.name == NOW_READER:
            continue
        for op, _, loc in calls(rule):
            if ".".join(op) == NOW:
                errors.append(
                    CheckError(
                        rule.file,
                        int(loc.get("row", rule.row) or rule.row),
                        1,
                        "builtin_refused",
                        f"{NOW} in `{rule.name}`: a policy reads the time only through ref_time_ns (the "
                        "request time, so a replay decides the same); use ref_time_ns, or list "
                        f"{NOW} in policygate_params.allow_builtins",
                    )
                )
    return errors
