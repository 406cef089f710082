"""``POLICYGATE_LINKS__*``: the tags linking a model version to its counterpart on the other platform
(policygate.sources.collect follows them)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class CounterpartLinks(BaseModel):
    """Tag on the primary version naming its counterpart on another platform; empty disables the link."""

    azureml: str = Field(
        default="azureml.model",
        description="Tag on an MLflow version holding its Azure ML model reference (azureml:NAME:VERSION).",
    )
    mlflow: str = Field(
        default="mlflow.model",
        description="Tag on an Azure ML model version holding its MLflow reference (mlflow:models:/NAME/V).",
    )

    def tag_for(self, platform: str) -> str:
        return str(getattr(self, platform, "") or "")
