"""Python client of ``anibench reward serve`` (httpx2), for trainers on other machines.

Needs only numpy and httpx2 (no torch, no model code)::

    from anibench.reward.client import RewardClient

    with RewardClient("http://gpu-box:8000") as client:      # token from $ANIBENCH_REWARD_TOKEN
        out = client.score([{"video": frames_tchw, "fps": 16, "prompt": "a girl waves",
                             "guides": [first_frame]}])
        out["items"][0]["reward"], out["items"][0]["scores"]

Frames go in the binary container (:mod:`anibench.reward.payload`): raw uint8 pixels, no
base64, no re-encoding; encoded clips (mp4 bytes, or a local file's bytes) go as they are.
Retries: 408, 429, 500, 502, 503, 504 and connection errors/timeouts, with exponential
backoff and jitter (``Retry-After`` honoured, capped); other errors raise
:class:`RewardServerError` at once. Scoring is a pure function of the request, so a retry
is safe; every attempt of one call carries the same ``X-Request-ID`` (in the server's log
and response).
"""

from __future__ import annotations

import os
import random
import time
import uuid
from typing import Any, Mapping, Sequence

from anibench.reward.payload import BINARY_CONTENT_TYPE, encode_binary, encode_json

URL_ENV = "ANIBENCH_REWARD_URL"
TOKEN_ENV = "ANIBENCH_REWARD_TOKEN"
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class RewardServerError(Exception):
    """The server refused or failed a request (after retries where they apply)."""

    def __init__(self, message: str, *, status: int | None = None, request_id: str | None = None):
        super().__init__(message)
        self.status, self.request_id = status, request_id


class RewardClient:
    """A connection pool to one reward server; thread-safe (one client can serve many threads).

    ``url``: the server (default ``$ANIBENCH_REWARD_URL``); ``token``: the bearer token
    (default ``$ANIBENCH_REWARD_TOKEN``; None sends none). ``timeout``: seconds per attempt
    (read); ``retries``: further attempts after the first; ``backoff``: first delay, doubled
    each retry up to ``max_backoff``. ``binary=False`` sends base64 JSON instead.
    """

    def __init__(self, url: str | None = None, token: str | None = None, *, timeout: float = 120.0,
                 connect_timeout: float = 10.0, retries: int = 3, backoff: float = 0.5, max_backoff: float = 10.0,
                 binary: bool = True, transport: Any = None):
        import httpx2

        url = url or os.environ.get(URL_ENV)
        if not url:
            raise ValueError(f"give the reward server's URL (or set ${URL_ENV})")
        self.url = url.rstrip("/")
        token = token if token is not None else os.environ.get(TOKEN_ENV)
        self.retries, self.backoff, self.max_backoff, self.binary = max(0, retries), backoff, max_backoff, binary
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx2.Client(base_url=self.url, headers=headers, transport=transport,
                                   timeout=httpx2.Timeout(timeout, connect=connect_timeout))
        self._retry_errors = (httpx2.TransportError,)

    # -- calls -------------------------------------------------------------------------------
    def score(self, items: Sequence[Mapping[str, Any]], *, scorers: Sequence[str] | None = None,
              details: bool = False, request_id: str | None = None) -> dict[str, Any]:
        """Score items (``video``, ``prompt``, ``fps``, ``guides``, ``id``; see
        :func:`~anibench.reward.payload.encode_binary`).

        Returns the server's response: ``items`` (per item ``reward``, ``scores``, ``errors``,
        ``error``), ``provenance_id``, ``request_id``.
        """
        request_id = request_id or uuid.uuid4().hex
        if self.binary:
            # Header + the frames' own buffers, sent as they are (no join, no copy); a list, so a retry resends it.
            chunks = encode_binary(items, request_id=request_id, scorers=scorers)
            response = self._post("/v1/score", content=chunks, content_type=BINARY_CONTENT_TYPE,
                                  request_id=request_id, params={"details": "true"} if details else None,
                                  length=sum(len(c) for c in chunks))
        else:
            body = encode_json(items, request_id=request_id, scorers=scorers)
            import json

            response = self._post("/v1/score", content=json.dumps(body).encode(), content_type="application/json",
                                  request_id=request_id, params={"details": "true"} if details else None)
        return response

    def rewards(self, items: Sequence[Mapping[str, Any]], **kwargs: Any) -> list[float | None]:
        """Only the rewards of :meth:`score` (None for an item that could not be scored)."""
        return [item["reward"] for item in self.score(items, **kwargs)["items"]]

    def info(self) -> dict[str, Any]:
        return self._request("GET", "/v1/info", request_id=uuid.uuid4().hex)

    def health(self) -> dict[str, Any]:
        return self._request("GET", "/healthz", request_id=uuid.uuid4().hex)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "RewardClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- transport ---------------------------------------------------------------------------
    def _post(self, path: str, *, content: Any, content_type: str, request_id: str,
              params: Mapping[str, str] | None = None, length: int | None = None) -> dict[str, Any]:
        headers = {"Content-Type": content_type}
        if length is not None:
            headers["Content-Length"] = str(length)  # a sized body, not chunked
        return self._request("POST", path, content=content, headers=headers, request_id=request_id, params=params)

    def _request(self, method: str, path: str, *, request_id: str, headers: Mapping[str, str] | None = None,
                 **kwargs: Any) -> dict[str, Any]:
        headers = {**(headers or {}), "X-Request-ID": request_id}
        last: str = ""
        for attempt in range(self.retries + 1):
            retry_after = None
            try:
                response = self._http.request(method, path, headers=headers, **kwargs)
            except self._retry_errors as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code < 400:
                    return response.json()
                message = _message(response)
                if response.status_code not in RETRY_STATUSES:
                    raise RewardServerError(f"{method} {path} → {response.status_code}: {message}",
                                            status=response.status_code, request_id=request_id)
                last = f"{response.status_code}: {message}"
                retry_after = _retry_after(response.headers.get("Retry-After"))
            if attempt == self.retries:
                break
            delay = min(self.max_backoff, self.backoff * 2 ** attempt) * (0.5 + random.random() / 2)
            time.sleep(min(self.max_backoff, max(delay, retry_after or 0.0)))
        raise RewardServerError(f"{method} {self.url}{path} failed after {self.retries + 1} attempt(s): {last}",
                                request_id=request_id)


def _message(response: Any) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    if isinstance(body, Mapping) and "error" in body:
        return str(body["error"])
    return str(body)[:500]


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
