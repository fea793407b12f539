"""The in-process reward service (anibench.reward.service) and its wire format (anibench.reward.payload).

Weight-free scorers stand in for the AnimeReward heads: the service is scorer-agnostic.
Clips are real mp4 files/bytes and the frames decoded from them, so every form of the
same clip must give the same values.
"""

from __future__ import annotations

import io
import pickle
import threading

import numpy as np
import pytest
from PIL import Image

from anibench.errors import AnibenchError, InputError
from anibench.reward.payload import (
    Limits,
    PayloadError,
    decode_binary,
    decode_json,
    encode_binary,
    encode_json,
)
from anibench.reward.service import Batcher, RewardItem, RewardService
from anibench.session import RewardSpec
from anibench.video import Video
from conftest import moving_square

SCORERS = ["temporal_flickering", "dynamic_degree", "guide_psnr"]


@pytest.fixture(scope="module")
def service():
    with RewardService(SCORERS, device="cpu") as svc:
        yield svc


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """(mp4 path, its bytes, the frames decoded from it, a PNG of frame 0 as path and bytes)."""
    folder = tmp_path_factory.mktemp("reward-clips")
    path = Video(moving_square(17), 16.0).write(folder / "clip.mp4")
    frames = Video.read(path).frames
    png = folder / "guide.png"
    Image.fromarray(frames[0]).save(png)
    return path, path.read_bytes(), frames, png, png.read_bytes()


def _values(batch):
    return [(item.reward, dict(item.scores)) for item in batch.items]


def test_every_form_of_a_clip_gives_the_same_values(service, clip):
    path, data, frames, png, png_bytes = clip
    import torch

    items = [
        {"video": path, "guides": [png]},
        {"video": data, "guides": [png_bytes]},
        {"video": str(path), "guides": png},
        {"video": frames, "fps": 16, "guides": [frames[0]]},
        {"video": np.ascontiguousarray(frames.transpose(0, 3, 1, 2)), "fps": 16,
         "guides": [frames[0].transpose(2, 0, 1).copy()]},
        RewardItem(torch.from_numpy(frames).permute(0, 3, 1, 2), fps=16, guides=[torch.from_numpy(frames[0])]),
    ]
    batch = service.score(items)
    values = _values(batch)
    assert all(item.ok for item in batch.items), batch.to_json()
    for reward, scores in values[1:]:
        assert reward == pytest.approx(values[0][0], abs=1e-9)
        assert scores == pytest.approx(values[0][1], abs=1e-9)
    assert set(values[0][1]) == set(SCORERS)
    assert 0.0 <= values[0][0] <= 1.0
    # the same clip alone gives the same values as in a batch
    alone = service.score([{"video": frames, "fps": 16, "guides": [frames[0]]}])
    assert _values(alone)[0][1] == pytest.approx(values[0][1], abs=1e-12)


def test_frame_arrays_are_not_copied_or_decoded(service, clip, monkeypatch):
    _, _, frames, _, _ = clip
    import anibench.frames as frames_module

    opened = []
    monkeypatch.setattr(frames_module.FileFrames, "__init__",
                        lambda self, *a, **k: opened.append(a) or (_ for _ in ()).throw(AssertionError("decoded")))
    seen = []
    original = frames_module.ArrayFrames.__init__

    def spy(self, array, fps):
        seen.append(array)
        original(self, array, fps)

    monkeypatch.setattr(frames_module.ArrayFrames, "__init__", spy)
    batch = service.score([{"video": frames, "fps": 16, "guides": [frames[0]]}])
    assert batch.items[0].ok and not opened
    assert any(np.shares_memory(a, frames) for a in seen)


def test_one_bad_item_never_loses_the_batch(service, clip):
    path, data, frames, png, _ = clip
    batch = service.score([
        {"video": b"not a video at all"},
        {"video": frames.astype(np.float32), "fps": 16},
        {"video": frames[:, :, :, 0], "fps": 16},
        {"video": path, "guides": [png]},
        {"video": frames, "fps": 16, "guides": [b"\x89PNG broken"]},
        {"video": path.parent / "missing.mp4"},
        {"video": path, "colour": "red"},
        {"video": frames, "fps": -1},
    ])
    results = batch.items
    assert results[3].ok
    for k in (0, 1, 2, 4, 5, 6, 7):
        assert not results[k].ok and results[k].error is not None, k
    assert results[0].error["type"] == "VideoDecodeError"
    assert "uint8" in results[1].error["message"]
    assert "colour" in results[6].error["message"]
    assert str(path.parent / "missing.mp4") in results[5].error["message"]
    assert "anibench-reward-" not in results[0].error["message"]  # no scratch paths leak


def test_scorer_errors_are_per_scorer_and_the_reward_says_why(service, clip):
    path, *_ = clip
    result = service.score([{"video": path}]).items[0]  # guide_psnr needs a guide
    assert result.error is None and result.reward is None
    assert result.errors["guide_psnr"]["type"] == "NotApplicable"
    assert "guide_psnr" in result.errors["reward"]["message"]
    assert set(result.scores) == {"temporal_flickering", "dynamic_degree"}
    subset = service.score([{"video": path}], scorers=["temporal_flickering"]).items[0]
    assert list(subset.scores) == ["temporal_flickering"] and subset.reward is None
    with pytest.raises(InputError, match="unknown scorer"):
        service.score([{"video": path}], scorers=["nope"])


def test_reward_options(clip):
    path, _, frames, _, _ = clip
    with RewardService(["temporal_flickering", "dynamic_degree"], reward="temporal_flickering") as svc:
        item = svc.score([{"video": path}]).items[0]
        assert item.reward == pytest.approx(item.scores["temporal_flickering"])
        assert svc.provenance()["reward"]["heads"] == {"temporal_flickering": 1.0}
    weights = {"temporal_flickering": 3, "guide_psnr": 1}
    with RewardService(["temporal_flickering", "guide_psnr"], reward=weights) as svc:
        item = svc.score([{"video": frames, "fps": 16, "guides": [frames[0]]}]).items[0]
        expected = (3 * item.scores["temporal_flickering"] + item.scores["guide_psnr"] / 60.0) / 4
        assert item.reward == pytest.approx(expected)
    spec = RewardSpec({"temporal_flickering": 1.0}, missing=0.0)
    with RewardService(["temporal_flickering"], reward=spec) as svc:
        assert svc.reward_spec is spec
    with pytest.raises(InputError, match="not among the service's scorers"):
        RewardService(["temporal_flickering"], reward="dynamic_degree")


def test_default_group_or_missing_scorers_fail_clearly(monkeypatch):
    # The default is the anime-reward group; without its weights (or its plugins) nothing can
    # run and the error says which member is missing what — never a silent empty service.
    try:
        svc = RewardService()
    except AnibenchError as exc:
        assert "anime" in str(exc)
    else:  # weights installed on this machine: the combined head is the reward
        assert svc.reward_source["heads"] == {"anime_reward.combined": 1.0}
        svc.close()
    with pytest.raises(AnibenchError, match="unknown scorer"):
        RewardService(["no_such_scorer"])


def test_provenance(service, clip):
    prov = service.provenance()
    assert set(prov["scorers"]) == set(SCORERS)
    for name, described in prov["scorers"].items():
        assert described["version"] and described["identity"] and "weights" in described
    assert prov["runtime"]["device"] == "cpu" and prov["runtime"]["dtype"]
    assert prov["reward"]["heads"] == {name: 1.0 for name in SCORERS}
    batch = service.score([{"video": clip[0], "guides": [clip[3]]}])
    assert batch.provenance_id == service.provenance_id()
    with_details = service.score([{"video": clip[0], "guides": [clip[3]]}], details=True).items[0]
    assert set(with_details.details) == set(SCORERS)
    import json

    json.dumps(with_details.to_json())  # JSON-safe


def test_limits_apply_to_encoded_clips_before_decoding(clip):
    path, data, frames, _, _ = clip
    with RewardService(["temporal_flickering"], limits=Limits(max_frames=10, max_pixels=64 * 96)) as svc:
        over = svc.score([{"video": data}, {"video": frames[:8], "fps": 16}])
        assert "17 frames" in over.items[0].error["message"] and over.items[1].ok
    with RewardService(["temporal_flickering"], limits=Limits(max_pixels=1000)) as svc:
        assert "pixels" in svc.score([{"video": path}]).items[0].error["message"]


def test_guides_positions(service, clip):
    path, _, frames, _, _ = clip
    last = service.score([{"video": frames, "fps": 16, "guides": [frames[-1]]}]).items[0]
    placed = service.score([RewardItem(frames, fps=16, guides=[frames[-1]], guide_positions=[1.0])]).items[0]
    assert placed.scores["guide_psnr"] > last.scores["guide_psnr"]  # the guide is checked at the last frame
    wrong = service.score([RewardItem(frames, fps=16, guides=[frames[0]], guide_positions=[0.0, 1.0])]).items[0]
    assert "guide positions" in wrong.error["message"]


def test_batcher_serialises_and_groups_concurrent_callers(service, clip):
    path, _, frames, _, _ = clip
    batcher = Batcher(service, max_items=16, max_pending=32)
    try:
        expected = service.score([{"video": frames, "fps": 16, "guides": [frames[0]]}]).items[0].scores
        results, errors = [], []

        def call():
            try:
                batch = batcher.submit([{"video": frames, "fps": 16, "guides": [frames[0]]}] * 2).result(60)
                results.append(batch)
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=call) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors and len(results) == 6
        for batch in results:
            assert len(batch.items) == 2
            for item in batch.items:
                assert item.scores == pytest.approx(expected, abs=1e-12)
        assert batcher.batches <= 6
        failing = batcher.submit([{"video": path}], scorers=["nope"])
        with pytest.raises(InputError):
            failing.result(30)
        assert batcher.submit([{"video": path}]).result(30).items[0].scores  # still serving
    finally:
        batcher.close()


# -- wire format ---------------------------------------------------------------------------------
def test_binary_round_trip_is_zero_copy_and_equals_json(clip):
    path, data, frames, png, png_bytes = clip
    items = [{"video": frames, "fps": 12.5, "prompt": "ハルヒ waves", "id": "a",
              "guides": [{"image": frames[0], "position": 0.5}, png_bytes]},
             {"video": np.ascontiguousarray(frames.transpose(0, 3, 1, 2)), "fps": 16},
             {"video": data}, {"video": path}]
    body = b"".join(bytes(c) for c in encode_binary(items, request_id="r1", scorers=["temporal_flickering"]))
    parsed = decode_binary(body, Limits())
    assert parsed.request_id == "r1" and parsed.scorers == ["temporal_flickering"]
    first = parsed.items[0]
    assert first.prompt == "ハルヒ waves" and first.fps == 12.5 and first.id == "a"
    assert first.video.kind == "frames" and np.array_equal(first.video.value, frames)
    assert np.shares_memory(first.video.value, np.frombuffer(body, np.uint8))  # a view of the body
    assert first.guides[0][1] == 0.5 and np.array_equal(first.guides[0][0].value, frames[0])
    assert bytes(first.guides[1][0].value) == png_bytes and first.guides[1][1] is None
    assert np.array_equal(parsed.items[1].video.value, frames)  # TCHW → THWC
    assert bytes(parsed.items[2].video.value) == data and bytes(parsed.items[3].video.value) == data
    via_json = decode_json(encode_json(items), Limits())
    assert np.array_equal(via_json.items[0].video.value, frames)
    assert bytes(via_json.items[2].video.value) == data


def test_limits_are_checked_from_the_header_before_any_blob(clip):
    frames = clip[2]
    limits = Limits(max_frames=10, max_batch=2, max_pixels=64 * 96)
    body = b"".join(bytes(c) for c in encode_binary([{"video": frames}]))
    with pytest.raises(PayloadError, match="17 frames exceed") as info:
        decode_binary(body[: len(body) - frames.nbytes + 10], limits)  # blob truncated: limits come first
    assert info.value.status == 413
    with pytest.raises(PayloadError, match="batch of 3") as info:
        decode_binary(b"".join(bytes(c) for c in encode_binary([{"video": frames[:2]}] * 3)), limits)
    assert info.value.status == 413
    big = np.zeros((2, 65, 96, 3), np.uint8)
    with pytest.raises(PayloadError, match="pixels") as info:
        decode_binary(b"".join(bytes(c) for c in encode_binary([{"video": big}])), limits)
    assert info.value.status == 413


@pytest.mark.parametrize("body, message", [
    (pickle.dumps({"images": [b"x"], "prompts": ["p"]}), "bad magic"),
    (b"ANIBRW\x00\x02" + (2).to_bytes(4, "little") + b"{}", "version 2"),
    (b"ANIBRW\x00\x01" + (100).to_bytes(4, "little") + b"{}", "body ends first"),
    (b"ANIBRW\x00\x01" + (3).to_bytes(4, "little") + b"{x}", "not valid UTF-8 JSON"),
    (b"ANIBRW\x00\x01" + (2).to_bytes(4, "little") + b"{}", "non-empty 'items'"),
])
def test_malformed_binary_bodies(body, message):
    with pytest.raises(PayloadError, match=message) as info:
        decode_binary(body, Limits())
    assert info.value.status == 422


def test_malformed_descriptors():
    def header(item):
        import json

        text = json.dumps({"items": [item]}).encode()
        return b"ANIBRW\x00\x01" + len(text).to_bytes(4, "little") + text + bytes(12)

    cases = [
        ({"video": {"format": "raw", "shape": [2, 2, 1, 3], "offset": 0, "length": 11}}, "11 bytes for shape"),
        ({"video": {"format": "raw", "shape": [2, 2, 1, 3], "offset": 8, "length": 12}}, "beyond the data section"),
        ({"video": {"format": "raw", "shape": [2, 2, 2, 2], "offset": 0, "length": 16}}, "3 colour channels"),
        ({"video": {"format": "raw", "shape": [2, 2, 1, 3], "dtype": "float32", "offset": 0, "length": 12}}, "uint8"),
        ({"video": {"format": "gif", "offset": 0, "length": 1}}, "format must be"),
        ({"video": {"offset": -1, "length": 1}}, "non-negative"),
        ({"video": {"offset": 0, "length": 4}, "fps": "fast"}, "fps"),
        ({"video": {"offset": 0, "length": 4}, "guides": [{"image": {"offset": 0, "length": 1}, "position": 2}]},
         "position"),
        ({"video": {"path": "/etc/passwd"}}, "does not read files by path"),
    ]
    for item, message in cases:
        with pytest.raises(PayloadError, match=message):
            decode_binary(header(item), Limits())


def test_paths_only_under_allowed_roots(clip, tmp_path):
    path = clip[0]
    allowed = decode_json({"items": [{"video": {"path": str(path)}}]}, Limits(), allowed_roots=[path.parent])
    assert allowed.items[0].video.kind == "path"
    with pytest.raises(PayloadError, match="outside the folders"):
        decode_json({"items": [{"video": {"path": str(path.parent / ".." / "x.mp4")}}]}, Limits(),
                    allowed_roots=[path.parent])
    with pytest.raises(PayloadError, match="base64"):
        decode_json({"items": [{"video": {"data": "%%%"}}]}, Limits())


def test_guide_image_bytes_decode_like_files(service, clip):
    path, _, frames, png, png_bytes = clip
    buffer = io.BytesIO()
    Image.fromarray(frames[0]).convert("L").save(buffer, format="PNG")  # grayscale: refused with a reason
    batch = service.score([{"video": path, "guides": [buffer.getvalue()]}, {"video": path, "guides": [png_bytes]}])
    assert "gray" in batch.items[0].error["message"].lower() and batch.items[1].ok


def test_warmup_loads_families_up_front(service):
    assert service.warmup() == []  # weight-free scorers: nothing to load

    from anibench.errors import MissingWeightsError

    with RewardService(["vbench.subject_consistency"]) as svc, pytest.raises(MissingWeightsError):
        svc.warmup()  # no weights in the test cache: the server would refuse to start with this message
