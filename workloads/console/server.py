"""The console's HTTP server: the static page, and a token-protected JSON overview that a
background task refreshes every few seconds (so viewers do not multiply the API load)."""
from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from pathlib import Path

from fastapi import FastAPI, Header
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from .history import History
from .sources import Sources

STATIC = Path(__file__).with_name("static")
log = logging.getLogger(__name__)


def load_tokens(path: Path) -> list[str]:
    """Console tokens, one per line ('#' starts a comment); at least one is required."""
    tokens = [line.split("#", 1)[0].strip() for line in path.read_text().splitlines()]
    tokens = [t for t in tokens if t]
    if not tokens:
        raise ValueError(f"{path}: no token in the file")
    if any(len(t) < 16 for t in tokens):
        raise ValueError(f"{path}: tokens must be at least 16 characters")
    return tokens


def authorized(authorization: str | None, tokens: list[str]) -> bool:
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        return False
    # compare with every token, in constant time per token
    return any([hmac.compare_digest(given.encode(), t.encode()) for t in tokens])


def app(sources: Sources, tokens: list[str], refresh_s: float = 5.0) -> FastAPI:
    history = History()
    state: dict = {"snapshot": None}

    async def refresh_forever():
        while True:
            try:
                snapshot = await sources.snapshot()
                history.add(snapshot["slices"])
                state["snapshot"] = snapshot
            except Exception:  # keep serving the last snapshot
                log.exception("console refresh failed")
            await asyncio.sleep(refresh_s)

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        task = asyncio.create_task(refresh_forever())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await sources.close()

    api = FastAPI(title="medmec console", lifespan=lifespan, docs_url=None, redoc_url=None)

    @api.middleware("http")
    async def security_headers(request, call_next):
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'")
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    @api.get("/healthz")
    async def healthz():
        return {"status": "ok", "snapshot": state["snapshot"] is not None}

    @api.get("/api/overview")
    async def overview(authorization: str | None = Header(None)):
        if not authorized(authorization, tokens):
            return JSONResponse({"error": "unauthorized",
                                 "detail": "send the console token as 'Authorization: Bearer TOKEN'"},
                                status_code=401, headers={"WWW-Authenticate": "Bearer"})
        if state["snapshot"] is None:
            return JSONResponse({"error": "starting", "detail": "the first refresh is running"},
                                status_code=503, headers={"Retry-After": "1"})
        return JSONResponse({**state["snapshot"], "history": history.to_json(),
                             "refreshSeconds": refresh_s}, headers={"Cache-Control": "no-store"})

    @api.get("/")
    async def index():
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    api.mount("/static", StaticFiles(directory=STATIC), name="static")
    return api
