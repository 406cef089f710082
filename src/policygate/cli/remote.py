"""Ask a running policygate: for a decision (so CI decisions land in one central log), whether one
still stands, or to record an approval in the authenticated caller's name."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import requests
from pydantic import ValidationError

from policygate.decisions.decision import Decision
from policygate.errors import PolicygateError
from policygate.evidence import Change, Target


class RemoteError(PolicygateError):
    pass


def remote_decide(
    server: str,
    ref: str,
    target: Target,
    requested_by: str | None,
    token: str | None,
    timeout_s: float = 30.0,
    change: Change | None = None,
) -> Decision:
    url = server.rstrip("/") + "/v1/decisions"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = {"model": ref, "target": target.model_dump(mode="json"), "requested_by": requested_by}
    body |= (change or Change()).fields()  # only what was named: an older server refuses unknown fields
    try:
        resp = requests.post(url, json=body, headers=headers, timeout=timeout_s)
    except requests.RequestException as exc:
        raise RemoteError(f"policygate server {server} unreachable ({type(exc).__name__})") from None
    if resp.status_code != 200:
        try:
            detail = resp.json().get("message") or resp.json().get("detail")
        except ValueError:
            detail = resp.text[:200]
        raise RemoteError(f"policygate server {server} answered HTTP {resp.status_code}: {detail}")
    try:
        return Decision.model_validate_json(resp.content)
    except ValidationError as exc:
        raise RemoteError(
            f"policygate server {server} answered something that is not a decision: {exc}"
        ) from None


def not_standing(server: str, decision_id: str, token: str | None, timeout_s: float = 30.0) -> str | None:
    """Ask a running policygate whether a decision still stands: None if it does, else why not."""
    url = f"{server.rstrip('/')}/v1/decisions/{quote(decision_id, safe='')}/standing"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        resp = requests.get(url, headers=headers, timeout=timeout_s)
    except requests.RequestException as exc:
        raise RemoteError(f"policygate server {server} unreachable ({type(exc).__name__})") from None
    if resp.status_code == 404:
        return f"policygate server {server} has no decision {decision_id!r}"
    try:
        answer = resp.json() if resp.status_code == 200 else None
    except ValueError:
        answer = None
    if not isinstance(answer, dict) or not isinstance(answer.get("standing"), bool):
        raise RemoteError(
            f"policygate server {server} answered HTTP {resp.status_code}, not whether it stands"
        )
    return None if answer["standing"] else str(answer.get("reason") or "the decision no longer stands")


def remote_approve(server: str, token: str, body: dict[str, Any], timeout_s: float = 30.0) -> dict[str, Any]:
    """Ask a running policygate to record an approval (``POST /v1/approvals``) as the identity behind
    ``token``; its answer (``approval``, ``mirrored``), or RemoteError naming why not."""
    try:
        resp = requests.post(
            f"{server.rstrip('/')}/v1/approvals",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout_s,
        )
    except requests.RequestException as exc:
        raise RemoteError(f"policygate server {server} unreachable ({type(exc).__name__})") from None
    if resp.status_code != 201:
        try:
            message = resp.json().get("message")
        except ValueError:
            message = resp.text[:200]
        raise RemoteError(f"approval refused (HTTP {resp.status_code}): {message}")
    answer: dict[str, Any] = resp.json()
    return answer


def remote_lifecycle(
    server: str, token: str, method: str, path: str, body: dict[str, Any], timeout_s: float = 30.0
) -> dict[str, Any]:
    """Ask a running policygate to record a lifecycle event (a review, a retirement or its undoing) as
    the identity behind ``token``: ``method`` on ``/v1/models/{ref}/{path}``; its answer (``event``,
    ``lifecycle``, ``written_back``), or RemoteError naming why not."""
    try:
        resp = requests.request(
            method,
            f"{server.rstrip('/')}/v1/models/{path}",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout_s,
        )
    except requests.RequestException as exc:
        raise RemoteError(f"policygate server {server} unreachable ({type(exc).__name__})") from None
    if resp.status_code not in (200, 201):
        try:
            message = resp.json().get("message") or resp.json().get("detail")
        except ValueError:
            message = resp.text[:200]
        raise RemoteError(f"refused (HTTP {resp.status_code}): {message}")
    answer: dict[str, Any] = resp.json()
    return answer
