"""The schema of ``data.policygate_params`` (rego/data.json): every parameter the shipped rules read,
with its type. Checked whenever policygate loads policies, so a quoted number or a typo in a mode is
refused at load instead of silently switching a rule off. ``policygate schema --params`` prints it."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from policygate.engine.runner import CheckError
from policygate.evidence import Stage

RULE_ID_PATTERN = r"^[A-Z]{2,5}-[0-9]{3}$"
RuleId = Annotated[str, StringConstraints(pattern=RULE_ID_PATTERN)]


def rule_id(text: str) -> str:
    """A rule id as typed (any case, spaces around) in its canonical form; ValueError if it is none."""
    canonical = text.strip().upper()
    if not re.match(RULE_ID_PATTERN, canonical):
        raise ValueError(
            f"{text[:40]!r} is not a rule id (2 to 5 capital letters, a dash, 3 digits, e.g. LIN-004)"
        )
    return canonical


Mode = Literal["enforce", "warn", "dryrun"]
Name = Annotated[str, StringConstraints(min_length=1)]


class Params(BaseModel):
    """``data.policygate_params``: all keys required, no others (your own go under ``custom``)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    required_approvals: dict[Stage, dict[Name, Annotated[int, Field(ge=0)]]] = Field(
        description="Stage -> risk tier -> independent approvals needed (APR-001); the tiers are the "
        "risk tiers OWN-002 accepts."
    )
    max_approval_age_days: int = Field(gt=0, description="Oldest an approval may be, in days (APR-003).")
    privileged_roles: list[Name] = Field(description="Roles a deployment identity must not hold (ACC-001).")
    successful_run_statuses: list[Name] = Field(
        min_length=1, description="Run/job statuses that count as success (LIN-002)."
    )
    require_verified_approvals: bool = Field(
        description="Count only approvals policygate recorded from authenticated callers (APR-001)."
    )
    required_fields: list[Name] = Field(
        description="Evidence fields whose gap in collection.gaps denies (EVD-001)."
    )
    modes: dict[RuleId, Mode] = Field(description="Rule id -> enforce | warn | dryrun (unlisted: enforce).")
    production_auth_modes: list[Name] = Field(
        min_length=1, description="Endpoint auth modes allowed in production (ACC-003)."
    )
    allowed_signers: list[Name] = Field(
        default_factory=list,
        description="Signers (names of POLICYGATE_ARTIFACTS__SIGNING_KEYS) whose signature a production "
        "model must carry (INT-001).",
    )
    unverified_files: dict[Stage, Mode] = Field(
        default_factory=dict,
        description="Stage -> enforce | warn | dryrun: what INT-003 (model files not verified) does there; "
        "a stage not listed enforces.",
    )
    max_unverified_bytes: int = Field(
        default=0,
        ge=0,
        description="Models whose files total at most this many bytes may go unverified without INT-003 "
        "(0: none may).",
    )
    custom: dict[str, Any] = Field(
        default_factory=dict,
        description="Parameters of your own rules, each declared by a rule's METADATA custom.params (a JSON "
        "schema per key): undeclared keys and values of the wrong type are refused.",
    )
    allow_builtins: list[Name] = Field(
        default_factory=list,
        description="Network or non-deterministic builtins (http.send, net.*, rand.intn, time.now_ns, ...) "
        "a policy may call after all: each one costs the gate that the same evidence is always decided "
        "the same.",
    )
    approver_groups: dict[Name, list[Name]] = Field(
        default_factory=dict,
        description="Risk tier -> directory groups an approver must be in (APR-004); a tier not listed: any "
        "active person.",
    )
    max_credential_days: int = Field(
        default=90, gt=0, description="Longest a deployment identity's credential may stay valid (ACC-005)."
    )
    require_directory: bool = Field(
        default=False,
        description="Without an identity directory, OWN-004, APR-004 and ACC-005 deny instead of warning.",
    )
    owner_review_days: dict[Name, Annotated[float, Field(gt=0)]] = Field(
        default_factory=dict,
        description="Risk tier -> days (fractions allowed) an owner review stays current (LIF-002); a tier "
        "not listed takes the shortest listed; empty: LIF-002 never fires.",
    )
    min_test_coverage: float | None = Field(
        default=None,
        ge=0,
        le=100,
        description="Refuse a policy whose Rego tests (opa test --coverage) cover less than this percentage.",
    )


def json_schema() -> dict[str, Any]:
    return Params.model_json_schema()


def check_params(value: Any, file: str, known_rules: set[str] | None = None) -> list[CheckError]:
    """Problems of ``data.policygate_params`` as found in ``file``, each naming the key."""
    if value is None:
        return [CheckError(file, 0, 0, "params_missing", "no policygate_params in the policy data")]
    errors = []
    try:
        params = Params.model_validate(value)
    except ValidationError as exc:
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"])
            got = f" (got {err['input']!r})" if err["type"] != "missing" else ""
            errors.append(
                CheckError(file, 0, 0, "params_invalid", f"policygate_params.{key}: {err['msg']}{got}"[:500])
            )
        return errors
    for rule_id in sorted(
        set(params.modes) - (known_rules if known_rules is not None else set(params.modes))
    ):
        errors.append(
            CheckError(
                file, 0, 0, "params_invalid", f"policygate_params.modes.{rule_id}: no rule has this id"
            )
        )
    return errors
