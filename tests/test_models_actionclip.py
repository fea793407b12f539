"""ActionCLIP (AnimeReward visual motion): the converter round trip key by key, the adapter against a hand-written
OpenAI-layout implementation, the score formula by hand, the tokenizer, and bad checkpoints."""

from __future__ import annotations

import math
import sys
import types
from pathlib import Path

import pytest
import torch
from torch import nn

from anibench.errors import InputError, MissingWeightsError
from anibench.models import actionclip as ac

from parity.weights_actionclip import MICRO, SMALL, actionclip_state_dict, write_actionclip_checkpoint


@pytest.fixture(scope="module")
def micro(tmp_path_factory):
    root = tmp_path_factory.mktemp("actionclip-micro")
    source = write_actionclip_checkpoint(root / "testvl-micro.pth", MICRO, seed=3)
    ac.convert_any_size(source, root / "converted")
    return source, root / "converted"


def test_converter_round_trips_the_published_state_dict_key_by_key(micro):
    source, folder = micro
    published = actionclip_state_dict(MICRO, seed=3)
    model = ac.load_actionclip(folder)
    state = model.state_dict()
    assert list(state) == list(published) or set(state) == set(published)
    for key, value in published.items():
        assert torch.equal(state[key], value), key
    arch = model.arch
    assert (arch.vision_width, arch.patch, arch.embed_dim, arch.text_width, arch.segments, arch.adapter_layers) == (
        64, 32, 32, 64, 8, 1)
    assert not model.training


def test_adapter_heads_follow_the_text_width_not_the_embedding():
    """adapter.py:16-18: width = text_projection's output (embed_dim), heads = ln_final width // 64."""
    arch = ac.ActionClipArchitecture(vision_width=128, vision_layers=2, patch=16, image_size=224, embed_dim=64,
                                     text_width=128, text_layers=2, context_length=77, vocab_size=49408, segments=8,
                                     adapter_layers=2)  # fmt: skip
    with torch.device("meta"):
        model = ac.ActionClip(arch)
    block = model.adapter.transformer.resblocks[0]
    assert block.attn.num_heads == 2 and block.attn.embed_dim == 64


class _OpenAIBlock(nn.Module):
    """clip.model.ResidualAttentionBlock written out: sequence-first nn.MultiheadAttention, QuickGELU MLP."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads)
        self.ln_1 = nn.LayerNorm(width)
        self.mlp = nn.Sequential()
        self.mlp.add_module("c_fc", nn.Linear(width, 4 * width))
        self.mlp.add_module("c_proj", nn.Linear(4 * width, width))
        self.ln_2 = nn.LayerNorm(width)

    def forward(self, x):
        y = self.ln_1(x)
        x = x + self.attn(y, y, y, need_weights=False)[0]
        h = self.mlp.c_fc(self.ln_2(x))
        return x + self.mlp.c_proj(h * torch.sigmoid(1.702 * h))


def test_adapter_equals_the_published_computation_by_hand():
    """x + transformer(x + pos) (sequence-first in the published code), residual without pos, mean over frames."""
    state = actionclip_state_dict(SMALL, seed=5)
    arch = ac.ActionClipArchitecture(vision_width=128, vision_layers=2, patch=16, image_size=224, embed_dim=64,
                                     text_width=128, text_layers=2, context_length=77, vocab_size=49408, segments=8,
                                     adapter_layers=2)  # fmt: skip
    adapter = ac.TemporalAdapter(arch)
    adapter.load_state_dict({k[len("adapter."):]: v for k, v in state.items() if k.startswith("adapter.")})
    blocks = [_OpenAIBlock(64, 2) for _ in range(2)]
    for i, block in enumerate(blocks):
        prefix = f"adapter.transformer.resblocks.{i}."
        block.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
    frames = torch.randn(3, 8, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        x = (frames + state["adapter.frame_position_embeddings.weight"][None]).transpose(0, 1)
        for block in blocks:
            x = block(x)
        expected = (x.transpose(0, 1) + frames).mean(dim=1)
        assert torch.allclose(adapter(frames), expected, atol=1e-5)
    with pytest.raises(ValueError, match="8 frame positions"):
        adapter(torch.zeros(1, 9, 64))


def test_score_is_the_softmax_of_100_cosines_by_hand():
    even = ac.motion_score(torch.tensor([1.0, 0.0]), torch.tensor([[1.0, 1.0], [1.0, -1.0]]))
    assert even.value == pytest.approx(0.5) and even.cosines == pytest.approx((math.sqrt(0.5),) * 2)
    # cosines 0.6 and 0.8: P(first) = 1 / (1 + exp(100 * 0.2))
    tilted = ac.motion_score(torch.tensor([3.0, 4.0]), torch.tensor([[2.0, 0.0], [0.0, 5.0]]))
    assert tilted.value == pytest.approx(1 / (1 + math.exp(20.0)), rel=1e-4)
    assert tilted.probabilities[0] + tilted.probabilities[1] == pytest.approx(1.0)
    # 0.01 apart in cosine: 100 * 0.01 = 1 logit
    near = ac.motion_score(torch.tensor([1.0, 0.0, 0.0]), torch.tensor([[0.51, math.sqrt(1 - 0.51**2), 0],
                                                                        [0.50, 0.0, math.sqrt(0.75)]]))
    assert near.value == pytest.approx(1 / (1 + math.exp(-1.0)), abs=1e-5)


def test_tokenizer_pads_to_77_and_refuses_longer_texts():
    ids = ac.tokenize(ac.MOTION_PROMPTS[1])
    assert len(ids) == 77 and ids[0] == ac.SOT_TOKEN and ac.EOT_TOKEN in ids and ids[-1] == 0
    with pytest.raises(InputError, match="longer than CLIP's context of 77"):
        ac.tokenize("move " * 80)


# --- bad checkpoints -------------------------------------------------------------------------------------


def test_published_converter_refuses_another_architecture(micro, tmp_path):
    source, _ = micro
    with pytest.raises(InputError, match="another architecture: vision_width 64 \\(expected 768\\)"):
        ac.convert_published(source, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_missing_truncated_and_foreign_files_are_named(micro, tmp_path):
    source, _ = micro
    with pytest.raises(InputError, match="checkpoint not found"):
        ac.convert_any_size(tmp_path / "absent.pth", tmp_path / "a")
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(source.read_bytes()[: 50_000])
    with pytest.raises(InputError, match="cannot read") as error:
        ac.convert_any_size(truncated, tmp_path / "b")
    assert "truncated.pth" in str(error.value)
    plain_clip = tmp_path / "ViT-B-16-like.pth"
    state = actionclip_state_dict(MICRO)
    torch.save({"state_dict": {k[len("clip."):]: v for k, v in state.items() if k.startswith("clip.")}}, plain_clip)
    with pytest.raises(InputError, match="plain CLIP file without the clip./adapter. prefixes"):
        ac.convert_any_size(plain_clip, tmp_path / "c")
    viclip_like = tmp_path / "viclip-like.pth"
    torch.save({"model": state}, viclip_like)
    with pytest.raises(InputError, match=r"reads torch.load\(file\)\['state_dict'\] and the file holds model"):
        ac.convert_any_size(viclip_like, tmp_path / "d")
    no_adapter_layer = dict(state)
    del no_adapter_layer["adapter.transformer.resblocks.0.mlp.c_fc.bias"]
    torch.save({"state_dict": no_adapter_layer}, tmp_path / "partial.pth")
    with pytest.raises(InputError, match="missing adapter.transformer.resblocks.0.mlp.c_fc.bias"):
        ac.convert_any_size(tmp_path / "partial.pth", tmp_path / "e")


def test_a_converted_folder_missing_names_the_import_command(tmp_path):
    with pytest.raises(MissingWeightsError, match="anibench weights import anime_reward_actionclip"):
        ac.load_actionclip(tmp_path / "nothing-here")


class _FakeHistoryBuffer:
    def __init__(self):
        self._log_history = [0.5, 0.25]


class _Payload:
    """Would run a shell command if it were unpickled unrestricted."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.marker}",)


def test_training_state_objects_are_stepped_over_without_running_anything(tmp_path):
    """An mmengine runner checkpoint also pickles message_hub objects; they load as inert stand-ins. A global that
    would run code (os.system) is never called: torch refuses its module outright, and so does the reader."""
    names = ("mmengine", "mmengine.logging", "mmengine.logging.history_buffer")
    assert not any(name in sys.modules for name in names)  # mmengine is not installed in anibench's venv
    modules = {name: types.ModuleType(name) for name in names}
    module = modules[names[-1]]
    _FakeHistoryBuffer.__module__ = module.__name__
    _FakeHistoryBuffer.__qualname__ = "HistoryBuffer"
    module.HistoryBuffer = _FakeHistoryBuffer
    marker = tmp_path / "ran"
    sys.modules.update(modules)
    try:
        checkpoint = {"meta": {"epoch": 3}, "state_dict": actionclip_state_dict(MICRO),
                      "message_hub": {"log_scalars": {"train/loss": _FakeHistoryBuffer()}}}  # fmt: skip
        torch.save(checkpoint, tmp_path / "runner.pth")  # torch.save's default protocol, as mmengine saves
        torch.save({**checkpoint, "extra": _Payload(marker)}, tmp_path / "hostile.pth")
    finally:
        for name in names:
            del sys.modules[name]
    state, stepped_over = ac.read_checkpoint(tmp_path / "runner.pth")
    assert stepped_over == ["mmengine.logging.history_buffer.HistoryBuffer"]
    assert set(state) == set(actionclip_state_dict(MICRO))
    with pytest.raises(InputError, match="refusing the .* checkpoint: it pickles a global that is never loaded") as error:
        ac.read_checkpoint(tmp_path / "hostile.pth")
    assert "system" in str(error.value) and "hostile.pth" in str(error.value)
    assert not marker.exists()
    ac.convert_any_size(tmp_path / "runner.pth", tmp_path / "converted")
    assert ac.load_actionclip(tmp_path / "converted").arch.adapter_layers == 1
