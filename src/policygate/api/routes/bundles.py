"""``GET /v1/bundles/policygate.tar.gz``: the current policies as a signed OPA bundle, for OPA sidecars
that pull it (``services``/``bundles`` in OPA's configuration; docs/deploy.md).

Built on first request per policy revision (the same checks as any load first), signed with
POLICYGATE_BUNDLE_SIGNING_KEY; an unsigned bundle is never served. The ETag is the revision, so an
OPA polling with ``If-None-Match`` gets 304 until the policy changes.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response

from policygate.config import Settings
from policygate.engine.errors import EngineError
from policygate.runtime.serve import BundleCache

router = APIRouter(prefix="/v1", tags=["bundles"])
NAME = "policygate.tar.gz"


@router.get(f"/bundles/{NAME}", responses={200: {"content": {"application/gzip": {}}}, 304: {}, 503: {}})
async def bundle(request: Request) -> Response:
    """The policy directory's policies and parameters as a signed bundle (ETag: their revision).

    The revision is the directory's, not the local OPA's: OPA sidecars that pull from here may be the
    only OPAs there are, and they start empty (docs/deploy.md)."""
    settings: Settings = request.app.state.settings
    if settings.bundle_signing_key is None:
        raise HTTPException(
            status_code=503, detail="no POLICYGATE_BUNDLE_SIGNING_KEY: an unsigned bundle is never served"
        )
    try:
        revision = await run_in_threadpool(directory_revision, settings.policy_path)
    except (OSError, ValueError) as exc:
        raise HTTPException(status_code=503, detail=f"cannot read the policy directory: {exc}") from None
    etag = f'"{revision}"'
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers={"ETag": etag})
    cache: BundleCache = request.app.state.bundles
    try:
        path = await run_in_threadpool(cache.get, settings, revision)
    except EngineError as exc:
        raise HTTPException(status_code=503, detail=exc.message, headers={"Retry-After": "5"}) from None
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    return FileResponse(path, media_type="application/gzip", headers=headers)


def directory_revision(policy_dir: Path) -> str:
    """The policy revision of the files as they are now (milliseconds: a read and a digest)."""
    from policygate.policy.files import revision_of_dir

    return revision_of_dir(policy_dir)
