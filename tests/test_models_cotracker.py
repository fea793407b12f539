"""CoTracker2 (anibench.models.cotracker): the published checkpoint format through the converter, bad files,
and the predictor step VBench calls. A small CoTracker2 (tests/parity/weights_cotracker.py TINY_SIZES) keeps
these cheap; the full-size network is checked against VBench's own run in tests/test_vbench_camera_motion.py."""

from __future__ import annotations

import json

import pytest
import torch

from anibench.errors import InputError
from anibench.models import cotracker as ct

from parity.weights_cotracker import (
    TINY_SIZES, cotracker2_recipe, cotracker2_state_dict, position_embedding, time_embedding,
    write_cotracker2_checkpoint,
)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Small networks run faster on one thread, and on the shared 2-core machine two intra-op threads spin
    against other processes (a tiny tracker took 7 s on two threads, 0.1 s on one). Restored afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def tiny_state():
    return cotracker2_state_dict(0, **TINY_SIZES)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    return write_cotracker2_checkpoint(tmp_path_factory.mktemp("cotracker") / "cotracker2.pth", 0, **TINY_SIZES)


def _video(frames: int = 9, height: int = 48, width: int = 80, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(frames, 3, height, width, generator=generator) * 255).round()


def test_the_published_layout_is_321_tensors_and_45_5m_values():
    layout = ct.expected_layout(ct.CoTracker2Config())
    assert len(layout) == 321
    assert layout["time_emb"] == (1, 8, 456) and layout["pos_emb"] == (1, 456, 96, 128)
    assert layout["updateformer.virual_tracks"] == (1, 64, 1, 384)  # the published key keeps co-tracker's spelling
    learned = {name: shape for name, shape, _, _ in cotracker2_recipe()}
    assert learned == {k: v for k, v in layout.items() if k not in ("time_emb", "pos_emb")}
    assert sum(torch.Size(s).numel() for s in learned.values()) == 45_458_787


def test_the_config_is_read_from_the_tensors(tiny_state):
    config = ct.config_from_state(tiny_state)
    assert config == ct.CoTracker2Config(model_resolution=(64, 96), latent_dim=32, hidden_size=96, time_depth=2,
                                         space_depth=2, num_virtual_tracks=8)
    assert config.num_heads == 2 and config.input_dim == 360


def test_converter_round_trip_gives_the_same_tracks(tiny_checkpoint, tiny_state, tmp_path):
    ct.convert_published(tiny_checkpoint, tmp_path / "converted")
    written = json.loads((tmp_path / "converted" / ct.CONFIG_FILE).read_text())
    assert written["architecture"] == "CoTracker2" and written["model_resolution"] == [64, 96]
    loaded = ct.load_cotracker2(tmp_path / "converted")
    direct = ct.CoTracker2(ct.config_from_state(tiny_state))
    direct.load_state_dict(tiny_state)
    resized = ct.resize_frames(_video(), (64, 96))
    assert torch.equal(ct.track_grid(loaded, resized, 10, 48, 80), ct.track_grid(direct.eval(), resized, 10, 48, 80))


def test_a_training_checkpoint_under_model_is_accepted(tiny_state, tmp_path):
    torch.save({"model": tiny_state}, tmp_path / "wrapped.pth")
    config, state = ct.read_published(tmp_path / "wrapped.pth")
    assert config.latent_dim == 32 and state.keys() == tiny_state.keys()


@pytest.mark.parametrize("damage, message", [
    (lambda s: {k: v for k, v in s.items() if k != "fnet.conv2.bias"}, "missing fnet.conv2.bias"),
    (lambda s: {**s, "updateformer.extra.weight": torch.zeros(2)}, "unexpected updateformer.extra.weight"),
    (lambda s: {**s, "norm.weight": torch.zeros(7)}, "wrong shapes norm.weight"),
    (lambda s: {"cls_token": torch.zeros(1, 1, 768), "pos_embed": torch.zeros(1, 197, 768)}, "no CoTracker2 layout"),
])
def test_another_architecture_is_refused_naming_the_file(tiny_state, tmp_path, damage, message):
    path = tmp_path / "cotracker2.pth"
    torch.save(damage(dict(tiny_state)), path)
    with pytest.raises(InputError, match=message) as caught:
        ct.convert_published(path, tmp_path / "out")
    assert str(path) in str(caught.value)


def test_a_truncated_checkpoint_is_refused(tiny_checkpoint, tmp_path):
    path = tmp_path / "cotracker2.pth"
    path.write_bytes(tiny_checkpoint.read_bytes()[:5000])
    with pytest.raises(InputError, match="cannot read the CoTracker2 checkpoint") as caught:
        ct.convert_published(path, tmp_path / "out")
    assert str(path) in str(caught.value)


def test_the_sincos_buffers_follow_co_trackers_formulas():
    """time_emb[t, k] = sin(t·ω_k) for k < D/2, cos after; pos_emb's first half encodes x, the second y."""
    time = time_embedding(8, 4)[0]
    omega = 1 / 10000 ** (torch.arange(4, dtype=torch.float64) / 4)
    assert torch.allclose(torch.from_numpy(time[3, :4]).double(), torch.sin(3 * omega), atol=1e-7)
    assert torch.allclose(torch.from_numpy(time[3, 4:]).double(), torch.cos(3 * omega), atol=1e-7)
    position = torch.from_numpy(position_embedding(8, 2, 3))[0]  # (8, h=2, w=3); each half is a 4-wide embedding
    half = 1 / 10000 ** (torch.arange(2, dtype=torch.float64) / 2)
    assert torch.allclose(position[:4, 1, 2].double(), torch.cat([torch.sin(2 * half), torch.cos(2 * half)]),
                          atol=1e-7)  # x = 2
    assert torch.allclose(position[4:, 1, 2].double(), torch.cat([torch.sin(1 * half), torch.cos(1 * half)]),
                          atol=1e-7)  # y = 1


def test_grid_points_leave_a_margin_of_a_64th_of_the_width_on_both_axes():
    points = ct.grid_points(10, (384, 512))
    assert points.shape == (100, 2)
    assert points[0].tolist() == [8.0, 8.0] and points[9].tolist() == [504.0, 8.0]  # row-major: x varies first
    assert points[99].tolist() == [504.0, 376.0]
    assert torch.allclose(points[1], torch.tensor([8 + 496 / 9, 8.0]))


def test_flow_embedding_interleaves_sin_and_cos():
    flows = torch.tensor([[[0.5, -0.25]]])
    embedded = ct.flow_embedding(flows, 4)  # frequencies 0 and 2·1000/4 = 500
    expected = [0.5, -0.25, 0.0, 1.0, torch.sin(torch.tensor(250.0)).item(), torch.cos(torch.tensor(250.0)).item(),
                0.0, 1.0, torch.sin(torch.tensor(-125.0)).item(), torch.cos(torch.tensor(-125.0)).item()]
    assert torch.allclose(embedded[0, 0], torch.tensor(expected), atol=1e-6)


def test_track_grid_starts_at_the_scaled_grid_and_refuses_too_short_clips(tiny_state):
    model = ct.CoTracker2(ct.config_from_state(tiny_state))
    model.load_state_dict(tiny_state)
    model.eval()
    tracks = ct.track_grid(model, ct.resize_frames(_video(6), (64, 96)), 4, 48, 80)
    assert tracks.shape == (6, 16, 2) and tracks.dtype == torch.float32
    scale = torch.tensor([79 / 95, 47 / 63])
    assert torch.allclose(tracks[0], ct.grid_points(4, (64, 96)) * scale)
    assert model.min_frames == 5
    with pytest.raises(ValueError, match="at least 5 frames"):
        ct.track_grid(model, ct.resize_frames(_video(4), (64, 96)), 4, 48, 80)


def test_frames_are_resized_bilinearly_with_aligned_corners():
    ramp = torch.arange(5.0).view(1, 1, 1, 5).expand(1, 3, 2, 5)
    resized = ct.resize_frames(ramp, (2, 9))
    assert torch.allclose(resized[0, 0, 0], torch.arange(9.0) / 2)  # corners kept: 0 and 4 at both ends
