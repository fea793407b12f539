"""The scoring session and the streaming feature pass: clips as files, bytes or frames; one decode per
clip; a bounded frame window; model families loaded once, batched across clips, features persisted."""

from __future__ import annotations

import numpy as np
import pytest

from anibench.errors import InputError
from anibench.features import FEATURES, MODEL_FAMILIES, Deferred, FeatureSpec, FrameFeature, ModelFamily
from anibench.features.stream import compute_features
from anibench.frames import FileFrames
from anibench.runtime.context import Runtime
from anibench.scoring import SCORERS, Scorer
from anibench.session import RewardSpec, ScoringSession
from anibench.store import RunStore
from anibench.video import Video

from conftest import moving_square

FAMILY_LOADS: list[int] = []


class ColourMeans(ModelFamily):
    """A stand-in backbone: each input frame → its mean RGB (a batched 'forward')."""

    name = "test_colour_means"

    def load(self):
        FAMILY_LOADS.append(1)

    def forward(self, batch):
        return [frame.reshape(-1, 3).mean(axis=0) for frame in batch]


class Colour(FrameFeature):
    """``test.colour``: per-frame mean colours through the family (deferred until it runs)."""

    name = "test.colour"
    family = "test_colour_means"
    persist = True

    def __init__(self, spec, clip):
        super().__init__(spec, clip)
        self.deferred = Deferred(lambda rows: np.stack(rows))

    def step(self, t):
        self.clip.family(self.family).submit(self.clip.frame(t).astype(np.float32), self.deferred,
                                             self.clip.frame(t).shape)

    def finish(self):
        return self.deferred.seal()


class Redness(Scorer):
    name = "test_redness"
    families = ()  # the stand-in family needs no weights

    def features(self, sample):
        return [FeatureSpec.of("test.colour")]

    def compute(self, sample):
        colours = sample.feature(self.features(sample)[0])
        return self.result(float(colours[:, 0].mean()) / 255)


class Window(FrameFeature):
    """Records how many frames the context holds at once."""

    name = "test.window"
    seen: list[int] = []

    def __init__(self, spec, clip):
        super().__init__(spec, clip)
        self.lookback = 2
        self.pinned = frozenset({0})

    def step(self, t):
        Window.seen.append(len(self.clip._frames))
        self.clip.frame(max(0, t - 2))
        self.clip.frame(0)

    def finish(self):
        return max(Window.seen)


@pytest.fixture(autouse=True)
def registered():
    MODEL_FAMILIES.register("test_colour_means", ColourMeans, replace=True)
    FEATURES.register("test.colour", Colour, replace=True)
    FEATURES.register("test.window", Window, replace=True)
    SCORERS.register("test_redness", Redness, replace=True)
    FAMILY_LOADS.clear()
    yield
    # Registries are process-wide: a test scorer left behind would join every later "all available scorers" run.
    SCORERS.unregister("test_redness")
    FEATURES.unregister("test.colour")
    FEATURES.unregister("test.window")
    MODEL_FAMILIES.unregister("test_colour_means")


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    return [Video(moving_square(num_frames=n, seed=n), 16).write(folder / f"c{n}.mp4") for n in (9, 13, 17)]


def test_files_bytes_and_frames_score_the_same(clips):
    with ScoringSession(["temporal_flickering", "motion_smoothness", "dynamic_degree"], workers=2) as session:
        from_files = session.score(clips)
        from_bytes = session.score([p.read_bytes() for p in clips])
        decoded = [Video.read(p) for p in clips]
        from_frames = session.score([v.frames for v in decoded], fps=16)
    for a, b, c in zip(from_files, from_bytes, from_frames):
        for name in a:
            assert a[name].value == b[name].value == c[name].value, name
    assert from_files[0]["temporal_flickering"].value < 1.0


def test_one_decode_per_clip_for_every_scorer(clips):
    with ScoringSession(["temporal_flickering", "motion_smoothness", "dynamic_degree", "static_clip", "scene_cuts"]) as s:
        s.score(clips)
        assert s.stats["decodes"] == len(clips)


def test_the_frame_window_is_bounded_by_the_lookback(tmp_path):
    path = Video(moving_square(num_frames=60), 16).write(tmp_path / "long.mp4")
    Window.seen = []
    values = compute_features(FileFrames(path), [FeatureSpec.of("test.window")])
    assert values[FeatureSpec.of("test.window")] <= 2 + 1 + 1  # look-back 2, the current frame, pinned frame 0
    assert len(Window.seen) == 60


def test_a_decoding_error_fails_that_clip_only(clips, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(clips[0].read_bytes()[: 2000])
    with ScoringSession(["temporal_flickering"]) as session:
        results = session.score([clips[0], broken, tmp_path / "missing.mp4", np.zeros((3, 4), np.uint8)])
    assert results[0]["temporal_flickering"].value > 0.9
    for bad, fragment in ((1, "broken.mp4"), (2, "missing.mp4")):
        error = results[bad]["temporal_flickering"]
        assert isinstance(error, Exception) and fragment in str(error)
    assert "uint8" in str(results[3]["temporal_flickering"])


def test_model_family_loaded_once_batched_across_clips_and_persisted(clips, tmp_path):
    store = RunStore(tmp_path / "store.sqlite")
    shas = ["a" * 64, "b" * 64, "c" * 64]
    from anibench.scoring import ScoreInput
    from anibench.session import ScoringJob

    def jobs():
        return [ScoringJob(path, ScoreInput(f"c{i}", video_sha256=sha)) for i, (path, sha) in enumerate(zip(clips, shas))]

    runtime = Runtime(device="cpu", dtype="fp32", batch_size=16)
    with ScoringSession(["test_redness"], runtime, feature_store=store) as session:
        first = session.score_jobs(jobs())
        family = runtime.loaded_families()["test_colour_means"]
        assert FAMILY_LOADS == [1]
        assert family.items_run == 9 + 13 + 17 and family.batches_run == 3  # 39 frames in batches of 16
    assert store.feature_count() == 3
    with ScoringSession(["test_redness"], Runtime(device="cpu", dtype="fp32"), feature_store=store) as session:
        second = session.score_jobs(jobs())
        assert session.stats["decodes"] == 0  # every feature came from the store
    for a, b in zip(first, second):
        assert a.scores["test_redness"].value == b.scores["test_redness"].value
    expected = Video.read(clips[1]).frames[..., 0].mean() / 255
    assert first[1].scores["test_redness"].value == pytest.approx(expected, rel=1e-5)


def test_reward_spec_combines_heads_into_one_bounded_value():
    from anibench.scoring import ScoreResult

    scores = {
        "a": ScoreResult("a", 0.75, 0.0, 1.0, True),
        "b": ScoreResult("b", 30.0, 0.0, 60.0, True),
        "c": ScoreResult("c", 2.0, 0.0, 10.0, False),  # lower is better: 2 of 10 → 0.8
    }
    spec = RewardSpec({"a": 1.0, "b": 1.0, "c": 2.0})
    assert spec.reward(scores) == pytest.approx((0.75 + 0.5 + 2 * 0.8) / 4)
    assert RewardSpec({"a": 1.0, "b": 0.0}, bounds={"a": (0.5, 1.0)}).reward(scores) == pytest.approx(0.5)
    assert RewardSpec({"a": 1.0, "z": 1.0}).reward(scores) is None
    assert RewardSpec({"a": 1.0, "z": 1.0}, missing=0.0).reward(scores) == pytest.approx(0.375)
    with pytest.raises(Exception, match="finite number"):
        RewardSpec({"a": float("nan")})


def test_one_parameter_set_per_scorer_name():
    """Results are keyed by scorer name, so a second parameter set is refused rather than silently replacing the first."""
    with ScoringSession(["dynamic_degree", "dynamic_degree"]) as session:  # the same one twice is one scorer
        assert list(session.scorers) == ["dynamic_degree"]
    with pytest.raises(InputError, match="named twice with different parameters"):
        ScoringSession(["dynamic_degree", "dynamic_degree:flow_max_side=64"])
