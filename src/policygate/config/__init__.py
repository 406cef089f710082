"""Settings from the environment (prefix POLICYGATE_) with zero-setup defaults."""

from __future__ import annotations

import shutil
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from policygate.config.azure import AzureSettings
from policygate.config.bundles import BundlePull
from policygate.config.integrity import ArtifactSettings
from policygate.config.links import CounterpartLinks
from policygate.config.oidc import OidcSettings
from policygate.config.paths import default_examples_dir
from policygate.config.tags import TagMapping
from policygate.config.units import MIB
from policygate.evidence import Stage

# The source checkout (src/policygate/config/__init__.py -> repo root); used to find the
# project-local OPA and rego/ when policygate runs from a clone.
_CHECKOUT = Path(__file__).resolve().parents[3]

DEFAULT_ALIAS_STAGES: dict[str, Stage] = {
    "champion": "production",
    "prod": "production",
    "production": "production",
    "staging": "staging",
}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="POLICYGATE_", env_nested_delimiter="__", extra="ignore", populate_by_name=True
    )

    db_url: str = Field(
        default="sqlite:///.policygate/decisions.db",
        description="Decision log database (SQLAlchemy URL).",
    )
    db_lock_timeout_s: float = Field(
        default=5.0,
        gt=0,
        description="PostgreSQL: longest wait for the log's append lock (an advisory lock per log schema); "
        "a decision that cannot take it is HTTP 503 with Retry-After.",
    )
    opa_url: str | None = Field(
        default=None, description="Use this OPA server instead of starting one (e.g. http://opa:8181)."
    )
    opa_token: SecretStr | None = Field(
        default=None,
        description="Bearer token for the OPA at POLICYGATE_OPA_URL when it runs with token authentication "
        "(the managed OPA has a secret of its own).",
    )
    opa_bin: str | None = Field(default=None, description="OPA binary for the managed server.")
    engine: Literal["auto", "inprocess", "http"] = Field(
        default="auto",
        description="Which OPA decides: `inprocess` (OPA linked into policygate, .bin/libpolicygate_opa.so "
        "built by make setup), `http` (a managed `opa run` server, or POLICYGATE_OPA_URL's). `auto`: in "
        "process when the library is present, unless POLICYGATE_OPA_URL or a bundle pull is configured.",
    )
    policy_dir: Path | None = Field(default=None, description="Rego policies and data (default: rego/).")
    examples_dir: Path | None = Field(
        default=None,
        description="Example evidence documents, <RULE-ID>.json, one per rule, that the rule must deny "
        "(default: examples/evidence beside the policy directory).",
    )
    opa_timeout_s: float = Field(default=5.0, gt=0, description="Timeout of one OPA query.")
    watch: bool = Field(
        default=False,
        description="Reload the managed OPA's policies and data when their files change (serve --watch).",
    )
    bundle_signing_key: Path | None = Field(
        default=None,
        description="Private key (PEM; what opa build --signing-key takes) signing the bundle serve hands to "
        "OPA sidecars at GET /v1/bundles/policygate.tar.gz; unset: no bundle is served.",
    )
    bundle_signing_alg: str = Field(default="RS256", description="The bundle signature's algorithm.")
    console_candidate_policy: Path | None = Field(
        default=None,
        description="A candidate policy directory the console's policy page can replay over the recorded "
        "decisions (serve --candidate-policy).",
    )
    max_body_bytes: int = Field(default=MIB, gt=0)
    body_timeout_s: float = Field(
        default=10.0, gt=0, description="A request body not fully received within this time is refused (408)."
    )
    checkpoint_key: Path | None = Field(
        default=None, description="Ed25519 key (policygate key create) that signs the log's checkpoints."
    )
    checkpoint_dir: Path | None = Field(
        default=None,
        description="Where serve writes signed checkpoints (checkpoint-<size>.txt, latest.txt): keep it "
        "outside the database, ideally on other storage.",
    )
    attestation_ttl_s: float = Field(
        default=86400.0,
        gt=0,
        description="An attestation (policygate attest, GET /v1/decisions/{id}/attestation) is valid this "
        "long after it is issued (valid_until); attest verify refuses it afterwards.",
    )
    checkpoint_every: int = Field(default=1000, gt=0, description="A checkpoint at least every N records.")
    checkpoint_interval_s: float = Field(
        default=60.0, gt=0, description="... and at least every S seconds while records arrive."
    )
    checkpoint_witness_url: str | None = Field(
        default=None,
        description="A witness (policygate witness) that countersigns each new checkpoint once it verified "
        "that the log extends the last one it saw; it is sent the records since then.",
    )
    mlflow_uri: str | None = Field(
        default=None,
        validation_alias=AliasChoices("POLICYGATE_MLFLOW_URI", "MLFLOW_TRACKING_URI"),
        description="MLflow tracking server; MLflow's own auth variables (MLFLOW_TRACKING_TOKEN, ...) apply.",
    )
    source_timeout_s: float = Field(
        default=10.0, gt=0, description="Total time one evidence collection may take."
    )
    evidence_cache_ttl_s: float = Field(
        default=5.0,
        ge=0,
        description="Seconds a source's registered model, run and experiment for one model version "
        "are reused (0: never); the version itself, its alias and its approvals are always read afresh.",
    )
    directory: str | None = Field(
        default=None,
        pattern=r"^(file:.+|scim:https?://[^\s]+|graph)$",
        description="Identity directory: file:PATH (YAML/JSON), scim:URL or graph (Microsoft Entra ID); "
        "unset: none, and OWN-004, "
        "APR-004 and ACC-005 warn 'not checked' (docs/identity.md).",
    )
    directory_token: SecretStr | None = Field(
        default=None, description="Bearer token of the scim: directory."
    )
    graph_url: str = Field(
        default="https://graph.microsoft.com",
        pattern=r"^https://[^\s/]+/?$",
        description="Microsoft Graph endpoint of POLICYGATE_DIRECTORY=graph (national clouds: "
        "https://graph.microsoft.us, https://microsoftgraph.chinacloudapi.cn, ...).",
    )
    directory_cache_s: float = Field(
        default=300.0, ge=0, description="Seconds a directory answer is reused (0: never)."
    )
    mlflow_webhook_secret: SecretStr | None = Field(
        default=None, description="Shared secret of the MLflow registry webhook (HMAC signature)."
    )
    webhook_alias_stages: dict[str, Stage] = Field(
        default_factory=DEFAULT_ALIAS_STAGES.copy,
        description="MLflow alias -> target stage for model_version_alias.created (JSON).",
    )
    webhook_default_target: Stage | None = Field(
        default=None, description="Target for model_version.created; unset = ignore new versions."
    )
    webhook_enforce: bool = Field(default=False, description="On deny/error, remove the alias that asked.")
    webhook_queue_size: int = Field(default=1000, gt=0)
    webhook_run_wait_s: float = Field(
        default=3600.0,
        ge=0,
        description="Longest wait (seconds, from the delivery) for a version's training run to finish "
        "before a webhook decides it; still running then: an error decision. 0: decide at once.",
    )
    webhook_ticket_tag: str = Field(
        default="ticket",
        max_length=250,
        description="MLflow model version tag a webhook-triggered decision records as request.ticket "
        "(empty: none).",
    )
    webhook_run_url_tag: str = Field(
        default="run_url",
        max_length=250,
        description="MLflow model version tag a webhook-triggered decision records as request.run_url "
        "(empty: none).",
    )
    eventgrid_secret: SecretStr | None = Field(
        default=None, description="Shared secret Event Grid sends as ?code= or X-Policygate-Secret."
    )
    eventgrid_registered_target: Stage | None = Field(
        default=None, description="Target for ModelRegistered events; unset = ignore."
    )
    eventgrid_deployed_target: Stage | None = Field(
        default="production", description="Target for ModelDeployed events; unset = ignore."
    )
    auth_required: bool = Field(
        default=False,
        description="Every API route except health and signed webhooks needs a token (forced on "
        "when serve binds a non-loopback address).",
    )
    oidc: OidcSettings = Field(default_factory=OidcSettings, description="OIDC issuer (POLICYGATE_OIDC__*).")
    rate_limit_per_minute: int = Field(default=600, gt=0, description="Requests per minute per caller.")
    auth_failures_per_minute: int = Field(
        default=60,
        gt=0,
        description="Failed authentications per minute per client address before 429 (burst: a sixth).",
    )
    tags: TagMapping = Field(
        default_factory=TagMapping, description="Platform tag names (POLICYGATE_TAGS__OWNER=...)."
    )
    azure: AzureSettings = Field(
        default_factory=AzureSettings,
        description="Azure ML workspace/registry (POLICYGATE_AZURE__*, see docs/azure.md).",
    )
    audit_interval_s: float | None = Field(
        default=None,
        gt=0,
        description="serve: audit every model in use every S seconds (unset: never; run `policygate audit "
        "run` from a scheduler instead). docs/audit.md.",
    )
    audit_azure_target: Stage = Field(
        default="production",
        description="Target stage of the models Azure ML online deployments and Foundry deployments serve.",
    )
    audit_concurrency: int = Field(default=4, ge=1, le=64, description="Models audited at once.")
    audit_full_every_s: float = Field(
        default=86400.0,
        gt=0,
        description="An unchanged model's evidence is reused by later audits for at most this long, "
        "then collected again.",
    )
    audit_expect_webhooks: bool | None = Field(
        default=None,
        description="Report an MLflow alias with no webhook delivery recorded (missed-event); unset: when "
        "POLICYGATE_MLFLOW_WEBHOOK_SECRET is set.",
    )
    audit_enforce: bool = Field(
        default=False,
        description="On a bypass or drift finding, write the denial back as MLflow tags (as webhooks do).",
    )
    audit_remove_alias: bool = Field(
        default=False, description="With POLICYGATE_AUDIT_ENFORCE: also remove the alias that serves it."
    )
    retire_remove_aliases: bool = Field(
        default=False,
        description="On policygate retire: also remove the retired MLflow version's aliases.",
    )
    audit_foundry_publishers: list[str] = Field(
        default_factory=list,
        description="Foundry deployments audited, by model publisher (JSON list); empty: every deployment.",
    )
    bundle_pull: BundlePull = Field(
        default_factory=BundlePull,
        description="serve's own OPA pulls signed bundles instead of loading the policy directory "
        "(POLICYGATE_BUNDLE_PULL__*, docs/deploy.md).",
    )
    artifacts: ArtifactSettings = Field(
        default_factory=ArtifactSettings,
        description="Model files hashed into the evidence (POLICYGATE_ARTIFACTS__*, docs/integrity.md).",
    )
    links: CounterpartLinks = Field(
        default_factory=CounterpartLinks,
        description="Tags linking a version to its counterpart on the other platform (POLICYGATE_LINKS__*).",
    )

    @cached_property
    def policy_path(self) -> Path:
        if self.policy_dir is not None:
            return self.policy_dir
        for candidate in (Path.cwd() / "rego", _CHECKOUT / "rego"):
            if (candidate / "policygate").is_dir():
                return candidate
        return Path.cwd() / "rego"

    @cached_property
    def examples_path(self) -> Path:
        return self.examples_dir or default_examples_dir(self.policy_path)

    @cached_property
    def opa_binary(self) -> str:
        if self.opa_bin:
            return self.opa_bin
        for candidate in (Path.cwd() / ".bin" / "opa", _CHECKOUT / ".bin" / "opa"):
            if candidate.exists():
                return str(candidate)
        return shutil.which("opa") or "opa"
