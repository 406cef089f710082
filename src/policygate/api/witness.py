"""The witness's HTTP face (``policygate witness``): ``POST /add-checkpoint`` (C2SP tlog-witness, see
policygate.decisions.witness) and ``GET /healthz``. It holds no decision log and no service key."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from policygate.decisions.witness import Witness
from policygate.version import __version__

MAX_REQUEST_BYTES = 256 * 1024 * 1024  # the records since the last checkpoint (every 1000 by default)


def create_witness_app(witness: Witness) -> FastAPI:
    app = FastAPI(title="policygate witness", version=__version__, docs_url=None, redoc_url=None)

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok", "name": witness.name})

    @app.post("/add-checkpoint")
    async def add_checkpoint(request: Request) -> Response:
        size = request.headers.get("content-length")
        if size is None or not size.isdigit() or int(size) > MAX_REQUEST_BYTES:
            return PlainTextResponse("a Content-Length of at most 256 MiB is required\n", status_code=411)
        try:
            text = (await request.body()).decode()
        except UnicodeDecodeError:
            return PlainTextResponse("the request is not UTF-8\n", status_code=400)
        answer = witness.add_checkpoint(text)
        return Response(answer.body, status_code=answer.status, media_type=answer.content_type)

    return app
