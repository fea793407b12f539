"""AniSora V1 on diffusers (anibench.models.cogvideox_anisora): guide slots, image fitting, SAT conversion, generation.

Reference formulas are written out here from bilibili/Index-anisora @ 171fe63,
anisoraV1_infer/fastercache_sample_cogvideox_sp.py (guide concatenation l.690-750, resize_for_rectangle_crop
l.104-130). Models are tiny and random (tests/parity/tiny_cogvideox.py), saved and loaded back through the real code.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from parity.tiny_cogvideox import HEAD_DIM, HIDDEN, sat_shapes, write_tiny_cogvideox_base, write_tiny_sat_checkpoint

from anibench.errors import InputError
from anibench.models import cogvideox_anisora as cog

SAT_PREFIX = "model.diffusion_model."


# --- guide placement -------------------------------------------------------------------------------------------


def anisora_concat(num_guides: int, t: int) -> list[str]:
    """The latent sequence AniSora concatenates, one label per latent frame ('0' = zeros)."""
    if num_guides == 1:
        return ["first"] + ["0"] * (t - 1)
    if num_guides == 2:
        return ["first"] + ["0"] * (t - 2) + ["second"]
    before, after = (t - 3) // 2, t - 3 - (t - 3) // 2
    return ["first"] + ["0"] * before + ["mid"] + ["0"] * after + ["last"]


@pytest.mark.parametrize("num_guides", [1, 2, 3])
def test_latent_slots_follow_anisora_concatenation(num_guides: int) -> None:
    for t in range(num_guides, 30):
        sequence = anisora_concat(num_guides, t)
        assert len(sequence) == t
        expected = tuple(index for index, label in enumerate(sequence) if label != "0")
        assert cog.v1_latent_slots(num_guides, t) == expected


def test_guide_frames_and_errors() -> None:
    assert cog.v1_guide_frames(3, 49) == (0, 24, 48)
    assert cog.v1_guide_frames(2, 49) == (0, 48)
    assert cog.v1_guide_frames(3, 97) == (0, 48, 96)
    assert cog.v1_guide_frames(1, 17) == (0,)
    assert cog.v1_guide_frames(3, 17) == (0, 8, 16)
    for bad in (0, 4):
        with pytest.raises(InputError, match="1 to 3 guide"):
            cog.v1_latent_slots(bad, 13)
    with pytest.raises(InputError, match="at least 3 latent"):
        cog.v1_latent_slots(3, 2)


def test_snap_num_frames() -> None:
    snapped = [cog.snap_num_frames(n) for n in (1, 5, 9, 10, 11, 12, 48, 49, 50, 97)]
    assert snapped == [5, 5, 9, 9, 9, 13, 49, 49, 49, 97]
    assert all((cog.snap_num_frames(n) - 1) % 4 == 0 for n in range(1, 200))
    with pytest.raises(InputError):
        cog.snap_num_frames(0)


def anisora_fit(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """AniSora's ToTensor + resize_for_rectangle_crop(reshape_mode='center'), with torchvision as AniSora uses it."""
    import torchvision.transforms as TT
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms.functional import resize

    arr = TT.ToTensor()(image).unsqueeze(0)
    if arr.shape[3] / arr.shape[2] > width / height:
        size = [height, int(arr.shape[3] * height / arr.shape[2])]
    else:
        size = [int(arr.shape[2] * width / arr.shape[3]), width]
    arr = resize(arr, size=size, interpolation=InterpolationMode.BICUBIC)
    h, w = arr.shape[2], arr.shape[3]
    arr = arr.squeeze(0)
    top, left = (h - height) // 2, (w - width) // 2
    arr = TT.functional.crop(arr, top=top, left=left, height=height, width=width)
    return arr.permute(1, 2, 0).numpy()


@pytest.mark.parametrize("shape", [(90, 160), (160, 90), (45, 80), (37, 203), (720, 1280)])
def test_fit_v1_image_matches_anisora_resize_and_crop(shape: tuple[int, int]) -> None:
    image = np.random.default_rng(sum(shape)).integers(0, 256, (*shape, 3), dtype=np.uint8)
    fitted = cog.fit_v1_image(image, 48, 80)
    assert fitted.shape == (48, 80, 3) and fitted.dtype == np.float32
    np.testing.assert_allclose(fitted, anisora_fit(image, 48, 80), atol=1e-6)
    with pytest.raises(InputError, match="uint8"):
        cog.fit_v1_image(image.astype(np.float32), 48, 80)


# --- SAT conversion --------------------------------------------------------------------------------------------


def converted_state(folder: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    from diffusers import CogVideoXTransformer3DModel

    model = CogVideoXTransformer3DModel.from_pretrained(str(folder))
    return dict(model.config), {key: value for key, value in model.state_dict().items()}


def test_sat_conversion_key_by_key(tmp_path: Path) -> None:
    sat_file = write_tiny_sat_checkpoint(tmp_path / "5B" / "transformer" / "1" / "mp_rank_00_model_states.pt")
    cog.convert_transformer(tmp_path / "5B", tmp_path / "converted")
    config, out = converted_state(tmp_path / "converted")
    sat = {key[len(SAT_PREFIX):]: value for key, value in torch.load(sat_file, weights_only=True)["module"].items()}
    assert cog.CONVERTER_VERSION == "1"
    assert (config["num_attention_heads"], config["attention_head_dim"], config["num_layers"]) == (2, HEAD_DIM, 2)
    widths = (config["in_channels"], config["out_channels"], config["time_embed_dim"], config["text_embed_dim"])
    assert widths == (8, 4, 2, 32)
    assert config["use_rotary_positional_embeddings"] and not config["use_learned_positional_embeddings"]
    assert (config["sample_height"], config["sample_width"], config["max_text_seq_length"]) == (4, 4, 16)  # config.json

    renames = {
        "time_embed.0": "time_embedding.linear_1", "time_embed.2": "time_embedding.linear_2",
        "mixins.patch_embed.proj": "patch_embed.proj", "mixins.patch_embed.text_proj": "patch_embed.text_proj",
        "transformer.final_layernorm": "norm_final", "mixins.final_layer.norm_final": "norm_out.norm",
        "mixins.final_layer.linear": "proj_out", "mixins.final_layer.adaLN_modulation.1": "norm_out.linear",
    }
    expected: dict[str, torch.Tensor] = {}
    for kind in ("weight", "bias"):
        for old, new in renames.items():
            expected[f"{new}.{kind}"] = sat[f"{old}.{kind}"]
        for i in range(2):
            layer, block, adaln = f"transformer.layers.{i}.", f"transformer_blocks.{i}.", "mixins.adaln_layer."
            qkv = sat[f"{layer}attention.query_key_value.{kind}"]
            for j, name in enumerate(("to_q", "to_k", "to_v")):
                expected[f"{block}attn1.{name}.{kind}"] = qkv[j * HIDDEN:(j + 1) * HIDDEN]
            for old, new in {"input_layernorm": "norm1.norm", "post_attention_layernorm": "norm2.norm",
                             "attention.dense": "attn1.to_out.0", "mlp.dense_h_to_4h": "ff.net.0.proj",
                             "mlp.dense_4h_to_h": "ff.net.2"}.items():
                expected[f"{block}{new}.{kind}"] = sat[f"{layer}{old}.{kind}"]
            expected[f"{block}attn1.norm_q.{kind}"] = sat[f"{adaln}query_layernorm_list.{i}.{kind}"]
            expected[f"{block}attn1.norm_k.{kind}"] = sat[f"{adaln}key_layernorm_list.{i}.{kind}"]
            # 12 chunks: (shift, scale, gate) x (attention, MLP) for video tokens, then the same for text tokens
            chunk = sat[f"{adaln}adaLN_modulations.{i}.1.{kind}"].reshape(12, HIDDEN, -1)
            expected[f"{block}norm1.linear.{kind}"] = chunk[[0, 1, 2, 6, 7, 8]].reshape(6 * HIDDEN, -1).squeeze(-1)
            expected[f"{block}norm2.linear.{kind}"] = chunk[[3, 4, 5, 9, 10, 11]].reshape(6 * HIDDEN, -1).squeeze(-1)
    assert set(out) == set(expected)
    for key, value in expected.items():
        assert torch.equal(out[key], value), key
    dropped = {"mixins.pos_embed.freqs_sin", "mixins.pos_embed.freqs_cos", "transformer.position_embeddings.weight"}
    assert set(sat) - dropped == set(sat_shapes(2)) - dropped  # every trained SAT tensor was read


def test_sat_conversion_defaults_to_anisora_sample_size(tmp_path: Path) -> None:
    sat_file = write_tiny_sat_checkpoint(tmp_path / "mp_rank_00_model_states.pt", num_layers=1, config_beside=False)
    cog.convert_transformer(sat_file, tmp_path / "converted")
    config, _ = converted_state(tmp_path / "converted")
    assert (config["sample_height"], config["sample_width"], config["sample_frames"]) == (90, 160, 49)
    assert (config["max_text_seq_length"], config["num_layers"]) == (226, 1)


SAT_FORWARD = Path(__file__).parent / "parity" / "fixtures" / "anisora_v1" / "sat_dit_forward.safetensors"


def test_converted_dit_matches_anisora_sat_forward(tmp_path: Path) -> None:
    """AniSora's own SAT DiffusionTransformer (tests/parity/reference_anisora_v1.py) vs the converted model."""
    from diffusers import CogVideoXTransformer3DModel
    from diffusers.models.embeddings import get_3d_rotary_pos_embed
    from safetensors import safe_open

    with safe_open(str(SAT_FORWARD), "pt") as fixture:
        reference = {key: fixture.get_tensor(key) for key in fixture.keys()}
        checksum = float(fixture.metadata()["weights_checksum"])
    sat_file = write_tiny_sat_checkpoint(tmp_path / "mp_rank_00_model_states.pt", config_beside=False)
    module = torch.load(sat_file, weights_only=True)["module"]
    assert float(sum(value.double().sum() for value in module.values())) == checksum  # same recipe as the reference
    cog.convert_transformer(sat_file, tmp_path / "converted")
    model = CogVideoXTransformer3DModel.from_pretrained(str(tmp_path / "converted")).eval()
    # SAT's Rotary3DPositionEmbeddingMixin: positions 0..n-1 on the latent grid (3 frames x 2 x 2 patches)
    rotary = get_3d_rotary_pos_embed(HEAD_DIM, crops_coords=((0, 0), (2, 2)), grid_size=(2, 2), temporal_size=3)
    with torch.no_grad():
        out = model(hidden_states=reference["x"], encoder_hidden_states=reference["context"],
                    timestep=reference["timestep"], image_rotary_emb=rotary, return_dict=False)[0]
    torch.testing.assert_close(out, reference["output"], rtol=0, atol=1e-4)


def save_module(path: Path, state: dict[str, torch.Tensor]) -> Path:
    torch.save({"module": state}, path)
    return path


def test_wrong_checkpoints_are_refused(tmp_path: Path) -> None:
    sat = torch.load(write_tiny_sat_checkpoint(tmp_path / "ok.pt", config_beside=False), weights_only=True)["module"]
    wan_like = {"blocks.0.self_attn.q.weight": torch.zeros(4, 4), "patch_embedding.weight": torch.zeros(4, 36, 1, 2, 2)}
    with pytest.raises(InputError, match="without the 'model.diffusion_model.' prefix"):
        cog.convert_transformer(save_module(tmp_path / "wan.pt", wan_like), tmp_path / "out")
    truncated = {key: value for key, value in sat.items() if "layers.1.mlp.dense_4h_to_h.weight" not in key}
    with pytest.raises(InputError, match=r"missing transformer\.layers\.1\.mlp\.dense_4h_to_h\.weight"):
        cog.convert_transformer(save_module(tmp_path / "cut.pt", truncated), tmp_path / "out")
    reshaped = {**sat, SAT_PREFIX + "mixins.patch_embed.text_proj.weight": torch.zeros(HIDDEN, 31)}
    reshaped[SAT_PREFIX + "transformer.layers.0.attention.dense.weight"] = torch.zeros(HIDDEN, HIDDEN + 1)
    with pytest.raises(InputError, match=r"wrong shapes: transformer\.layers\.0\.attention\.dense\.weight"):
        cog.convert_transformer(save_module(tmp_path / "shape.pt", reshaped), tmp_path / "out")
    no_dit = {key: value for key, value in sat.items() if "patch_embed" not in key}
    with pytest.raises(InputError, match="not an AniSora V1 / CogVideoX SAT DiT"):
        cog.convert_transformer(save_module(tmp_path / "nodit.pt", no_dit), tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="expected one mp_rank_00_model_states.pt"):
        cog.convert_transformer(tmp_path / "empty", tmp_path / "out")
    assert not (tmp_path / "out").exists()


# --- generation ------------------------------------------------------------------------------------------------


def tiny_pipeline(tmp_path: Path) -> cog.AniSoraCogVideoXPipeline:
    base = write_tiny_cogvideox_base(tmp_path / "base")
    write_tiny_sat_checkpoint(tmp_path / "sat" / "mp_rank_00_model_states.pt")
    cog.convert_transformer(tmp_path / "sat", tmp_path / "transformer")
    pipe = cog.load_pipeline(base, transformer=tmp_path / "transformer")
    pipe.set_progress_bar_config(disable=True)
    assert pipe.transformer.config.num_layers == 2  # the converted AniSora stand-in, not the base's 1-layer one
    return pipe


def guides(seed: int, count: int = 3) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (40, 56, 3), dtype=np.uint8) for _ in range(count)]


def generate(pipe: cog.AniSoraCogVideoXPipeline, images: list[np.ndarray], seed: int = 0) -> np.ndarray:
    """9 frames = 3 latent frames: the three guides take every slot (0, 1, 2)."""
    return pipe(
        guides=images, prompt="a girl runs", height=32, width=32, num_frames=9, num_inference_steps=2,
        max_sequence_length=16, output_type="np", generator=torch.Generator().manual_seed(seed),
    ).frames


def test_guide_latents_sit_at_anisora_slots(tmp_path: Path) -> None:
    pipe = tiny_pipeline(tmp_path)
    images = torch.from_numpy(np.stack([cog.fit_v1_image(g, 32, 32) for g in guides(3)])).permute(0, 3, 1, 2) * 2 - 1
    for count, slots in ((1, (0,)), (2, (0, 4)), (3, (0, 2, 4))):
        noise, latents = pipe.prepare_latents(
            images[:count], 1, 4, 17, 32, 32, torch.float32, torch.device("cpu"), torch.Generator().manual_seed(5)
        )
        assert noise.shape == latents.shape == (1, 5, 4, 4, 4)
        generator = torch.Generator().manual_seed(5)
        for slot in range(5):
            if slot in slots:
                guide = images[slots.index(slot)]
                encoded = pipe.vae.encode(guide[None, :, None]).latent_dist.sample(generator)[0, :, 0]
                torch.testing.assert_close(latents[0, slot], 0.7 * encoded)
            else:
                assert not latents[0, slot].any()


def test_generation_with_one_two_three_guides(tmp_path: Path) -> None:
    pipe = tiny_pipeline(tmp_path)
    images = guides(1)
    for count in (1, 2):
        video = generate(pipe, images[:count])
        assert video.shape == (1, 9, 32, 32, 3) and np.isfinite(video).all()
    reference = generate(pipe, images)
    assert reference.shape == (1, 9, 32, 32, 3) and np.isfinite(reference).all()
    np.testing.assert_array_equal(generate(pipe, images), reference)  # same seed, same video
    other_middle = [images[0], guides(2)[1], images[2]]  # the middle guide reaches the output (slots: test above)
    assert not np.allclose(generate(pipe, other_middle), reference)
    with pytest.raises(InputError, match="1 to 3 guide"):
        generate(pipe, guides(1, 4))
    with pytest.raises(TypeError, match="guides="):
        pipe(guides=images, image=images[0], prompt="a")


def test_v1_sampler_matches_sat_schedule_and_dynamic_cfg(tmp_path: Path) -> None:
    from diffusers import CogVideoXDPMScheduler

    pipe = tiny_pipeline(tmp_path)
    cog.use_v1_sampler(pipe)
    assert isinstance(pipe.scheduler, CogVideoXDPMScheduler)
    assert pipe.scheduler.config.prediction_type == "v_prediction" and pipe.scheduler.config.snr_shift_scale == 1.0
    pipe.scheduler.set_timesteps(50)
    sat_steps = np.linspace(1000 - 1, 0, 50, endpoint=False).astype(int)  # discretizer.py, sampled high to low
    np.testing.assert_array_equal(pipe.scheduler.timesteps.numpy(), sat_steps)

    seen: list[tuple[float, float]] = []

    def record(pipeline, step, timestep, tensors):  # SAT guiders.py DynamicCFG, step_index = num_steps - timestep
        sat_scale = 1 + 6.0 * (1 - np.cos(np.pi * ((3 - int(timestep)) / 3) ** 5)) / 2
        seen.append((pipeline.guidance_scale, sat_scale))
        return {}

    settings = {**cog.V1_SAMPLING, "num_inference_steps": 3}
    video = pipe(guides=guides(4, 2), prompt="anime city", height=32, width=32, num_frames=9, max_sequence_length=16,
                 output_type="np", generator=torch.Generator().manual_seed(0), callback_on_step_end=record, **settings)
    assert video.frames.shape == (1, 9, 32, 32, 3) and np.isfinite(video.frames).all()
    assert len(seen) == 3
    for used, expected in seen:
        assert used == pytest.approx(expected, rel=1e-12)
