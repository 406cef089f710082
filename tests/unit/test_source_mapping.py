"""What the Azure ML and MLflow SDKs answer -> evidence fields, without Azure or MLflow: the mapping
functions read plain objects, so the shapes the services send are written here as namespaces."""

from __future__ import annotations

import json
from types import SimpleNamespace as NS

from policygate.config.tags import TagMapping
from policygate.refs import ModelRef
from policygate.sources.azureml.foundry import model_deployments
from policygate.sources.azureml.mapping import (
    Workspace,
    auth_mode,
    deployment_of,
    iso,
    job_inputs,
    lineage_of,
    parts_of,
    principal_ids,
    serves,
)
from policygate.sources.mlflow import mapping as mlflow_mapping

WS = Workspace("00000000-0000-0000-0000-000000000001", "rg", "ws")
MODEL_ID = f"azureml:{WS.arm_id}/models/fraud/versions/3"


def test_times_become_utc_rfc3339_and_nonsense_is_none() -> None:
    assert iso("2026-01-02T03:04:05+02:00") == "2026-01-02T01:04:05Z"
    assert iso("2026-01-02T03:04:05") == "2026-01-02T03:04:05Z"
    assert iso("yesterday") is None
    assert iso(None) is None


def test_auth_modes_are_named_as_the_evidence_documents_them() -> None:
    assert auth_mode(NS(value="AADToken")) == "aad_token"
    assert auth_mode("AMLToken") == "aml_token"
    assert auth_mode("Key") == "key"
    assert auth_mode(None) is None


def test_a_job_gives_run_code_and_data_inputs() -> None:
    job = NS(
        name="job-1",
        status=NS(value="Completed"),
        experiment_name="fraud",
        creation_context=NS(created_by="ana@contoso.com", created_at="2026-01-01T00:00:00Z"),
        properties={"azureml.git.commit": "abc123", "mlflow.source.git.repoURL": "https://git/x"},
        environment="azureml:env:1",
        compute="cpu",
        command="python train.py",
        inputs={
            "train": NS(type="uri_folder", path="azureml:transactions:7"),
            "epochs": 5,
            "base": NS(type="mlflow_model", path="azureml:base:1"),
        },
    )
    lineage = lineage_of(job, [])
    assert lineage.run is not None and lineage.run.id == "job-1" and lineage.run.status == "Completed"
    assert lineage.run.user == "ana@contoso.com" and lineage.run.start == "2026-01-01T00:00:00Z"
    assert (lineage.code.commit, lineage.code.repository) == ("abc123", "https://git/x")
    assert lineage.code.entry_point == "python train.py"
    [(key, context, asset)] = job_inputs(job)
    assert (key, context, asset.name, asset.version) == ("train", "training", "transactions", "7")
    assert lineage_of(None, []).run is None


def test_a_deployment_serves_the_version_only_in_its_workspace() -> None:
    deployed = NS(model=MODEL_ID)
    assert serves(deployed, "FRAUD", "3", WS, None)
    assert not serves(deployed, "fraud", "4", WS, None)
    assert not serves(deployed, "fraud", "3", Workspace(WS.subscription, "rg", "other"), None)
    assert not serves(NS(model=NS(id=None)), "fraud", "3", WS, None)  # an inline model


def test_the_most_exposed_serving_endpoint_is_the_evidence() -> None:
    identity = NS(type="SystemAssigned", principal_id="p-1", user_assigned_identities=[])
    private = NS(name="a", auth_mode="AADToken", public_network_access="Disabled", identity=identity)
    public = NS(name="b", auth_mode="Key", public_network_access="Enabled", identity=None)
    egress = [NS(egress_public_network_access="Disabled")]
    deployment, gaps = deployment_of([(private, egress), (public, egress)], [])
    assert deployment.endpoint is not None
    assert (deployment.endpoint.name, deployment.endpoint.auth_mode) == ("b", "key")
    assert deployment.endpoint.egress_public_network_access == "disabled"
    assert gaps == ["deployment.identity"]
    assert principal_ids(identity) == (["p-1"], True)
    assert principal_ids(NS(type="SystemAssigned", principal_id=None)) == ([], False)


def test_ownership_and_approvals_come_from_tags_then_properties() -> None:
    approvals = json.dumps([{"by": "bo@contoso.com", "stage": "Production", "at": "2026-01-01T00:00:00Z"}])
    model = NS(
        version="3",
        tags={"owner": "ana@contoso.com", "risk_tier": "HIGH"},
        properties={"approvals": approvals, "use_case": "fraud"},
        creation_context=NS(created_at="2026-01-01T00:00:00Z", created_by="ana"),
    )
    parts = parts_of(TagMapping(), ModelRef("azureml", "fraud", version="3"), WS, None, "w", model, None, [])
    assert parts.subject.ref.startswith("azureml://subscriptions/")
    assert (parts.ownership.owner, parts.ownership.risk_tier, parts.ownership.use_case) == (
        "ana@contoso.com",
        "high",
        "fraud",
    )
    assert [(a.by, a.stage, a.source) for a in parts.approvals] == [
        ("bo@contoso.com", "production", "azureml:model-version-property")
    ]
    assert "lineage.run" in parts.gaps


def test_foundry_deployments_of_the_version_only() -> None:
    listed = [
        NS(
            name="z",
            model_name="GPT-4o",
            model_version="1",
            model_publisher="OpenAI",
            sku=NS(name="S", capacity=5),
        ),
        NS(
            name="a",
            model_name="gpt-4o",
            model_version="1",
            model_publisher=None,
            sku=NS(name=None, capacity=True),
        ),
        NS(name="other", model_name="gpt-4o", model_version="2", model_publisher=None, sku=None),
    ]
    found = model_deployments(listed, "gpt-4o", "1", "https://p")
    assert [(m.name, m.sku, m.capacity) for m in found] == [("a", None, None), ("z", "S", 5)]


def test_an_mlflow_run_gives_lineage_with_its_datasets() -> None:
    run = NS(
        info=NS(run_id="r1", status="FINISHED", experiment_id="7", user_id="", start_time=1, end_time=None),
        data=NS(tags={"mlflow.user": "ana", "mlflow.source.git.commit": "abc"}),
        inputs=NS(
            dataset_inputs=[
                NS(
                    dataset=NS(name="tx", digest="d1", source=json.dumps({"uri": "s3://b/tx"})),
                    tags=[NS(key="mlflow.data.context", value="training")],
                )
            ]
        ),
    )
    lineage = mlflow_mapping.lineage_of(run, NS(name="fraud"))
    assert lineage.run is not None and lineage.run.user == "ana" and lineage.run.experiment.name == "fraud"
    assert lineage.code.commit == "abc"
    assert [(d.name, d.source, d.context) for d in lineage.datasets] == [("tx", "s3://b/tx", "training")]
    assert mlflow_mapping.dataset_uri("not json") == "not json"
    assert mlflow_mapping.logged_model_id("models:/m-123/x") == "m-123"
    assert mlflow_mapping.logged_model_id("runs:/r1/model") is None
