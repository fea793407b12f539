"""RAFT: the published raft-things.pth layout converted to torchvision's raft_large, and VBench's pre/post-processing.

The flow parity with VBench's own vendored RAFT is checked against the fixture
(tests/parity/fixtures/vbench_dynamic_degree.json, written by
scripts/parity/vbench_dynamic_degree_reference.py): VBench's flows at every 16th pixel of each pair,
on the recipe's seeded weights (tests/parity/weights_raft.py) and clips (tests/parity/clips_raft.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from anibench.errors import InputError, MissingWeightsError
from anibench.models import raft
from anibench.video import Video

from parity.clips_raft import write_raft_clips
from parity.weights_raft import PREFIX, raft_things_state_dict, state_dict_sha256, write_raft_things_checkpoint

FIXTURE = Path(__file__).parent / "parity" / "fixtures" / "vbench_dynamic_degree.json"


@pytest.fixture(scope="module")
def fixture() -> dict:
    return json.loads(FIXTURE.read_text())


@pytest.fixture(scope="module")
def published(tmp_path_factory, fixture) -> tuple[dict, Path]:
    """(state dict, file) of the recipe's seeded full-size raft-things.pth (21 MB, ~1 s)."""
    seed = fixture["recipe"]["weights"]["raft_things"]["seed"]
    state = raft_things_state_dict(seed)
    assert state_dict_sha256(state) == fixture["recipe"]["weights"]["raft_things"]["state_dict_sha256"]
    return state, write_raft_things_checkpoint(tmp_path_factory.mktemp("raft") / "raft-things.pth", seed)


@pytest.fixture(scope="module")
def converted(published, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("raft-converted")
    raft.convert_published(published[1], folder)
    return folder


# --- the converter --------------------------------------------------------------------------


def test_every_published_key_lands_on_raft_large(published, converted):
    state, _ = published
    model = raft.load_raft(converted)
    assert not model.training
    loaded = model.state_dict()
    assert len(loaded) == 169 and len(state) == 179  # the 10 extra published keys: cnet norm3 = downsample.1
    for key, value in state.items():
        name = key[len(PREFIX):]
        twin = name.replace(".norm3.", ".downsample.1.")
        target = raft.torchvision_key(twin)
        assert target is not None, key
        assert torch.equal(loaded[target], value), key
    assert sorted(p.name for p in converted.iterdir()) == [raft.CONVERTED_FILE]


def test_renames_by_hand():
    assert raft.torchvision_key("fnet.conv1.weight") == "feature_encoder.convnormrelu.0.weight"
    assert raft.torchvision_key("cnet.norm1.running_var") == "context_encoder.convnormrelu.1.running_var"
    assert raft.torchvision_key("cnet.layer2.0.downsample.1.bias") == "context_encoder.layer2.0.downsample.1.bias"
    assert raft.torchvision_key("fnet.layer3.1.conv2.bias") == "feature_encoder.layer3.1.convnormrelu2.0.bias"
    assert raft.torchvision_key("update_block.gru.convq2.weight") == \
        "update_block.recurrent_block.convgru2.convq.weight"
    assert raft.torchvision_key("update_block.encoder.conv.bias") == "update_block.motion_encoder.conv.0.bias"
    assert raft.torchvision_key("update_block.mask.2.weight") == "mask_predictor.conv.weight"
    assert raft.torchvision_key("fnet.layer1.0.norm1.weight") is None  # instance norm has no parameters


def test_prefix_and_counters_are_optional(published, tmp_path):
    """VBench strips 'module.' wherever it is; BatchNorm counters are absent from pre-0.4.1 files."""
    state, _ = published
    bare = {k[len(PREFIX):]: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    converted = raft.convert_state_dict(bare, tmp_path / "x.pth")
    assert converted["context_encoder.convnormrelu.1.num_batches_tracked"].item() == 0
    assert torch.equal(converted["mask_predictor.conv.weight"], state[PREFIX + "update_block.mask.2.weight"])


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda s: s.pop(PREFIX + "update_block.mask.0.weight"), "missing mask_predictor.convrelu.0.weight"),
        (lambda s: s.update({PREFIX + "update_block.gru.convz3.weight": torch.zeros(1)}), "unexpected"),
        (lambda s: s.update({PREFIX + "fnet.conv1.weight": torch.zeros(64, 3, 3, 3)}), "wrong shapes"),
        (lambda s: s.update({PREFIX + "cnet.layer3.0.norm3.bias": torch.ones(128)}), "norm3"),
        (lambda s: s.update({PREFIX + "cnet.conv2.bias": [0.0] * 256}), "not a tensor"),
    ],
    ids=["missing", "unexpected", "shape", "norm3-differs", "non-tensor"],
)
def test_other_checkpoints_are_refused_naming_the_file(published, tmp_path, change, message):
    state = dict(published[0])
    change(state)
    path = tmp_path / "raft-things.pth"
    torch.save(state, path)
    with pytest.raises(InputError, match=message) as caught:
        raft.convert_published(path, tmp_path / "out")
    assert str(path) in str(caught.value) and not (tmp_path / "out").exists()


def test_raft_small_is_refused(tmp_path):
    """raft-small.pth (also in models.zip) has other modules: a clear refusal, not a crash."""
    path = tmp_path / "raft-small.pth"
    torch.save({PREFIX + "fnet.conv1.weight": torch.zeros(32, 3, 7, 7),
                PREFIX + "update_block.encoder.convc1.weight": torch.zeros(96, 196, 1, 1)}, path)
    with pytest.raises(InputError, match="not a RAFT"):
        raft.convert_published(path, tmp_path / "out")


def test_truncated_and_missing_files(published, tmp_path):
    truncated = tmp_path / "raft-things.pth"
    truncated.write_bytes(published[1].read_bytes()[:4096])
    with pytest.raises(InputError, match="cannot read"):
        raft.convert_published(truncated, tmp_path / "out")
    with pytest.raises(InputError, match="not found"):
        raft.convert_published(tmp_path / "absent.pth", tmp_path / "out")
    with pytest.raises(MissingWeightsError, match="anibench weights import raft_things"):
        raft.load_raft(tmp_path / "empty")


# --- VBench's padding and pair value --------------------------------------------------------


@pytest.mark.parametrize(
    "size, pads",
    [((128, 160), (0, 0, 0, 0)), ((130, 150), (1, 1, 3, 3)), ((129, 131), (2, 3, 3, 4)), ((480, 854), (1, 1, 0, 0)),
     ((481, 848), (0, 0, 3, 4))],
)
def test_padding_is_inputpadders_sintel_mode(size, pads):
    """pad = (ceil8 - x) % 8, split floor/ceil: left/top get the smaller half."""
    assert raft.padding(*size) == pads
    left, right, top, bottom = pads
    assert raft.padded_size(*size) == (size[0] + top + bottom, size[1] + left + right)


def test_padding_replicates_the_border():
    frames = torch.arange(2 * 3 * 5 * 6, dtype=torch.float32).reshape(2, 3, 5, 6)
    padded = raft.pad_frames(frames)  # 5x6 -> 8x8: left 1, right 1, top 1, bottom 2
    assert padded.shape == (2, 3, 8, 8)
    assert torch.equal(padded[:, :, 1:6, 1:7], frames)
    assert torch.equal(padded[:, :, 0, 1:7], frames[:, :, 0]) and torch.equal(padded[:, :, 7, 1:7], frames[:, :, -1])
    assert torch.equal(padded[:, :, 1:6, 0], frames[:, :, :, 0])


@pytest.mark.parametrize("size", [(120, 300), (300, 118), (64, 96)])
def test_frames_too_small_for_raft_are_refused(size):
    with pytest.raises(InputError, match="at least 128 px"):
        raft.check_frame_size(*size)
    raft.check_frame_size(121, 128)  # pads to 128


def vbench_get_score(flow_field: np.ndarray) -> float:
    """vbench/dynamic_degree.py get_score L46-56, written out."""
    u, v = flow_field[0], flow_field[1]
    rad = np.sqrt(np.square(u) + np.square(v))
    h, w = rad.shape
    cut_index = int(h * w * 0.05)
    return np.mean(abs(np.sort(-rad.flatten()))[:cut_index]).item()


def test_peak_magnitude_by_hand():
    """40 pixels: the top int(40 * 0.05) = 2 magnitudes are 5 (3-4-5) and 2; mean 3.5."""
    field = np.zeros((2, 5, 8), np.float32)
    field[:, 0, 0] = (3, 4)
    field[:, 1, 1] = (0, -2)
    field[:, 2, 2] = (1, 1)
    assert raft.peak_magnitude(field) == 3.5


def test_peak_magnitude_equals_vbenchs_expression_to_the_bit():
    rng = np.random.default_rng(5)
    for shape in [(2, 136, 152), (2, 480, 856), (2, 128, 128)]:
        field = (rng.standard_normal(shape) * rng.uniform(0.5, 30)).astype(np.float32)
        field[:, :10, :10] = 0.0  # ties
        assert raft.peak_magnitude(field) == vbench_get_score(field)


# --- flow parity with VBench's vendored RAFT on the same weights --------------------------------


def test_flow_equals_vbenchs_raft(fixture, converted, tmp_path):
    """First pair of two clips (one padded on both sides): the flow at every 16th pixel and the pair value.

    (Every pair's value of every clip is compared through the scorer in test_vbench_dynamic_degree.py.)"""
    model = raft.load_raft(converted)
    clips = write_raft_clips(tmp_path)
    step = fixture["recipe"]["flow_grid_step"]
    worst = 0.0
    for video in [v for v in fixture["videos"] if v["name"] in ("pan_160x128", "padded_150x130_24fps")]:
        frames = Video.read(clips[video["name"]]["video"]).frames
        pair = video["pairs"][0]
        first = torch.from_numpy(frames[0:1]).permute(0, 3, 1, 2)
        second = torch.from_numpy(frames[video["stride"]:video["stride"] + 1]).permute(0, 3, 1, 2)
        field = raft.flow(model, first, second)[0].numpy()
        assert list(field.shape[-2:]) == pair["padded_shape"]
        grid = field[:, ::step, ::step].reshape(2, -1)
        worst = max(worst, float(np.abs(grid - np.array(pair["flow_grid"])).max()))
        assert raft.peak_magnitude(field) == pytest.approx(pair["motion"], abs=fixture["recipe"]["tolerance"])
        assert float(np.abs(field).astype(np.float64).sum()) == pytest.approx(pair["flow_sum_abs"], rel=1e-5)
    assert worst <= 1e-4, worst  # the grid is stored to 6 decimals
