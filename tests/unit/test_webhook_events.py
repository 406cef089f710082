"""Webhook signatures and event shapes, as MLflow and Event Grid send them."""

from __future__ import annotations

import time

import pytest

from policygate.config import DEFAULT_ALIAS_STAGES
from policygate.webhooks.events import (
    EventError,
    eventgrid_events,
    eventgrid_jobs,
    mlflow_example,
    mlflow_job,
    validation_code,
)
from policygate.webhooks.signatures import SignatureError, StaleDelivery, sign, verify

SECRET = "s3cret"
BODY = b'{"entity": "model_version_alias", "action": "created", "data": {"name": "fraud", "alias": "champion", "version": "3"}}'  # noqa: E501
TOPIC = (
    "/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/rg-ml"
    "/providers/Microsoft.MachineLearningServices/workspaces/ws1"
)


def test_valid_signature_passes() -> None:
    ts = str(int(time.time()))
    verify(SECRET, "d1", ts, sign(SECRET, "d1", ts, BODY), BODY)


@pytest.mark.parametrize(
    ("delivery", "signature_for"),
    [
        ("d1", lambda ts: sign("other-secret", "d1", ts, BODY)),  # wrong secret
        ("d1", lambda ts: sign(SECRET, "d2", ts, BODY)),  # signed for another delivery
        ("d1", lambda ts: sign(SECRET, "d1", ts, BODY + b" ")),  # body changed
        ("d1", lambda ts: ""),
        ("", lambda ts: sign(SECRET, "", ts, BODY)),
    ],
)
def test_forged_or_missing_signatures_are_refused(delivery: str, signature_for) -> None:  # type: ignore[no-untyped-def]
    ts = str(int(time.time()))
    with pytest.raises(SignatureError):
        verify(SECRET, delivery, ts, signature_for(ts), BODY)


@pytest.mark.parametrize("offset", [-301, 301, -3600])
def test_stale_or_future_timestamps_are_refused(offset: int) -> None:
    ts = str(int(time.time()) + offset)
    with pytest.raises(StaleDelivery):
        verify(SECRET, "d1", ts, sign(SECRET, "d1", ts, BODY), BODY)


def test_alias_created_maps_the_alias_to_a_stage() -> None:
    job = mlflow_job(
        "d1",
        {
            "entity": "model_version_alias",
            "action": "created",
            "data": {"name": "fraud", "alias": "Champion", "version": "3"},
        },
        DEFAULT_ALIAS_STAGES,
        None,
    )
    assert job is not None
    assert (job.ref, job.stage, job.alias, job.key) == (
        "mlflow:models:/fraud/3",
        "production",
        "Champion",
        "mlflow:d1",
    )


def test_unmapped_alias_other_events_and_version_created_without_default_are_ignored() -> None:
    data = {"name": "fraud", "alias": "experimental", "version": "3"}
    assert (
        mlflow_job("d", {"entity": "model_version_alias", "action": "created", "data": data}, {}, None)
        is None
    )
    tag = {"entity": "model_version_tag", "action": "set", "data": {"name": "f", "version": "1", "key": "k"}}
    assert mlflow_job("d", tag, DEFAULT_ALIAS_STAGES, "staging") is None
    created = {"entity": "model_version", "action": "created", "data": {"name": "fraud", "version": "4"}}
    assert mlflow_job("d", created, DEFAULT_ALIAS_STAGES, None) is None
    job = mlflow_job("d", created, DEFAULT_ALIAS_STAGES, "staging")
    assert job is not None and job.stage == "staging" and job.alias is None


@pytest.mark.parametrize(
    "payload",
    [
        [],
        {"entity": "model_version_alias"},
        {
            "entity": "model_version_alias",
            "action": "created",
            "data": {"name": "../x", "alias": "prod", "version": "1"},
        },
    ],
)
def test_malformed_mlflow_payloads_are_event_errors(payload: object) -> None:
    with pytest.raises(EventError):
        mlflow_job("d", payload, DEFAULT_ALIAS_STAGES, None)


def test_eventgrid_validation_handshake_code() -> None:
    events = eventgrid_events(
        [
            {
                "id": "1",
                "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
                "data": {"validationCode": "abc"},
            }
        ]
    )
    assert validation_code(events) == "abc"


def test_eventgrid_schema_model_deployed_names_every_model() -> None:
    events = eventgrid_events(
        [
            {
                "id": "e1",
                "topic": TOPIC,
                "subject": "endpoints/ep1",
                "eventType": "Microsoft.MachineLearningServices.ModelDeployed",
                "data": {"serviceName": "ep1", "modelIds": "fraud:3,churn:1"},
            }
        ]
    )
    jobs = eventgrid_jobs(events, None, "production")
    assert [(j.ref, j.stage) for j in jobs] == [
        (
            "azureml://subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/rg-ml"
            "/workspaces/ws1/models/fraud/versions/3",
            "production",
        ),
        (
            "azureml://subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/rg-ml"
            "/workspaces/ws1/models/churn/versions/1",
            "production",
        ),
    ]
    assert len({j.key for j in jobs}) == 2


def test_cloudevents_model_registered() -> None:
    events = eventgrid_events(
        {
            "specversion": "1.0",
            "id": "c1",
            "source": TOPIC,
            "type": "Microsoft.MachineLearningServices.ModelRegistered",
            "subject": "models/fraud:7",
            "data": {"modelName": "fraud", "modelVersion": "7"},
        }
    )
    assert eventgrid_jobs(events, None, "production") == []  # registered: ignored unless a target is set
    [job] = eventgrid_jobs(events, "staging", "production")
    assert (
        job.ref.endswith("/models/fraud/versions/7") and job.stage == "staging" and job.key == "eventgrid:c1"
    )


@pytest.mark.parametrize(
    "body", [[], "text", [1, 2], [{"eventType": "Microsoft.MachineLearningServices.ModelDeployed"}]]
)
def test_malformed_eventgrid_bodies_are_event_errors(body: object) -> None:
    with pytest.raises(EventError):
        eventgrid_jobs(eventgrid_events(body), "staging", "production")


def test_only_mlflow_s_exact_example_data_looks_like_a_test_delivery() -> None:
    """test_webhook sends the example of its event; anything else, even about example_model, is real."""
    from mlflow.entities.webhook import WebhookEvent
    from mlflow.webhooks.types import get_example_payload_for_event

    for name in ("model_version.created", "model_version_alias.created", "model_version_tag.set"):
        entity, action = name.split(".")
        data = dict(get_example_payload_for_event(WebhookEvent.from_str(name)))  # type: ignore[arg-type]
        assert mlflow_example({"entity": entity, "action": action, "data": data})
        assert not mlflow_example({"entity": entity, "action": action, "data": {**data, "version": "2"}})
        assert not mlflow_example({"entity": entity, "action": action, "data": {**data, "extra": 1}})
    example = dict(get_example_payload_for_event(WebhookEvent.from_str("model_version.created")))
    assert not mlflow_example({"entity": "model_version_alias", "action": "created", "data": example})
    assert not mlflow_example({"entity": "nothing", "action": "created", "data": example})
    assert not mlflow_example({"entity": "model_version", "action": "created", "data": "x"})
