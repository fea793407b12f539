"""``anibench reward serve`` started for real on 127.0.0.1 and exercised over HTTP (httpx2).

Good and bad requests, concurrently; its client's retries against a real tiny HTTP server on
loopback; verl-omni's ``compute_score`` sending every frame.
"""

from __future__ import annotations

import base64
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx2
import numpy as np
import pytest

from anibench.reward.client import RewardClient, RewardServerError
from anibench.reward.payload import BINARY_CONTENT_TYPE, Limits, decode_binary, encode_binary, encode_json
from anibench.reward.server import RunningServer, ServerConfig, create_app
from anibench.reward.service import RewardService
from anibench.video import Video
from conftest import moving_square

TOKEN = "test-token_1234~x+y/z="
SCORERS = ["temporal_flickering", "dynamic_degree", "guide_psnr"]
LIMITS = Limits(max_body_bytes=2 * 1024 * 1024, max_batch=4, max_frames=40, max_pixels=128 * 128)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = Video(moving_square(17), 16.0).write(tmp_path_factory.mktemp("served") / "clip.mp4")
    return path, path.read_bytes(), Video.read(path).frames


@pytest.fixture(scope="module")
def service():
    with RewardService(SCORERS, device="cpu") as svc:
        yield svc


@pytest.fixture(scope="module")
def server(service):
    with RunningServer(create_app(service, ServerConfig(token=TOKEN, limits=LIMITS, max_pending=64))) as running:
        yield running


@pytest.fixture(scope="module")
def client(server):
    with RewardClient(server.url, TOKEN, retries=1, backoff=0.05) as c:
        yield c


def _auth(token=TOKEN):
    return {"Authorization": f"Bearer {token}"}


def _post(server, body, content_type="application/json", token=TOKEN, path="/v1/score"):
    headers = {"Content-Type": content_type, **(_auth(token) if token else {})}
    return httpx2.post(server.url + path, content=body, headers=headers, timeout=30)


def test_good_batch_binary_equals_json_equals_in_process(server, client, service, clip):
    path, data, frames = clip
    items = [{"video": frames, "fps": 16, "guides": [frames[0]], "prompt": "a square slides", "id": "frames"},
             {"video": data, "guides": [frames[0]], "id": "mp4"},
             {"video": np.ascontiguousarray(frames.transpose(0, 3, 1, 2)), "fps": 16, "guides": [frames[0]]}]
    binary = client.score(items)
    with RewardClient(server.url, TOKEN, binary=False) as json_client:
        as_json = json_client.score(items)
    local = service.score(items).to_json()["items"]
    assert [i["id"] for i in binary["items"]] == ["frames", "mp4", "item2"]
    for remote in (binary["items"], as_json["items"]):
        for got, want in zip(remote, local):
            assert got["ok"] and got["scores"] == pytest.approx(want["scores"], abs=1e-12)
            assert got["reward"] == pytest.approx(want["reward"], abs=1e-12)
    assert binary["provenance_id"] == service.provenance_id() and binary["request_id"]


def test_health_info_and_schema(server, client):
    assert httpx2.get(server.url + "/healthz").json()["status"] == "ok"  # no token needed
    info = client.info()
    assert info["scorers"] == SCORERS and info["auth"] is True and info["limits"]["max_batch"] == 4
    assert info["provenance"]["runtime"]["device"] == "cpu"
    assert TOKEN not in json.dumps(info)
    schema = httpx2.get(server.url + "/openapi.json").json()
    assert {"/v1/score", "/get_reward", "/healthz", "/v1/info"} <= set(schema["paths"])
    body = schema["paths"]["/v1/score"]["post"]["requestBody"]["content"]
    assert {"application/json", BINARY_CONTENT_TYPE} <= set(body)
    assert "ScoreRequest" in schema["components"]["schemas"]


def test_authentication(server, clip, caplog):
    caplog.set_level("DEBUG")
    body = json.dumps(encode_json([{"video": clip[1]}])).encode()
    for token in (None, "wrong", TOKEN + "x", ""):
        response = _post(server, body, token=token)
        assert response.status_code == 401, token
        assert response.json()["error"].startswith("missing or wrong bearer token")
        assert response.headers["WWW-Authenticate"] == "Bearer"
    assert httpx2.get(server.url + "/v1/info").status_code == 401
    assert httpx2.get(server.url + "/v1/info", headers={"Authorization": "Basic abc"}).status_code == 401
    with RewardClient(server.url, "wrong") as bad, pytest.raises(RewardServerError) as info:
        bad.score([{"video": clip[1]}])
    assert info.value.status == 401
    assert _post(server, body).status_code == 200
    assert TOKEN not in caplog.text


def test_oversized_and_over_the_limits(server, clip):
    frames = clip[2]
    big = _post(server, b"{" + b" " * (LIMITS.max_body_bytes + 10) + b"}")
    assert big.status_code == 413 and "exceeds the limit" in big.json()["error"]

    def binary(items):
        return b"".join(bytes(c) for c in encode_binary(items))

    too_long = _post(server, binary([{"video": np.zeros((41, 8, 8, 3), np.uint8)}]), BINARY_CONTENT_TYPE)
    assert too_long.status_code == 413 and "41 frames" in too_long.json()["error"]
    too_many = _post(server, binary([{"video": frames[:2]}] * 5), BINARY_CONTENT_TYPE)
    assert too_many.status_code == 413 and "batch of 5" in too_many.json()["error"]
    too_wide = _post(server, binary([{"video": np.zeros((2, 129, 128, 3), np.uint8)}]), BINARY_CONTENT_TYPE)
    assert too_wide.status_code == 413 and "pixels" in too_wide.json()["error"]
    # an mp4 is checked from its container before decoding: a per-item error
    long_mp4 = Video(np.repeat(frames, 3, axis=0), 16.0).write(clip[0].with_name("long.mp4")).read_bytes()
    with RewardClient(server.url, TOKEN) as c:
        result = c.score([{"video": long_mp4}, {"video": frames, "fps": 16, "guides": [frames[0]]}])
    assert "51 frames" in result["items"][0]["error"]["message"] and result["items"][1]["ok"]


@pytest.mark.parametrize("body, content_type, message", [
    (b"{not json", "application/json", "not valid JSON"),
    (b'{"items": []}', "application/json", "non-empty 'items'"),
    (b'{"items": [{"video": {"data": "%%"}}]}', "application/json", "base64"),
    (b'{"items": [{"video": {"data": "AAAA", "format": "raw", "shape": [1, 2]}}]}', "application/json", "4-D"),
    (b"\x80\x04\x95 a pickled body, never unpickled", BINARY_CONTENT_TYPE, "bad magic"),
    (b"hello", "text/plain", "Content-Type"),
])
def test_malformed_requests(server, client, clip, body, content_type, message):
    response = _post(server, body, content_type)
    assert response.status_code in (415, 422) and message in response.json()["error"]
    assert response.json()["status"] == response.status_code
    assert client.score([{"video": clip[1], "guides": [clip[2][0]]}])["items"][0]["ok"]  # still serving


def test_bad_item_fails_alone(client, clip):
    path, data, frames = clip
    result = client.score([{"video": b"definitely not an mp4", "id": "bad"},
                           {"video": data, "guides": [frames[0]], "id": "good"},
                           {"video": frames[:1], "fps": 16, "id": "short", "guides": [frames[0]]}])
    bad, good, short = result["items"]
    assert bad["error"]["type"] == "VideoDecodeError" and bad["reward"] is None
    assert good["ok"] and 0 <= good["reward"] <= 1
    assert "temporal_flickering" in short["errors"] and short["reward"] is None


def test_eight_concurrent_clients(server, service, clip):
    path, data, frames = clip
    expected = service.score([{"video": frames, "fps": 16, "guides": [frames[0]]}]).items[0].scores

    def one_client(k):
        with RewardClient(server.url, TOKEN, retries=2, backoff=0.05) as c:
            out = []
            for _ in range(3):
                items = [{"video": frames, "fps": 16, "guides": [frames[0]], "id": f"c{k}"}]
                if k % 4 == 0:
                    items.append({"video": b"junk"})  # a bad item in some requests
                out.append(c.score(items))
            return out

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one_client, range(8)))
    assert len(results) == 8
    for k, responses in enumerate(results):
        for response in responses:
            first = response["items"][0]
            assert first["id"] == f"c{k}" and first["scores"] == pytest.approx(expected, abs=1e-12)
            assert len(response["items"]) == (2 if k % 4 == 0 else 1)


def test_get_reward_openrlhf_contract(server, clip):
    path, data, frames = clip
    body = {"query": ["a square slides", "junk"], "prompts": ["a square slides", "junk"], "labels": ["", ""],
            "videos": [{"data": base64.b64encode(data).decode()}, {"data": base64.b64encode(b"junk").decode()}],
            "guides": [[{"format": "raw", "shape": list(frames[0].shape),
                         "data": base64.b64encode(frames[0].tobytes()).decode()}], None]}
    response = _post(server, json.dumps(body).encode(), path="/get_reward")
    assert response.status_code == 200, response.text
    out = response.json()
    assert set(out) >= {"rewards", "scores", "extra_logs"}
    assert len(out["rewards"]) == 2 and 0 < out["rewards"][0] <= 1 and out["rewards"][1] == 0.0
    assert out["scores"] == out["rewards"] and out["extra_logs"]["failed"] == [0.0, 1.0]
    assert set(SCORERS) <= set(out["extra_logs"])
    assert out["errors"][0] is None and "VideoDecodeError" in out["errors"][1]
    text_only = _post(server, json.dumps({"query": ["x"], "prompts": ["x"], "labels": [""]}).encode(),
                      path="/get_reward")
    assert text_only.status_code == 422 and "videos" in text_only.json()["error"]
    assert _post(server, b"{}", token=None, path="/get_reward").status_code == 401


def test_refuses_to_serve_unauthenticated_beyond_loopback(service):
    from anibench.errors import InputError

    with pytest.raises(InputError, match="without authentication"):
        create_app(service, ServerConfig(host="0.0.0.0", token=None))
    with pytest.raises(InputError, match="ASCII"):
        ServerConfig(token="tökén").check()
    ServerConfig(host="::1").check()
    ServerConfig(host="0.0.0.0", token="secret").check()


class _Flaky(BaseHTTPRequestHandler):
    """Answers 503 to the first ``fail`` requests, then 200 with a score; records what it got."""

    fail = 1
    seen: list = []

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).seen.append((self.headers.get("X-Request-ID"), self.headers.get("Authorization"), body))
        if len(type(self).seen) <= type(self).fail:
            payload, status = b'{"error": "warming up", "status": 503}', 503
        else:
            parsed = decode_binary(body, Limits())
            video = parsed.items[0].video.value
            result = {"id": "item0", "ok": True, "reward": 0.5, "scores": {"frames": video.shape[0]},
                      "errors": {}, "error": None}
            payload = json.dumps({"items": [result],
                                  "provenance_id": "x", "request_id": parsed.request_id}).encode()
            status = 200
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        if status == 503:
            self.send_header("Retry-After", "0")
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def flaky():
    _Flaky.seen, _Flaky.fail = [], 1
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_client_retries_503_with_the_same_request_id(flaky, clip):
    _, url = flaky
    with RewardClient(url, "tok", retries=2, backoff=0.01) as c:
        out = c.score([{"video": clip[2], "fps": 16}])
    assert out["items"][0]["reward"] == 0.5
    assert len(_Flaky.seen) == 2 and _Flaky.seen[0][0] == _Flaky.seen[1][0] == out["request_id"]
    assert _Flaky.seen[0][2] == _Flaky.seen[1][2] and _Flaky.seen[0][1] == "Bearer tok"
    _Flaky.seen, _Flaky.fail = [], 10
    with RewardClient(url, "tok", retries=2, backoff=0.01) as c, pytest.raises(RewardServerError, match="3 attempt"):
        c.score([{"video": clip[2], "fps": 16}])
    assert len(_Flaky.seen) == 3


def test_client_retries_connection_errors_then_gives_up():
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with RewardClient(f"http://127.0.0.1:{port}", retries=2, backoff=0.01) as c, \
            pytest.raises(RewardServerError, match="ConnectError"):
        c.health()


def test_compute_score_sends_every_frame(flaky, server, service, clip, monkeypatch):
    import torch

    from anibench.reward import integrations

    _, url = flaky
    _Flaky.fail = 0
    frames = clip[2]
    video = torch.from_numpy(frames).permute(0, 3, 1, 2).contiguous()  # verl-omni's (T, C, H, W) uint8
    out = integrations.compute_score("anime", video, "a square slides", {"fps": 16}, server_url=url, retries=0)
    assert out["score"] == 0.5 and out["frames"] == 17
    parsed = decode_binary(_Flaky.seen[-1][2], Limits())
    item = parsed.items[0]
    assert np.array_equal(item.video.value, frames) and item.fps == 16 and item.prompt == "a square slides"

    # against the real server: the same values as the in-process service on the same frames
    monkeypatch.setenv("ANIBENCH_REWARD_TOKEN", TOKEN)
    real = integrations.compute_score(data_source="anime", solution_image=video, ground_truth="a square slides",
                                      extra_info={"fps": 16, "guide_image": video[0]}, server_url=server.url)
    local = service.score([{"video": frames, "fps": 16, "guides": [frames[0]]}]).items[0]
    assert real["score"] == pytest.approx(local.reward, abs=1e-12)
    assert {k: real[k] for k in SCORERS} == pytest.approx(local.scores, abs=1e-12)
    with pytest.raises(RuntimeError, match="not scored"):
        integrations.compute_score("anime", video[:1], "x", {"fps": 16}, server_url=server.url)
    with pytest.raises(ValueError, match="single image"):
        integrations.compute_score("anime", video[0], "x", {}, server_url=server.url)
    integrations.close_clients()


def test_cli_serve_subprocess(clip, tmp_path):
    """``anibench reward serve`` as a user runs it: its own process, token from the environment."""
    import os
    import socket
    import subprocess
    import sys
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "ANIBENCH_REWARD_TOKEN": TOKEN}
    process = subprocess.Popen(
        [sys.executable, "-m", "anibench", "reward", "serve", "--port", str(port), "-s", "temporal_flickering",
         "--max-batch", "2", "--log-level", "info"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx2.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx2.TransportError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
        with RewardClient(url, TOKEN) as c:
            out = c.score([{"video": clip[1]}])
            assert out["items"][0]["ok"] and list(out["items"][0]["scores"]) == ["temporal_flickering"]
            assert c.info()["limits"]["max_batch"] == 2
        assert httpx2.post(url + "/v1/score", content=b"{}", timeout=5).status_code == 401
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0]
    assert "bearer token required" in output and TOKEN not in output
    refused = subprocess.run([sys.executable, "-m", "anibench", "reward", "serve", "--host", "0.0.0.0"],
                             env={k: v for k, v in os.environ.items() if k != "ANIBENCH_REWARD_TOKEN"},
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "without authentication" in refused.stderr


def test_full_queue_answers_429_and_the_client_retries(clip):
    import time

    from anibench.scoring import Scorer

    gate, entered = threading.Event(), threading.Event()

    class Gated(Scorer):
        name, version, min_frames = "test.gated", "1", 1

        def compute(self, sample):
            entered.set()
            gate.wait(20)
            return self.result(0.5)

    item = {"video": clip[2][:2], "fps": 16}
    body = b"".join(bytes(c) for c in encode_binary([item]))
    with RewardService([Gated()]) as svc:
        app = create_app(svc, ServerConfig(token=TOKEN, limits=LIMITS, max_pending=1))
        srv = RunningServer(app)
        batcher = app.state.batcher
        with ThreadPoolExecutor(3) as pool:
            running = pool.submit(_post, srv, body, BINARY_CONTENT_TYPE)
            assert entered.wait(20)  # the first request is being scored
            queued = pool.submit(_post, srv, body, BINARY_CONTENT_TYPE)
            deadline = time.monotonic() + 20
            while batcher.pending < 1:
                assert time.monotonic() < deadline
                time.sleep(0.01)
            full = _post(srv, body, BINARY_CONTENT_TYPE)
            assert full.status_code == 429 and full.headers["Retry-After"] == "1"
            assert "too many requests" in full.json()["error"]
            with RewardClient(srv.url, TOKEN, retries=8, backoff=0.05, max_backoff=0.2) as c:
                retried = pool.submit(c.rewards, [item])
                time.sleep(0.3)  # it meets the full queue at least once
                gate.set()
                assert retried.result(20) == [0.5]
            assert running.result(20).status_code == 200 and queued.result(20).status_code == 200
        odd = httpx2.post(srv.url + "/v1/score", content=b"{}", headers={**_auth(), "X-Request-ID": "a\tb c<d>"})
        assert odd.headers["X-Request-ID"] == "abcd" and odd.json()["request_id"] == "abcd"
        srv.stop()
