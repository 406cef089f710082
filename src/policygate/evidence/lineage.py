"""How the model was made: the training run, its code and its datasets."""

from __future__ import annotations

from pydantic import Field

from policygate.evidence.fields import Part


class Experiment(Part):
    """Experiment the run belongs to."""

    id: str | None = Field(default=None, description="Experiment id.")
    name: str | None = Field(default=None, description="Experiment name.")


class Run(Part):
    """The training run (MLflow) or job (Azure ML) that produced the model."""

    platform: str = Field(description="Platform of the run/job.")
    id: str = Field(min_length=1, description="Run id (MLflow) or job name (Azure ML).")
    status: str | None = Field(default=None, description="Terminal status, e.g. FINISHED, Completed, FAILED.")
    experiment: Experiment | None = None
    user: str | None = Field(default=None, description="Author of the run/job.")
    start: str | None = Field(default=None, description="ISO-8601 start time.")
    end: str | None = Field(default=None, description="ISO-8601 end time.")
    environment: str | None = Field(
        default=None, description="Environment the job ran in (Azure ML), e.g. sklearn:4."
    )
    compute: str | None = Field(default=None, description="Compute target the job ran on (Azure ML).")


class Code(Part):
    """Code version the model was trained from."""

    commit: str | None = Field(default=None, description="Source commit the run was built from.")
    repository: str | None = Field(default=None, description="Source repository URL.")
    entry_point: str | None = Field(default=None, description="Script or notebook that trained the model.")


class Dataset(Part):
    """A dataset input of the training run."""

    name: str = Field(description="Dataset or data asset name.")
    digest: str | None = Field(default=None, description="Content digest of the dataset.")
    version: str | None = Field(default=None, description="Data asset version (Azure ML).")
    source: str | None = Field(default=None, description="Where the data lives (URI).")
    context: str | None = Field(default=None, description="training, validation, evaluation, ...")


class Lineage(Part):
    """How the model was made."""

    run: Run | None = Field(default=None, description="Training run/job; null when not traceable.")
    code: Code = Field(default_factory=Code, description="Code version the run was built from.")
    datasets: list[Dataset] = Field(default_factory=list, description="Dataset inputs of the run.")
