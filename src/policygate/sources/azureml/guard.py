"""Every failure of an Azure SDK call named as a SourceError: what was asked, and Azure's status and
code, never a token. The SDK is imported only when a call is made (its import is slow)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, TypeVar

from policygate.sources.base import SourceError, first_line

PLATFORM: Literal["azureml"] = "azureml"
T = TypeVar("T")


def guard(what: str, fn: Callable[..., T], *args: Any) -> T:
    """Run one SDK call; every failure becomes a SourceError naming the call (never a token)."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ResourceNotFoundError,
        ServiceRequestError,
        ServiceResponseError,
    )

    try:
        return fn(*args)
    except ResourceNotFoundError as exc:
        raise SourceError(PLATFORM, what, f"not found ({describe(exc)})", not_found=True) from None
    except ClientAuthenticationError as exc:
        # Foundry projects answer a missing data action with 401 PermissionDenied
        code = getattr(getattr(exc, "error", None), "code", None)
        problem = "not authorised" if code == "PermissionDenied" else "not authenticated"
        raise SourceError(PLATFORM, what, f"{problem} ({describe(exc)})") from None
    except HttpResponseError as exc:
        status = exc.status_code or 0
        if status in (401, 403):
            raise SourceError(PLATFORM, what, f"not authorised ({describe(exc)})") from None
        if status == 429 or status >= 500:
            raise SourceError(PLATFORM, what, f"Azure answered an error ({describe(exc)})") from None
        raise SourceError(PLATFORM, what, f"request refused ({describe(exc)})") from None
    except (ServiceRequestError, ServiceResponseError) as exc:
        raise SourceError(
            PLATFORM, what, f"Azure unreachable or timed out ({type(exc).__name__}: {first_line(exc)})"
        ) from None
    except SourceError:
        raise
    except Exception as exc:  # noqa: BLE001 - the SDK could not make sense of an answer: fail closed, name it
        raise SourceError(
            PLATFORM, what, f"unexpected answer ({type(exc).__name__}: {first_line(exc)})"
        ) from None


def describe(exc: Any) -> str:
    status = getattr(exc, "status_code", None)
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None)
    message = getattr(error, "message", None) or getattr(exc, "reason", None) or first_line(exc)
    head = " ".join(str(x) for x in (status, code) if x)
    return f"{head}: {first_line(message)}" if head else first_line(message)
