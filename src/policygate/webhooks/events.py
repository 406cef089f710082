"""Turn platform events into jobs: MLflow registry webhooks and Azure ML Event Grid events.

Pure functions: no I/O, so every event shape is unit-tested without a server.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from policygate.errors import InputError
from policygate.refs import RefError, parse
from policygate.webhooks.worker import Job

MLFLOW_REQUESTER = "mlflow-webhook"
EVENTGRID_REQUESTER = "azure-eventgrid"
VALIDATION_EVENT = "Microsoft.EventGrid.SubscriptionValidationEvent"
MODEL_REGISTERED = "Microsoft.MachineLearningServices.ModelRegistered"
MODEL_DEPLOYED = "Microsoft.MachineLearningServices.ModelDeployed"

_WORKSPACE_TOPIC = re.compile(
    r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/"
    r"Microsoft\.MachineLearningServices/workspaces/(?P<ws>[^/]+)",
    re.IGNORECASE,
)


class EventError(InputError):
    """An event that cannot be understood (HTTP 400)."""


def mlflow_job(
    delivery_id: str, payload: Any, alias_stages: Mapping[str, str], default_target: str | None
) -> Job | None:
    """A job for alias.created / model_version.created; None for events policygate does not act on."""
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), dict):
        raise EventError("body must be an MLflow webhook payload: {entity, action, data: {...}}")
    entity, action, data = payload.get("entity"), payload.get("action"), payload["data"]
    name, version = data.get("name"), data.get("version")
    if entity == "model_version_alias" and action == "created":
        stage = alias_stages.get(str(data.get("alias", "")).lower())
        alias = str(data.get("alias"))
    elif entity == "model_version" and action == "created":
        stage, alias = default_target, None
    else:
        return None
    if stage is None:
        return None
    ref = _model_ref(f"mlflow:models:/{name}/{version}")
    return Job(f"mlflow:{delivery_id}", "mlflow", f"{entity}.{action}", ref, stage, MLFLOW_REQUESTER, alias)


def mlflow_example(payload: Any) -> bool:
    """The body is exactly the example MLflow's ``test_webhook`` sends for its event.

    MLflow marks a test delivery no other way (same headers, same signature, a fresh delivery id):
    only its fixed example data (``example_model``, version 1, source ``models:/123``, ...) tells it.
    The route also asks the registry that no such model exists before answering "test"."""
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), dict):
        return False
    try:
        from mlflow.entities.webhook import WebhookEvent
        from mlflow.webhooks.types import get_example_payload_for_event

        event = WebhookEvent.from_str(f"{payload.get('entity')}.{payload.get('action')}")  # type: ignore[arg-type]
        example = get_example_payload_for_event(event)
    except Exception:  # noqa: BLE001 - an event MLflow has no example for is no test delivery
        return False
    return payload["data"] == dict(example)


def _model_ref(text: str) -> str:
    try:
        return str(parse(text))
    except RefError as exc:
        raise EventError(f"event names no valid model: {exc}") from None


def eventgrid_events(body: Any) -> list[dict[str, Any]]:
    """Event Grid schema (a JSON array) or CloudEvents 1.0 (one object or a batch array)."""
    events = body if isinstance(body, list) else [body]
    if not events or not all(isinstance(e, dict) for e in events):
        raise EventError("body must be an Event Grid event array or a CloudEvents object")
    return [_normalise(e) for e in events]


def _normalise(event: dict[str, Any]) -> dict[str, Any]:
    if "specversion" in event:  # CloudEvents: type, source (topic), subject, id, data
        return {
            "id": event.get("id"),
            "type": event.get("type"),
            "topic": event.get("source"),
            "data": event.get("data"),
        }
    return {
        "id": event.get("id"),
        "type": event.get("eventType"),
        "topic": event.get("topic"),
        "data": event.get("data"),
    }


def validation_code(events: list[dict[str, Any]]) -> str | None:
    for event in events:
        if event["type"] == VALIDATION_EVENT and isinstance(event.get("data"), dict):
            code = event["data"].get("validationCode")
            if isinstance(code, str):
                return code
    return None


def eventgrid_jobs(
    events: list[dict[str, Any]], registered_target: str | None, deployed_target: str | None
) -> list[Job]:
    jobs: list[Job] = []
    for event in events:
        kind, data, event_id = event["type"], event.get("data"), event.get("id")
        if kind not in (MODEL_REGISTERED, MODEL_DEPLOYED):
            continue
        if not isinstance(data, dict) or not event_id:
            raise EventError(f"{kind} event without id or data")
        workspace = _WORKSPACE_TOPIC.search(str(event.get("topic") or ""))
        if kind == MODEL_REGISTERED and registered_target:
            models = [(data.get("modelName"), data.get("modelVersion"))]
            target = registered_target
        elif kind == MODEL_DEPLOYED and deployed_target:
            ids = str(data.get("modelIds") or "")
            models = [tuple(m.strip().rsplit(":", 1)) for m in ids.split(",") if ":" in m]  # type: ignore[misc]
            target = deployed_target
        else:
            continue
        for n, (name, version) in enumerate(models):
            ref = _azure_ref(str(name), str(version), workspace)
            key = f"eventgrid:{event_id}" + (f":{n}" if n else "")
            jobs.append(Job(key, "eventgrid", kind.rsplit(".", 1)[-1], ref, target, EVENTGRID_REQUESTER))
    return jobs


def _azure_ref(name: str, version: str, workspace: re.Match[str] | None) -> str:
    if workspace is None:
        return _model_ref(f"azureml:{name}:{version}")
    return _model_ref(
        f"azureml://subscriptions/{workspace['sub']}/resourceGroups/{workspace['rg']}"
        f"/workspaces/{workspace['ws']}/models/{name}/versions/{version}"
    )
