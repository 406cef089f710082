"""Who asks for what: the model version (``subject``), its target and the change it belongs to."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from policygate.evidence.fields import Part, Stage, line
from policygate.refs import RefError, parse


class Subject(Part):
    """The model version the decision is about."""

    platform: Literal["mlflow", "azureml", "other"] = Field(description="Platform holding the model version.")
    name: str = Field(min_length=1, description="Registered model name.")
    version: str = Field(min_length=1, description="Model version (string, as platforms differ).")
    ref: str = Field(min_length=1, description="Canonical model reference, e.g. mlflow:models:/fraud/7.")
    aliases: list[str] = Field(default_factory=list, description="Aliases pointing at this version.")
    created_at: str | None = Field(default=None, description="ISO-8601 creation time of the version.")
    created_by: str | None = Field(default=None, description="Who registered the version, if known.")
    tags: dict[str, str] = Field(default_factory=dict, description="Version tags as recorded.")
    properties: dict[str, str] = Field(
        default_factory=dict, description="Version properties as recorded (Azure ML), else empty."
    )
    stage: str | None = Field(default=None, description="Registry stage of the version (Azure ML), if any.")

    @model_validator(mode="after")
    def _ref_names_this_version(self) -> Subject:
        """``ref`` parses as a model reference to exactly this platform, name and version (a
        supplied document cannot name one model in ``ref`` and another in ``name``)."""
        if self.platform == "other":
            return self
        try:
            ref = parse(self.ref)
        except RefError as exc:
            raise ValueError(f"ref: {exc}") from None
        if (ref.platform, ref.name, ref.version) != (self.platform, self.name, self.version):
            raise ValueError(
                f"ref {self.ref!r} does not name {self.platform} model {self.name!r} version {self.version!r}"
            )
        return self


class Target(Part):
    """Where the model is to go."""

    stage: Stage = Field(description="Stage the model is to be promoted or deployed to.")
    environment: str | None = line(256, "Free-form environment name, e.g. prod-eu.")


# The change on record (check --ticket/--run-url, POST /v1/decisions): the same bounds everywhere.
TICKET_MAX = 256
RUN_URL_MAX = 2048
RUN_URL = r"^https?://[^\x00-\x20\x7f]+$"  # a URL: no spaces or control characters


def _run_url(description: str) -> Any:
    return Field(default=None, max_length=RUN_URL_MAX, pattern=RUN_URL, description=description)


class Change(Part):
    """The change a promotion belongs to, as the caller names it (``check --ticket/--run-url``, the
    body of POST /v1/decisions): checked on construction, recorded in ``request``."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    ticket: str | None = line(TICKET_MAX, "Change ticket.")
    run_url: str | None = _run_url("The CI run that asks.")

    def fields(self) -> dict[str, str]:
        """The ``request`` fields this change sets (none when nothing was named)."""
        return {k: v for k, v in (("ticket", self.ticket), ("run_url", self.run_url)) if v is not None}


class Request(Part):
    """Who asks for what."""

    target: Target = Field(description="Target of the promotion or deployment.")
    requested_by: str | None = line(320, "Identity asking for the promotion.")
    caller: str | None = line(
        400, "Authenticated identity that sent the request (set by policygate, e.g. oidc:alice@corp)."
    )
    requested_at: str | None = line(64, "ISO-8601 time of the request.")
    ticket: str | None = line(TICKET_MAX, "Change ticket, if any.")
    run_url: str | None = _run_url("The CI run or pipeline that asked (an http(s) URL, one line), if any.")
