"""Generators on the model-ready core: identity in the reuse key, not-applicable kept apart, seeds per
request, load → generate → unload before any scorer, and remote jobs that survive a crash."""

from __future__ import annotations

import json
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from anibench.generation import GENERATORS, AsyncGenerator, Generator, JobState, JobStatus
from anibench.results import load_samples
from anibench.runner import run
from anibench.runspec import RunSpec
from anibench.scoring import SCORERS, Scorer
from anibench.store import RunStore
from anibench.video import Video

from conftest import SMALL_SMOKE

EVENTS: list[str] = []


class Level(Generator):
    """Uniform grey frames at ``level``: its output depends on its parameter."""

    name = "test_level"
    requires_prompt = False
    default_params = {"level": 10}

    def load(self, runtime):
        super().load(runtime)
        EVENTS.append("load")

    def unload(self):
        EVENTS.append("unload")

    def generate(self, request):
        EVENTS.append("generate")
        frames = np.full((request.num_frames, request.height, request.width, 3), self.params["level"], np.uint8)
        return Video(frames, request.fps)


class Noise(Generator):
    """Random frames from the request's own seed."""

    name = "test_noise"
    requires_prompt = False

    def generate(self, request):
        rng = request.rng()
        return Video(rng.integers(0, 255, (request.num_frames, request.height, request.width, 3), np.uint8), request.fps)


class Mean(Scorer):
    """Mean grey level / 255 (needs no feature but the sampled frames)."""

    name = "test_mean"
    lower, upper = 0.0, 1.0

    def setup(self, runtime):
        super().setup(runtime)
        EVENTS.append("scorer-setup")

    def compute(self, sample):
        _, frames = sample.frames(self.sampling)
        return self.result(float(frames.mean()) / 255)


@pytest.fixture(autouse=True)
def registered():
    GENERATORS.register("test_level", Level, replace=True)
    GENERATORS.register("test_noise", Noise, replace=True)
    SCORERS.register("test_mean", Mean, replace=True)
    EVENTS.clear()
    yield
    # Registries are process-wide: test plugins left behind would join later "every available scorer" runs.
    GENERATORS.unregister("test_level")
    GENERATORS.unregister("test_noise")
    SCORERS.unregister("test_mean")


def _spec(level: int, **extra) -> RunSpec:
    return RunSpec(suite=SMALL_SMOKE, generators=[{"name": "test_level", "params": {"level": level}, "label": "gen"}],
                   conditions=["i2v"], scorers=["test_mean"], limit=2, **extra)


def test_a_clip_made_with_other_parameters_under_the_same_label_is_not_reused(tmp_path):
    first = run(_spec(10), tmp_path)
    second = run(_spec(200), tmp_path)
    assert second["counts"]["this_invocation"]["generated"] == 2
    assert first["results"]["gen"]["i2v"]["test_mean"]["value"] == pytest.approx(10 / 255, abs=0.01)
    assert second["results"]["gen"]["i2v"]["test_mean"]["value"] == pytest.approx(200 / 255, abs=0.01)
    assert second["generators"]["gen"]["identity"] != first["generators"]["gen"]["identity"]
    third = run(_spec(200), tmp_path)  # same identity again: everything reused
    assert third["counts"]["this_invocation"] == {"generated": 0, "computed": 0, "reused": 2}


def test_not_applicable_generation_is_counted_apart_and_never_retried(samples_dir, tmp_path):
    spec = RunSpec(suite={"name": "anisora", "path": str(samples_dir)}, generators=["reference"], conditions=["i2v"],
                   scorers=["temporal_flickering"])
    results = run(spec, tmp_path)
    items = {r["case_id"]: r for r in RunStore.in_dir(tmp_path, readonly=True).items()}
    without_video = [case for case, row in items.items() if row["status"] == "not_applicable"]
    assert without_video and all("ground-truth" in items[c]["message"] for c in without_video)
    cell = results["results"]["reference"]["i2v"]["temporal_flickering"]
    assert cell["n_failed"] == 0 and cell["n_not_applicable"] == len(without_video)
    again = run(spec, tmp_path)
    assert again["counts"]["this_invocation"]["generated"] == 0
    store = RunStore.in_dir(tmp_path, readonly=True)
    latest = store.invocations()[-1]["id"]
    assert [f for f in store.failures(latest) if f["stage"] == "generate"] == []


def test_a_clip_does_not_depend_on_its_batch(tmp_path):
    both = RunSpec(suite=SMALL_SMOKE, generators=["test_noise"], conditions=["i2v"], scorers=[], limit=3)
    alone = RunSpec(suite=SMALL_SMOKE, generators=["test_noise"], conditions=["i2v"], scorers=[],
                    cases=[_third_case()])
    run(both, tmp_path / "both")
    run(alone, tmp_path / "alone")
    path = Path("videos/test_noise/i2v/seed0") / f"{_third_case()}.mp4"
    assert (tmp_path / "both" / path).read_bytes() == (tmp_path / "alone" / path).read_bytes()
    other_seed = RunSpec(suite=SMALL_SMOKE, generators=["test_noise"], conditions=["i2v"], scorers=[],
                         cases=[_third_case()], seeds=[1])
    run(other_seed, tmp_path / "seed1")
    assert (tmp_path / "seed1" / str(path).replace("seed0", "seed1")).read_bytes() != (tmp_path / "alone" / path).read_bytes()


def _third_case() -> str:
    from anibench.suites import load_suite

    return load_suite(SMALL_SMOKE).cases[2].id


def test_the_generator_is_unloaded_before_any_scorer_loads(tmp_path):
    run(_spec(10), tmp_path)
    assert EVENTS[0] == "load" and EVENTS.count("load") == 1
    assert EVENTS.index("unload") < EVENTS.index("scorer-setup")
    assert EVENTS.count("generate") == 2


# -- remote jobs ------------------------------------------------------------------------------
class FakeVideoAPI(ThreadingHTTPServer):
    """A real HTTP server on 127.0.0.1 that makes clips asynchronously, as a video API does."""

    def __init__(self, clip: bytes, polls_until_done: int):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.clip, self.polls_until_done = clip, polls_until_done
        self.jobs: dict[str, int] = {}
        self.submissions = 0


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        server: FakeVideoAPI = self.server
        server.submissions += 1
        job_id = f"job{server.submissions}"
        server.jobs[job_id] = 0
        self._reply(200, json.dumps({"id": job_id}).encode())

    def do_GET(self):
        server: FakeVideoAPI = self.server
        parts = self.path.strip("/").split("/")
        if parts[-1] == "video":
            self._reply(200, server.clip, "video/mp4")
            return
        server.jobs[parts[-1]] += 1
        state = "succeeded" if server.jobs[parts[-1]] >= server.polls_until_done else "running"
        self._reply(200, json.dumps({"state": state}).encode())

    def _reply(self, status, body, kind="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class RemoteGenerator(AsyncGenerator):
    """An API client: POST /jobs, GET /jobs/<id>, GET /jobs/<id>/video."""

    name = "test_remote"
    requires_prompt = False
    poll_interval = 0.01
    max_wait = 30.0
    default_params = {"url": ""}

    def submit(self, request):
        reply = urllib.request.urlopen(urllib.request.Request(self.params["url"] + "/jobs", data=b"{}"), timeout=5)
        return json.loads(reply.read())["id"]

    def poll(self, job_id):
        state = json.loads(urllib.request.urlopen(f"{self.params['url']}/jobs/{job_id}", timeout=5).read())["state"]
        return JobStatus(JobState(state))

    def fetch(self, job_id, request):
        path = Path(self.workdir) / f"{job_id}.mp4"
        path.write_bytes(urllib.request.urlopen(f"{self.params['url']}/jobs/{job_id}/video", timeout=5).read())
        return path


def test_remote_jobs_are_polled_after_a_crash_not_paid_for_twice(tmp_path):
    clip = Video(np.full((49, 128, 192, 3), 90, np.uint8), 16).write(tmp_path / "api.mp4").read_bytes()
    server = FakeVideoAPI(clip, polls_until_done=3)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    RemoteGenerator.workdir = tmp_path
    GENERATORS.register("test_remote", RemoteGenerator, replace=True)
    spec = RunSpec(suite=SMALL_SMOKE, generators=[{"name": "test_remote", "params": {"url": url}, "label": "api"}],
                   conditions=["i2v"], scorers=["test_mean"], limit=2)
    try:
        RemoteGenerator.max_wait = 0.0  # the first run gives up at once: the jobs stay in the store
        first = run(spec, tmp_path / "run")
        assert first["counts"]["items_by_status"] == {"failed": 2}
        jobs = RunStore.in_dir(tmp_path / "run", readonly=True).jobs()
        assert [j["job_id"] for j in jobs] == ["job1", "job2"]
        RemoteGenerator.max_wait = 30.0
        second = run(spec, tmp_path / "run")
    finally:
        server.shutdown()
    assert server.submissions == 2  # the second run polled job1 and job2, it did not resubmit
    assert second["counts"]["items_by_status"] == {"generated": 2}
    assert second["results"]["api"]["i2v"]["test_mean"]["value"] == pytest.approx(90 / 255, abs=0.01)
    assert {j["state"] for j in RunStore.in_dir(tmp_path / "run", readonly=True).jobs()} == {"succeeded"}
    assert all(r["status"] == "ok" for r in load_samples(tmp_path / "run"))
