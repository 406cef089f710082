"""MLflow models in use: every registered model version an alias that maps to a target points at.

Two paged listings, never a call per model: the registered models (their aliases and tags), then
the aliased versions in bulk (``name IN (...)``, their tags, run and source) for the fingerprint
that lets an unchanged version be audited without collecting its evidence again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policygate.audit.governed import OWN_TAGS
from policygate.audit.inventory import InUse, Listing
from policygate.decisions.record import model_spellings
from policygate.evidence import digest
from policygate.sources.base import SourceError
from policygate.sources.mlflow.mapping import PLATFORM
from policygate.sources.mlflow.source import MlflowSource

MODELS_PAGE = 1000  # MLflow's maximum for search_registered_models
VERSIONS_PAGE = 10_000
NAMES_PER_FILTER = 100  # names per search_model_versions filter: keeps the GET's URL a few KB


def list_in_use(source: MlflowSource, alias_stages: Mapping[str, str], target: str | None = None) -> Listing:
    listing = Listing(PLATFORM)
    models = _registered_models(source, listing)  # a listing cut short keeps what it read, and says so
    aliased = [
        (rm, alias.lower(), str(version), alias_stages[alias.lower()])
        for rm in models
        for alias, version in sorted((rm.aliases or {}).items())
        if alias.lower() in alias_stages and (target is None or alias_stages[alias.lower()] == target)
    ]
    try:
        versions = _versions(source, sorted({rm.name for rm, *_ in aliased}), listing)
    except SourceError:  # no fingerprints: every version is collected (and that shows what fails)
        versions = {}
    for rm, alias, version, stage in aliased:
        ref = f"mlflow:models:/{rm.name}/{version}"
        mv = versions.get((rm.name, version))
        listing.items.append(
            InUse(
                ref=ref,
                platform=PLATFORM,
                name=rm.name,
                version=version,
                target=stage,
                via=f"alias {alias}",
                alias=alias,
                spellings=tuple(model_spellings(ref)),
                fingerprint=None if mv is None else fingerprint(rm, mv),
            )
        )
    return listing


def fingerprint(rm: Any, mv: Any) -> str:
    """What the listings show about a version; the same as before means the same evidence, except for
    its run (read only when collected; a full collection at least every POLICYGATE_AUDIT_FULL_EVERY_S)."""
    return digest(
        {
            "model_tags": _own_removed(rm.tags),
            "version_tags": _own_removed(mv.tags),
            "run_id": mv.run_id,
            "source": mv.source,
            "status": str(mv.status),
            "user_id": mv.user_id,
            "created": mv.creation_timestamp,
        }
    )


def _own_removed(tags: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in dict(tags or {}).items() if not str(k).startswith(OWN_TAGS)}


def _registered_models(source: MlflowSource, listing: Listing) -> list[Any]:
    found: list[Any] = []
    token = None
    while True:
        listing.calls += 1
        try:
            page = source._guard(
                "search registered models",
                source.client.search_registered_models,
                None,
                MODELS_PAGE,
                None,
                token,
            )
        except SourceError as exc:
            listing.error = str(exc) + (f" (after {len(found)} registered models)" if found else "")
            return found
        found += list(page)
        token = page.token
        if not token:
            return found


def _quoted(name: str) -> str:
    return "'" + name.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _versions(source: MlflowSource, names: list[str], listing: Listing) -> dict[tuple[str, str], Any]:
    found: dict[tuple[str, str], Any] = {}
    for start in range(0, len(names), NAMES_PER_FILTER):
        chunk = [n for n in names[start : start + NAMES_PER_FILTER] if "\\" not in n]
        if not chunk:
            continue
        where = f"name IN ({', '.join(_quoted(n) for n in chunk)})"
        token = None
        while True:
            listing.calls += 1
            page = source._guard(
                "search model versions",
                source.client.search_model_versions,
                where,
                VERSIONS_PAGE,
                None,
                token,
            )
            for mv in page:
                found[(mv.name, str(mv.version))] = mv
            token = page.token
            if not token:
                break
    return found
