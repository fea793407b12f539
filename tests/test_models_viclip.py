"""ViCLIP: the network's keys against the published layout, the converter and loader on seeded checkpoints
written in the published format (``torch.save({'model': state_dict})``), and bad files."""

from __future__ import annotations

import json

import pytest
import torch

from anibench.errors import InputError, MissingWeightsError
from anibench.models import viclip

from parity.weights_viclip import FULL, MICRO, SMALL, viclip_recipe, viclip_state_dict, write_viclip_checkpoint


def _arch(size: dict) -> viclip.ViCLIPArchitecture:
    patch = size.get("patch", 14)
    return viclip.ViCLIPArchitecture(
        vision_width=size["vision_width"], vision_layers=size["vision_layers"], patch=patch, image_size=224,
        frames=8, embed_dim=size["embed_dim"], text_width=size["text_width"], text_layers=size["text_layers"],
        context_length=32, vocab_size=49408, text_embed_dim=size["text_embed_dim"],
    )  # fmt: skip


def test_full_size_recipe_is_vbenchs_l14():
    assert _arch(FULL) == viclip.VICLIP_L14


@pytest.mark.parametrize("size", [FULL, SMALL, MICRO], ids=["full", "small", "micro"])
def test_module_keys_and_shapes_are_the_published_layout_key_by_key(size):
    """The network (built on the meta device: no memory) has exactly the checkpoint's keys and shapes."""
    arch = _arch(size)
    with torch.device("meta"):
        model = viclip.ViCLIP(arch)
    module_shapes = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    expected = viclip.expected_shapes(arch)
    recipe = {name: tuple(shape) for name, shape, _, _ in viclip_recipe(size)}
    assert module_shapes == expected == recipe


@pytest.fixture(scope="module")
def micro_file(tmp_path_factory):
    return write_viclip_checkpoint(tmp_path_factory.mktemp("viclip") / "ViClip-micro.pth", MICRO, seed=3)


def test_converter_round_trip_is_exact(micro_file, tmp_path):
    arch = viclip.convert_checkpoint(micro_file, tmp_path / "converted")
    assert arch == _arch(MICRO)
    config = json.loads((tmp_path / "converted" / viclip.CONFIG_FILE).read_text())
    assert config["architecture"]["patch"] == 28
    model = viclip.load_viclip(tmp_path / "converted")
    assert not model.training and model.vision_encoder.frames == 8
    original = viclip_state_dict(MICRO, seed=3)
    loaded = model.state_dict()
    assert set(loaded) == set(original)
    for key, tensor in original.items():
        assert torch.equal(loaded[key], tensor), key
    # The causal text mask is rebuilt (it is not in the checkpoint).
    assert torch.equal(model.text_encoder.attn_mask, torch.full((32, 32), float("-inf")).triu(1))


def test_encoders_give_one_row_per_input(micro_file, tmp_path):
    viclip.convert_any_size(micro_file, tmp_path / "converted")
    model = viclip.load_viclip(tmp_path / "converted")
    videos = torch.randn(2, 8, 3, 224, 224)
    rows = viclip.video_embeddings(model, videos)
    assert rows.shape == (2, 32)
    single = viclip.video_embeddings(model, videos[1:])
    assert torch.allclose(rows[1:], single, atol=1e-5)  # batching does not change a video's embedding
    text = viclip.text_embeddings(model, [viclip.tokenize("a cat").ids, viclip.tokenize("a dog").ids])
    assert text.shape == (2, 32) and not torch.allclose(text[0], text[1])
    with pytest.raises(ValueError, match="8 frames"):
        viclip.video_embeddings(model, torch.randn(1, 4, 3, 224, 224))


def test_published_converter_refuses_another_architecture(micro_file, tmp_path):
    with pytest.raises(InputError, match=r"another architecture: vision_width 64 \(expected 1024\)") as error:
        viclip.convert_published(micro_file, tmp_path / "converted")
    assert str(micro_file) in str(error.value)
    assert not (tmp_path / "converted" / viclip.WEIGHTS_FILE).exists()


def test_checkpoint_without_the_model_entry_is_refused(tmp_path):
    bare = tmp_path / "bare.pth"
    torch.save(viclip_state_dict(MICRO), bare)  # a plain state dict: VBench's ['model'] would fail too
    with pytest.raises(InputError, match=r"torch.load\(file\)\['model'\]"):
        viclip.convert_any_size(bare, tmp_path / "out")


def test_missing_or_extra_keys_are_named(tmp_path):
    state = viclip_state_dict(MICRO)
    del state["vision_encoder.ln_post.bias"]
    state["vision_encoder.head.weight"] = torch.zeros(2)
    path = tmp_path / "odd.pth"
    torch.save({"model": state}, path)
    with pytest.raises(InputError, match="missing vision_encoder.ln_post.bias; unexpected vision_encoder.head.weight"):
        viclip.convert_any_size(path, tmp_path / "out")


def test_truncated_and_absent_files_are_clear_errors(micro_file, tmp_path):
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(micro_file.read_bytes()[:5000])
    with pytest.raises(InputError, match="cannot read the ViCLIP checkpoint"):
        viclip.convert_published(truncated, tmp_path / "out")
    with pytest.raises(InputError, match="ViCLIP checkpoint not found"):
        viclip.convert_published(tmp_path / "absent.pth", tmp_path / "out")


class _Payload:
    """An arbitrary Python object: a file holding one is not unpickled."""


def test_files_holding_python_objects_are_not_unpickled(tmp_path):
    path = tmp_path / "objects.pth"
    torch.save({"model": viclip_state_dict(MICRO), "config": _Payload()}, path)
    with pytest.raises(InputError, match="not loaded for safety"):
        viclip.convert_any_size(path, tmp_path / "out")


def test_loading_an_unconverted_folder_says_how_to_convert(tmp_path):
    with pytest.raises(MissingWeightsError, match="anibench weights import viclip_internvid_10m_flt"):
        viclip.load_viclip(tmp_path)
