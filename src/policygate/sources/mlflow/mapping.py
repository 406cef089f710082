"""MLflow entities (model version, registered model, run, experiment) -> evidence fields: pure
functions of what the MLflow client answered (tested without MLflow in tests/unit)."""

from __future__ import annotations

import json
from typing import Any

from policygate.config.tags import TagMapping
from policygate.evidence import Code, Dataset, Experiment, Lineage, Run, Subject
from policygate.refs import ModelRef
from policygate.sources.base import Parts, gaps_of
from policygate.sources.tags import approvals_from, iso_from_millis, ownership_from

PLATFORM = "mlflow"
APPROVALS_SOURCE = "mlflow:model-version-tag"


def parts_of(
    mapping: TagMapping, endpoint: str, ref: ModelRef, mv: Any, rm: Any, run: Any, experiment: Any
) -> Parts:
    """The model version's subject, ownership, lineage and approvals (the files come apart)."""
    version_tags: dict[str, str] = dict(mv.tags or {})
    model_tags: dict[str, str] = dict(rm.tags or {})
    aliases = sorted(set(mv.aliases or []) | ({ref.alias} if ref.alias else set()))
    subject = Subject(
        platform="mlflow",
        name=mv.name,
        version=str(mv.version),
        ref=str(ref.with_version(str(mv.version))),
        aliases=aliases,
        created_at=iso_from_millis(mv.creation_timestamp),
        created_by=mv.user_id or None,
        tags=version_tags,
    )
    ownership = ownership_from(mapping, model_tags, version_tags)
    approvals, approvals_ok = approvals_from(version_tags.get(mapping.approvals), APPROVALS_SOURCE)
    lineage = lineage_of(run, experiment)

    gaps = gaps_of(subject, ownership, approvals_ok, lineage)
    return Parts(PLATFORM, endpoint, subject, ownership, lineage, approvals, None, gaps)


def lineage_of(run: Any, experiment: Any) -> Lineage:
    if run is None:
        return Lineage()
    tags: dict[str, str] = dict(run.data.tags or {})
    info = run.info
    datasets = []
    for dataset_input in getattr(run.inputs, "dataset_inputs", None) or []:
        ds = dataset_input.dataset
        input_tags = {t.key: t.value for t in dataset_input.tags or []}
        datasets.append(
            Dataset(
                name=ds.name,
                digest=ds.digest or None,
                source=dataset_uri(ds.source),
                context=input_tags.get("mlflow.data.context"),
            )
        )
    return Lineage(
        run=Run(
            platform=PLATFORM,
            id=info.run_id,
            status=info.status,
            experiment=Experiment(id=info.experiment_id, name=experiment.name if experiment else None),
            user=info.user_id or tags.get("mlflow.user") or None,
            start=iso_from_millis(info.start_time),
            end=iso_from_millis(info.end_time),
        ),
        code=Code(
            commit=tags.get("mlflow.source.git.commit") or None,
            repository=tags.get("mlflow.source.git.repoURL") or None,
            entry_point=tags.get("mlflow.source.name") or None,
        ),
        datasets=datasets,
    )


def logged_model_id(source: str | None) -> str | None:
    if source and source.startswith("models:/m-"):
        return source.removeprefix("models:/").split("/", 1)[0]
    return None


def dataset_uri(source: str | None) -> str | None:
    """Dataset sources are JSON strings such as {"uri": "s3://..."}; keep the URI."""
    if not source:
        return None
    try:
        parsed = json.loads(source)
    except ValueError:
        return source
    if isinstance(parsed, dict):
        for key in ("uri", "url", "path", "table_name"):
            if parsed.get(key):
                return str(parsed[key])
    return source
