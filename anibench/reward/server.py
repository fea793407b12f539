"""``anibench reward serve``: the reward service over HTTP (FastAPI on uvicorn).

Endpoints (schema: ``GET /openapi.json``):

* ``GET /healthz`` — no authentication (for load balancers and liveness probes); says only
  ``{"status": "ok", "pending": n}``: nothing about the models or the configuration.
* ``GET /v1/info`` — scorers, reward definition, provenance (versions, identities, weights'
  sha256, device, dtype), limits and accepted formats.
* ``POST /v1/score`` — a batch of items, as JSON (``application/json``, base64 blobs) or as
  the binary container (``application/vnd.anibench.reward+binary``: a small JSON header and
  raw uint8 frames / mp4 bytes in one body; see :mod:`anibench.reward.payload`). Returns,
  per item, every scorer's value or error and the reward; one bad item never fails the
  others. ``?details=true`` adds each scorer's details.
* ``POST /get_reward`` — OpenRLHF's remote reward contract (``--remote_rm_url``): JSON
  ``{"query": [...], "prompts": [...], "labels": [...], "videos": [BLOB], "guides": [[BLOB]]}``
  → ``{"rewards": [...], "scores": [...], "extra_logs": {scorer: [...], "failed": [...]}}``;
  an item that cannot be scored gets ``failed_reward`` (default 0.0) and its message in
  ``"errors"``.

Security: binds 127.0.0.1 by default; a bearer token from ``$ANIBENCH_REWARD_TOKEN`` is
required on every endpoint but ``/healthz`` and ``/openapi.json`` (compared in constant
time, never logged); the server refuses to start on a non-loopback address without one.
Request bodies are JSON or the binary container — never unpickled (verl-omni's stock HTTP
scorer protocol pickles; use :func:`anibench.reward.integrations.compute_score` instead).

Limits (:class:`~anibench.reward.payload.Limits`): body bytes (``Content-Length`` checked
before reading, streamed bytes counted), items per request, frames per clip, pixels per
frame, guides per item — raw frames are checked from the header before any pixel is
touched (413), encoded clips from their container metadata before decoding (a per-item
error). Errors are JSON ``{"error": message, "status": code, "request_id": id}``: 401
(token), 413 (too large), 422 (malformed), 429 (queue full; ``Retry-After``), 503
(shutting down), 504 (scoring timed out).

Concurrency: requests are parsed in worker threads and queued to one
:class:`~anibench.reward.service.Batcher`, which scores whatever is waiting in one batch
(models are shared, never used from two threads at once); a malformed or failing request
fails alone and the server keeps serving the others.
"""

import asyncio
import contextlib
import hmac
import ipaddress
import json
import logging
import os
import re
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

from anibench.errors import AnibenchError, InputError
from anibench.reward.payload import BINARY_CONTENT_TYPE, Limits, PayloadError, decode_binary, decode_json

TOKEN_ENV = "ANIBENCH_REWARD_TOKEN"
_REQUEST_ID_CHARS = re.compile(r"[^A-Za-z0-9._:-]")  # echoed in headers and logs: nothing else
_TOKEN_SYNTAX = re.compile(r"[A-Za-z0-9._~+/-]+=*")  # RFC 6750 b64token: what a header can carry
REQUEST_ID_HEADER = "X-Request-ID"
DRAIN_SLACK = 64 * 1024 * 1024  # an oversized body up to this much beyond the limit is read and dropped,
# so the client sees the 413 instead of a reset connection
log = logging.getLogger("anibench.reward.server")


@dataclass
class ServerConfig:
    """How the server runs: address, token (None: no auth, loopback only), limits, queue, options."""

    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None
    limits: Limits = field(default_factory=Limits)
    max_pending: int = 64
    allowed_roots: Sequence[Path] = ()
    failed_reward: float = 0.0
    score_timeout_s: float = 600.0

    def check(self) -> None:
        if self.token is not None and not self.token.strip():
            raise InputError(f"${TOKEN_ENV} is set but empty; give a token or unset it")
        if self.token is not None and not _TOKEN_SYNTAX.fullmatch(self.token):
            raise InputError(f"${TOKEN_ENV} must be a bearer token of ASCII letters, digits and -._~+/ (then = "
                             "padding), e.g. from `python -c 'import secrets; print(secrets.token_urlsafe(32))'`")
        if self.token is None and not is_loopback(self.host):
            raise InputError(
                f"refusing to serve on {self.host} without authentication: set ${TOKEN_ENV} to a secret token "
                "(clients send it as 'Authorization: Bearer …'), or bind 127.0.0.1"
            )


def is_loopback(host: str) -> bool:
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class HTTPError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def create_app(service: Any, config: ServerConfig | None = None) -> Any:
    """The FastAPI application serving ``service`` (a :class:`~anibench.reward.service.RewardService`)."""
    from fastapi import Depends, FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.openapi.utils import get_openapi
    from fastapi.responses import JSONResponse
    from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from anibench.reward.service import Batcher, Busy

    config = config or ServerConfig()
    config.check()
    limits = config.limits
    if getattr(service, "limits", None) is None:
        service.limits = limits
    batcher = Batcher(service, max_items=limits.max_batch, max_pending=config.max_pending)
    state = {"closing": False}
    expected = config.token.encode() if config.token else None
    bearer = HTTPBearer(auto_error=False, description=f"the token in ${TOKEN_ENV} on the server")

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        yield
        state["closing"] = True
        await run_in_threadpool(batcher.close)

    app = FastAPI(title="anibench reward service", version="1",
                  description=(__doc__ or "").split("Security:")[0].strip(),
                  # the docs pages load scripts from a CDN: off; /openapi.json is served
                  docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.batcher = batcher
    app.state.service = service

    def authorised(credentials: Optional[HTTPAuthorizationCredentials] = Depends(bearer)) -> None:
        if expected is None:
            return
        given = credentials.credentials.encode() if credentials is not None else b""
        # compare_digest on equal-length digests: constant time whatever the token's length
        if credentials is None or not hmac.compare_digest(_digest(given), _digest(expected)):
            raise HTTPError(401, "missing or wrong bearer token (send 'Authorization: Bearer <token>')",
                            {"WWW-Authenticate": "Bearer"})

    def request_id_of(request: Request, fallback: str | None = None) -> str:
        rid = _REQUEST_ID_CHARS.sub("", request.headers.get(REQUEST_ID_HEADER) or fallback or "")[:128]
        return rid or uuid.uuid4().hex

    def error_response(status: int, message: str, request: Request, headers: dict[str, str] | None = None):
        rid = request_id_of(request)
        return JSONResponse({"error": message, "status": status, "request_id": rid}, status_code=status,
                            headers={**(headers or {}), REQUEST_ID_HEADER: rid})

    @app.exception_handler(HTTPError)
    async def _http_error(request: Request, exc: HTTPError):
        return error_response(exc.status, exc.message, request, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _starlette_error(request: Request, exc: StarletteHTTPException):
        return error_response(exc.status_code, str(exc.detail), request, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        return error_response(422, f"invalid request: {exc.errors()}", request)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("request %s failed", request_id_of(request))
        return error_response(500, f"internal error: {type(exc).__name__}: {exc}", request)

    async def read_body(request: Request) -> bytearray:
        limit = limits.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                raise HTTPError(400, "invalid Content-Length")
            if int(declared) > limit:
                if int(declared) <= limit + DRAIN_SLACK:
                    async for _ in request.stream():
                        pass
                raise HTTPError(413, f"request body of {int(declared)} bytes exceeds the limit of {limit} bytes")
        body = bytearray()
        received = 0
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit + DRAIN_SLACK:
                break
            if received <= limit:
                body += chunk
        if received > limit:
            raise HTTPError(413, f"request body exceeds the limit of {limit} bytes")
        return body  # a bytearray: frames are views of it, never copied again

    def parse(body: bytearray, content_type: str):
        kind = content_type.split(";")[0].strip().lower()
        try:
            if kind == BINARY_CONTENT_TYPE:
                return decode_binary(body, limits)
            if kind in ("application/json", ""):
                try:
                    document = json.loads(body)
                except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                    raise PayloadError(f"body is not valid JSON ({exc})") from None
                return decode_json(document, limits, allowed_roots=list(config.allowed_roots))
        except PayloadError as exc:
            raise HTTPError(exc.status, exc.message) from None
        raise HTTPError(415, f"unsupported Content-Type {kind!r}; send application/json or {BINARY_CONTENT_TYPE}")

    async def run_batch(items, scorers, details: bool):
        if state["closing"]:
            raise HTTPError(503, "the server is shutting down", {"Retry-After": "5"})
        try:
            future = batcher.submit(items, scorers=scorers, details=details)
        except Busy as exc:
            raise HTTPError(429, f"too many requests waiting ({exc}); retry later", {"Retry-After": "1"}) from None
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), timeout=config.score_timeout_s)
        except asyncio.TimeoutError:
            raise HTTPError(504, f"scoring took longer than {config.score_timeout_s:g} s") from None
        except InputError as exc:
            raise HTTPError(422, str(exc)) from None

    @app.get("/healthz", tags=["service"], summary="Liveness (no authentication)")
    async def healthz():
        return {"status": "closing" if state["closing"] else "ok", "pending": batcher.pending}

    @app.get("/v1/info", tags=["service"], dependencies=[Depends(authorised)],
             summary="Scorers, reward definition, provenance, limits and formats")
    async def info():
        provenance = await run_in_threadpool(service.provenance)
        return {"scorers": service.scorer_names, "reward": service.reward_source, "provenance": provenance,
                "provenance_id": service.provenance_id(), "limits": limits.describe(),
                "formats": ["application/json", BINARY_CONTENT_TYPE], "auth": expected is not None,
                "paths_allowed": bool(config.allowed_roots)}

    @app.post("/v1/score", tags=["scoring"], dependencies=[Depends(authorised)],
              summary="Score a batch of clips (JSON with base64 blobs, or the binary container)",
              responses={200: {"model": ScoreResponse}, **ERRORS},
              openapi_extra=score_request_body())
    async def score(request: Request, details: bool = False):
        started = time.perf_counter()
        body = await read_body(request)
        parsed = await run_in_threadpool(parse, body, request.headers.get("content-type", ""))
        rid = request_id_of(request, parsed.request_id)
        batch = await run_batch(parsed.items, parsed.scorers, details)
        out = batch.to_json()
        out["request_id"] = rid
        log.info("request %s: %d item(s), %d ok, %.3f s", rid, len(batch.items),
                 sum(r.ok for r in batch.items), time.perf_counter() - started)
        return JSONResponse(out, headers={REQUEST_ID_HEADER: rid})

    @app.post("/get_reward", tags=["scoring"], dependencies=[Depends(authorised)],
              summary="OpenRLHF remote reward contract",
              responses={200: {"model": GetRewardResponse}, **ERRORS},
              openapi_extra=get_reward_request_body())
    async def get_reward(request: Request):
        body = await read_body(request)

        def parse_openrlhf():
            try:
                document = json.loads(body)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise HTTPError(422, f"body is not valid JSON ({exc})") from None
            try:
                return decode_json(openrlhf_request(document), limits, allowed_roots=list(config.allowed_roots))
            except PayloadError as exc:
                raise HTTPError(exc.status, exc.message) from None

        parsed = await run_in_threadpool(parse_openrlhf)
        rid = request_id_of(request)
        batch = await run_batch(parsed.items, None, False)
        failed = config.failed_reward
        rewards = [failed if r.reward is None else r.reward for r in batch.items]
        extra: dict[str, list[float]] = {}
        for name in service.scorer_names:
            extra[name] = [float(r.scores[name]) if r.scores.get(name) is not None else failed for r in batch.items]
        extra["failed"] = [0.0 if r.ok else 1.0 for r in batch.items]
        errors = [None if r.ok else _item_message(r) for r in batch.items]
        return JSONResponse({"rewards": rewards, "scores": rewards, "extra_logs": extra, "errors": errors,
                             "provenance_id": batch.provenance_id, "request_id": rid},
                            headers={REQUEST_ID_HEADER: rid})

    def custom_openapi():
        if app.openapi_schema:
            return app.openapi_schema
        document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        document.setdefault("components", {}).setdefault("schemas", {}).update(component_schemas())
        app.openapi_schema = document
        return document

    app.openapi = custom_openapi

    return app


def _digest(value: bytes) -> bytes:
    import hashlib

    return hashlib.sha256(value).digest()


def _item_message(result: Any) -> str:
    if result.error:
        return f"{result.error['type']}: {result.error['message']}"
    return "; ".join(f"{name}: {e['message']}" for name, e in result.errors.items()) or "no reward"


def openrlhf_request(document: Any) -> dict[str, Any]:
    """OpenRLHF's ``{"query", "prompts", "labels"}`` plus ``videos`` (and ``guides``, ``fps``) → a score request."""
    if not isinstance(document, dict):
        raise PayloadError("the body must be a JSON object with 'videos' (and 'query'/'prompts')")
    videos = document.get("videos")
    if not isinstance(videos, list) or not videos:
        raise PayloadError("'videos' must be a non-empty list of clips (base64 'data' blobs); OpenRLHF's text-only "
                           "'query' cannot be scored by a video reward")
    n = len(videos)
    prompts = document.get("prompts")
    queries = document.get("query")
    texts = prompts if prompts is not None else queries
    if texts is None:
        texts = [""] * n
    if not isinstance(texts, list) or len(texts) != n:
        raise PayloadError(f"'prompts' (or 'query') must be a list of {n} strings, one per video")
    guides = document.get("guides") or [None] * n
    if not isinstance(guides, list) or len(guides) != n:
        raise PayloadError(f"'guides' must be a list of {n} entries (a list of images, or null), one per video")
    fps = document.get("fps")
    fps_list = fps if isinstance(fps, list) else [fps] * n
    if len(fps_list) != n:
        raise PayloadError(f"'fps' must be one number or a list of {n}")
    items = []
    for i in range(n):
        item: dict[str, Any] = {"video": videos[i], "prompt": texts[i], "id": f"item{i}"}
        if fps_list[i] is not None:
            item["fps"] = fps_list[i]
        g = guides[i]
        if g is not None:
            item["guides"] = [x if isinstance(x, dict) and "image" in x else {"image": x} for x in
                              (g if isinstance(g, list) else [g])]
        items.append(item)
    return {"items": items}


# -- running -------------------------------------------------------------------------------------
def _uvicorn_config(app: Any, host: str, port: int, log_level: str = "info", access_log: bool = True) -> Any:
    import uvicorn

    return uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=access_log,
                          timeout_keep_alive=30, proxy_headers=False, server_header=False, lifespan="on")


def serve(service: Any, config: ServerConfig, *, log_level: str = "info") -> None:
    """Run the server in the foreground until interrupted."""
    import uvicorn

    config.check()
    if not logging.getLogger().handlers:
        logging.basicConfig(level=log_level.upper(), format="%(levelname)s:     %(name)s: %(message)s")
    app = create_app(service, config)
    if config.token is None:
        log.warning("no $%s set: requests are not authenticated (loopback only)", TOKEN_ENV)
    uvicorn.Server(_uvicorn_config(app, config.host, config.port, log_level)).run()


class RunningServer:
    """A server in a background thread (tests, benchmarks, notebooks): ``url``, :meth:`stop`."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning"):
        import uvicorn

        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on such sockets' connections, and
        # without it a response's body waits ~40 ms behind its headers (Nagle + delayed ACK)
        self._socket = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.port = self._socket.getsockname()[1]
        self.url = f"http://{host if family == socket.AF_INET else f'[{host}]'}:{self.port}"
        self.server = uvicorn.Server(_uvicorn_config(app, host, self.port, log_level, access_log=False))
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self._socket]},
                                        name="anibench-reward-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise AnibenchError("the reward server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=30)
        self._socket.close()

    def __enter__(self) -> "RunningServer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def token_from_env() -> str | None:
    value = os.environ.get(TOKEN_ENV)
    return value if value is not None else None


# -- documented schema (OpenAPI) -------------------------------------------------------------------
from pydantic import BaseModel, Field  # noqa: E402  (core dependency; only the schema uses it)


class Blob(BaseModel):
    """A clip or guide image: raw uint8 pixels or encoded bytes, base64 in ``data`` (JSON) or
    addressed by ``offset``/``length`` in the binary container's data section; or a server-side ``path``."""

    format: str = Field("encoded", description="'raw' (uint8 pixels, give shape/layout) or 'encoded' "
                                               "(mp4/webm… for clips, PNG/JPEG… for images)")
    data: Optional[str] = Field(None, description="base64 bytes (JSON requests)")
    offset: Optional[int] = Field(None, description="start in the data section (binary container)")
    length: Optional[int] = Field(None, description="byte count in the data section (binary container)")
    shape: Optional[list[int]] = Field(None, description="raw: [T, H, W, 3] or [T, 3, H, W]; "
                                                         "images [H, W, 3] / [3, H, W]")
    layout: Optional[str] = Field(None, description="raw: THWC | TCHW (clips), HWC | CHW (images); default from shape")
    dtype: str = Field("uint8", description="raw pixels are uint8")
    path: Optional[str] = Field(None, description="a file under a folder the server allows (--allow-path)")


class Guide(BaseModel):
    image: Blob
    position: Optional[float] = Field(None, ge=0, le=1, description="where in the clip, 0 = first frame, 1 = last "
                                                                    "(default: 0 for one guide, spread for several)")


class Item(BaseModel):
    video: Blob
    prompt: str = ""
    fps: Optional[float] = Field(None, gt=0, description="frame rate of raw frames (default 16)")
    id: Optional[str] = None
    guides: list[Guide] = []


class ScoreRequest(BaseModel):
    items: list[Item]
    request_id: Optional[str] = None
    scorers: Optional[list[str]] = Field(None, description="a subset of the server's scorers (default: all)")


class ErrorInfo(BaseModel):
    type: str
    message: str


class ItemResultModel(BaseModel):
    id: str
    ok: bool
    reward: Optional[float] = Field(None, description="in [0, 1]; null when it could not be computed")
    scores: dict[str, Optional[float]]
    errors: dict[str, ErrorInfo]
    error: Optional[ErrorInfo] = Field(None, description="the item itself was unusable (no scorer ran)")
    details: Optional[dict[str, Any]] = None


class ScoreResponse(BaseModel):
    items: list[ItemResultModel]
    provenance_id: str = Field(description="short sha256 of GET /v1/info's provenance")
    seconds: float
    request_id: str


class GetRewardRequest(BaseModel):
    query: Optional[list[str]] = Field(None, description="OpenRLHF's texts; used as prompts when 'prompts' is absent")
    prompts: Optional[list[str]] = None
    labels: Optional[list[Any]] = Field(None, description="accepted, unused")
    videos: list[Blob]
    guides: Optional[list[Optional[list[Blob]]]] = None
    fps: Optional[Any] = Field(None, description="one number or one per video")


class GetRewardResponse(BaseModel):
    rewards: list[float]
    scores: list[float]
    extra_logs: dict[str, list[float]]
    errors: list[Optional[str]]
    provenance_id: str
    request_id: str


class ErrorResponse(BaseModel):
    error: str
    status: int
    request_id: str


ERRORS = {code: {"model": ErrorResponse, "description": text} for code, text in (
    (401, "missing or wrong bearer token"), (413, "body, batch, frames or pixels over the limits"),
    (415, "unsupported Content-Type"), (422, "malformed request"), (429, "queue full; retry after Retry-After"),
    (503, "shutting down"), (504, "scoring timed out"))}


def component_schemas() -> dict[str, Any]:
    from pydantic.json_schema import models_json_schema

    _, defs = models_json_schema([(m, "validation") for m in (ScoreRequest, GetRewardRequest)],
                                 ref_template="#/components/schemas/{model}")
    return defs.get("$defs", {})


def score_request_body() -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/ScoreRequest"}},
        BINARY_CONTENT_TYPE: {"schema": {"type": "string", "format": "binary",
                                         "description": "magic ANIBRW\\0\\1, uint32 LE header length, JSON header "
                                                        "(ScoreRequest with offset/length blobs), data section"}}}}}


def get_reward_request_body() -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/GetRewardRequest"}}}}}
