"""Request-scoped access to the running service."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from policygate.decisions.service import DecisionService
from policygate.runtime import Runtime


def service_of(request: Request) -> DecisionService:
    service: DecisionService = request.app.state.service
    return service


async def _service(request: Request) -> DecisionService:  # async: no thread hop per request
    return service_of(request)


Service = Annotated[DecisionService, Depends(_service)]


async def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(_runtime)]
