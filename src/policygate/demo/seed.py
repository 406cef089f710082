"""Register model versions in MLflow the way a data scientist would, with typical governance defects.

Used by ``policygate demo`` (with real scikit-learn training) and by the
tests (the same registry state, without the training step, to stay fast).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

REPO = "https://github.com/example-corp/fraud-models"


@dataclass
class ModelSpec:
    name: str
    owner: str | None = "alice@corp"
    team: str | None = "risk-ml"
    use_case: str | None = "card fraud scoring"
    risk_tier: str | None = "medium"
    run_user: str = "dana@corp"
    # (approver, stage, days before now); 0 = approved just after registration
    approvals: list[tuple[str, str, int]] = field(default_factory=lambda: [("bob@corp", "production", 0)])
    approvals_raw: str | None = None  # a tag value written verbatim (e.g. malformed)
    dataset: bool = True
    commit: str | None = "9f2c1e7a4b6d8f0e1a3c5b7d9e2f4a6c8b0d1e3f"
    run_status: str = "FINISHED"
    with_run: bool = True
    alias: str | None = None
    description: str = ""


DEMO_MODELS = [
    ModelSpec("fraud-detector", alias="champion", description="compliant"),
    ModelSpec(
        "churn-predictor", dataset=False, use_case="customer churn", description="no training dataset logged"
    ),
    ModelSpec(
        "credit-scorer", approvals=[("alice@corp", "production", 0)], description="owner approved own model"
    ),
    ModelSpec(
        "marketing-uplift", owner=None, use_case="campaign uplift", risk_tier="low", description="no owner"
    ),
    ModelSpec(
        "loan-default",
        risk_tier="high",
        use_case="loan default risk",
        description="high risk, one approval (two required)",
    ),
]


def _approvals_tag(spec: ModelSpec, now: datetime) -> str | None:
    if spec.approvals_raw is not None:
        return spec.approvals_raw
    if not spec.approvals:
        return None
    return json.dumps(
        [
            {"by": by, "stage": stage, "at": (now - timedelta(days=days)).isoformat().replace("+00:00", "Z")}
            for by, stage, days in spec.approvals
        ]
    )


def _training_data() -> Any:
    import numpy as np

    rng = np.random.default_rng(7)
    features = rng.normal(size=(200, 4))
    labels = (features[:, 0] + 0.5 * features[:, 1] + rng.normal(scale=0.3, size=200) > 0).astype(int)
    return features, labels


def register(tracking_uri: str, spec: ModelSpec, *, train: bool = False) -> str:
    """Create the run (optionally training a real model) and the model version; returns the version."""
    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri)
    try:
        client.get_registered_model(spec.name)
    except mlflow.exceptions.MlflowException:
        rm_tags = {
            "owner": spec.owner,
            "team": spec.team,
            "use_case": spec.use_case,
            "risk_tier": spec.risk_tier,
        }
        client.create_registered_model(spec.name, tags={k: v for k, v in rm_tags.items() if v})

    run_id = None
    if spec.with_run:
        mlflow.set_experiment(f"{spec.name}-training")
        tags = {"mlflow.user": spec.run_user, "mlflow.source.name": "train.py"}
        if spec.commit:
            tags |= {"mlflow.source.git.commit": spec.commit, "mlflow.source.git.repoURL": REPO}
        with mlflow.start_run(tags=tags) as run:
            run_id = run.info.run_id
            features, labels = _training_data()
            if spec.dataset:
                import pandas as pd

                frame = pd.DataFrame(features, columns=["amount", "velocity", "age_days", "merchant_risk"])
                frame["label"] = labels
                dataset = mlflow.data.from_pandas(  # type: ignore[attr-defined]
                    frame,
                    source="s3://example-corp-data/transactions/2026-10.parquet",
                    name="transactions-2026-10",
                )
                mlflow.log_input(dataset, context="training")
            mlflow.log_param("model", "logistic_regression")
            if train:
                from sklearn.linear_model import LogisticRegression

                model = LogisticRegression().fit(features, labels)
                mlflow.log_metric("train_accuracy", float(model.score(features, labels)))
                info = mlflow.sklearn.log_model(model, name="model", pip_requirements=["scikit-learn"])
                source = info.model_uri
            else:  # no training (the tests): still files to hash, so INT-003 has something to verify
                mlflow.log_text("artifact_path: model\nflavors: {}\n", "model/MLmodel")
                mlflow.log_text(f"untrained weights of {spec.name}\n", "model/weights.txt")
                source = f"runs:/{run_id}/model"
        if spec.run_status != "FINISHED":
            client.set_terminated(run_id, status=spec.run_status)
    else:
        source = "s3://example-corp-models/unknown/model.pkl"

    if source.startswith("models:/m-"):  # a LoggedModel (MLflow 3): register it the way users do
        mv = mlflow.register_model(source, spec.name)
        client.update_model_version(spec.name, mv.version, description=spec.description)
    else:
        mv = client.create_model_version(
            spec.name, source=source, run_id=run_id, description=spec.description
        )
    approvals = _approvals_tag(spec, datetime.now(UTC))
    if approvals is not None:
        client.set_model_version_tag(spec.name, mv.version, "approvals", approvals)
    if spec.alias:
        client.set_registered_model_alias(spec.name, spec.alias, mv.version)
    return str(mv.version)
