"""AniSora conditioning on diffusers' Wan I2V pipeline (anibench.models.wan_anisora), on tiny random Wan folders.

AniSora's formulas (bilibili/Index-anisora @ 171fe63) are written out here independently of the module:
``anisoraV3/wan/image2video_any.py`` (keyframe msk and video), ``anisora_anymask/wan/image2video_any_mask1_spa.py``
and ``image2video_any_mask1.py`` (masks), ``anisoraV2_gpu/wan/image2video_mdinfer_oss_stu.py`` with
``OSS/model_wrap.py`` (OSS timesteps). The models are tests/parity/tiny_wan.py's, saved and loaded back.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from diffusers import (
    FlowMatchEulerDiscreteScheduler,
    UniPCMultistepScheduler,
    WanImageToVideoPipeline,
    WanTransformer3DModel,
)
from PIL import Image

from anibench.models import wan_anisora as wan
from parity.tiny_wan import BOUNDARY_RATIO, write_tiny_transformer, write_tiny_wan_base

PROMPT = "a cat runs"


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Tiny Wan2.1-like and Wan2.2-like bases and stand-ins for converted AniSora DiTs."""
    root = tmp_path_factory.mktemp("tiny-wan")
    return {
        "wan21": write_tiny_wan_base(root / "wan21"),
        "wan22": write_tiny_wan_base(root / "wan22", wan22=True),
        "dit": write_tiny_transformer(root / "dit"),
        "high": write_tiny_transformer(root / "high", wan22=True, seed=11),
        "low": write_tiny_transformer(root / "low", wan22=True, seed=12),
    }


def _image(seed: int, height: int = 40, width: int = 48) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _load(folders, **kwargs) -> wan.AniSoraWanPipeline:
    pipe = wan.load_pipeline(folders["wan21"], transformer=folders["dit"], **kwargs)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _generate(pipe, condition, seed: int = 0, **kwargs) -> np.ndarray:
    return pipe(condition, prompt=PROMPT, generator=torch.Generator().manual_seed(seed), **kwargs).frames[0]


# --- AniSora's formulas, written out ------------------------------------------------------------------------

def anisora_frame(num_frames: int, position: float) -> int:
    """image2video_any.py: id_ = int((F-1)*pos); id_ = round(id_/8)*8."""
    return round(int((num_frames - 1) * position) / 8) * 8


def anisora_msk(mask: np.ndarray) -> np.ndarray:
    """(F, h, w) latent-grid mask -> (4, T, h, w): repeat frame 0 x4, view (T, 4, h, w), transpose."""
    frames, lat_h, lat_w = mask.shape
    mask = np.concatenate([np.repeat(mask[0:1], 4, axis=0), mask[1:]], axis=0)
    return mask.reshape(mask.shape[0] // 4, 4, lat_h, lat_w).transpose(1, 0, 2, 3)


def anisora_keyframe_msk(num_frames: int, lat_h: int, lat_w: int, ids) -> np.ndarray:
    mask = np.zeros((num_frames, lat_h, lat_w), dtype=np.float32)
    mask[list(ids)] = 1
    return anisora_msk(mask)


def anisora_unit(image: np.ndarray) -> torch.Tensor:
    """TF.to_tensor(img).sub_(0.5).div_(0.5) as (3, H, W)."""
    return torch.from_numpy(image).permute(2, 0, 1).float().div(255).sub(0.5).div(0.5)


def anisora_anymask(first: np.ndarray, keep: np.ndarray, height: int, width: int, temporal: bool):
    """image2video_any_mask1(_spa).py with every source frame = ``first``: (video (3, F, H, W), msk)."""
    frames = keep.shape[0]
    video = anisora_unit(first)[None].repeat(frames, 1, 1, 1)
    binary = torch.from_numpy(keep.astype(np.float32))[:, None].repeat(1, 3, 1, 1)
    if temporal:
        binary[[i for i in range(frames) if i % 8 == 0]] = 1
    else:
        binary[0] = 1
    video = F.interpolate(video, size=(height, width), mode="nearest")
    binary = F.interpolate(binary, size=(height, width), mode="nearest")
    msk = F.interpolate(binary, size=(height // 8, width // 8), mode="bicubic" if temporal else "nearest")[:, 0]
    return (video * binary).transpose(0, 1), anisora_msk(msk.numpy())


# --- conditions --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("num_frames", "positions"), [
    (17, (0,)), (17, (0, 1)), (17, (0, 0.5, 1)), (17, (0.5,)), (81, (0, 0.33, 0.5, 1)), (81, (0, 0.3, 0.62))])
def test_keyframe_condition_matches_anisora(num_frames, positions):
    ids = [anisora_frame(num_frames, p) for p in positions]
    images = [_image(i) for i in range(len(ids))]
    condition = wan.keyframe_condition(images, ids, num_frames, 32, 48)

    expected_video = torch.zeros(3, num_frames, 32, 48)
    for image, frame in zip(images, ids):
        expected_video[:, frame] = F.interpolate(anisora_unit(image)[None], size=(32, 48), mode="bicubic")[0]
    assert torch.equal(condition.video[0], expected_video)
    assert torch.equal(condition.known[0].amax(dim=(1, 2)) > 0, torch.isin(torch.arange(num_frames), torch.tensor(ids)))
    assert torch.equal(condition.known[0].amin(dim=(1, 2)), condition.known[0].amax(dim=(1, 2)))  # whole frames
    assert condition.clip_image is images[0]
    msk = wan.latent_mask(condition.known)
    assert msk.shape == (1, 4, (num_frames - 1) // 4 + 1, 4, 6)
    np.testing.assert_array_equal(msk[0].numpy(), anisora_keyframe_msk(num_frames, 4, 6, ids))


@pytest.mark.parametrize("temporal", [False, True])
def test_motion_mask_condition_matches_anisora(temporal):
    keep = np.random.default_rng(3).random((17, 20, 24)) > 0.5
    first = _image(4, 30, 36)
    condition = wan.motion_mask_condition(first, keep, 17, 32, 48, temporal=temporal)
    video, msk = anisora_anymask(first, keep, 32, 48, temporal)
    assert torch.equal(condition.video[0], video)
    got = wan.latent_mask(condition.known, mode=condition.mask_mode)[0].numpy()
    np.testing.assert_allclose(got, msk, rtol=0, atol=1e-6)
    assert condition.known[0, 0].min() == 1  # frame 0 fully known
    assert (condition.known[0, 8].min() == 1) == temporal


def test_sizes_frames_and_oss_schedule_match_anisora():
    for image_h, image_w, area in [(720, 1280, 720 * 1280), (544, 960, 960 * 544), (1000, 700, 832 * 480),
                                   (333, 517, 1280 * 720)]:
        ratio = image_h / image_w
        lat_h = round(np.sqrt(area * ratio) // 8 // 2 * 2)
        lat_w = round(np.sqrt(area / ratio) // 8 // 2 * 2)
        assert wan.wan_output_size(image_h, image_w, area) == (lat_h * 8, lat_w * 8)

    for n in range(1, 100):
        snapped = wan.snap_num_frames(n)
        candidates = [4 * k + 1 for k in range(1, 30)]
        assert snapped in candidates and abs(snapped - n) == min(abs(c - n) for c in candidates)

    # FlowMatchScheduler(shift=5, sigma_min=0.0, extra_one_step=True).set_timesteps(96, 1.0, shift=5.0)
    sigmas = torch.linspace(1.0, 0.0, 96 + 1)[:-1]
    timesteps = 5.0 * sigmas / (1 + 4.0 * sigmas) * 1000
    # _WrappedModel_Wan: time_steps = flip(cat(timesteps, 0)); infer_OSS evaluates time_steps[oss_steps[i]], i = N..1
    time_steps = torch.flip(torch.cat([timesteps, torch.zeros(1)]), dims=[0])
    oss_steps = [2, 5, 11, 21, 36, 49, 63, 71, 80, 84, 87, 89, 92, 94, 95, 96]
    expected = [float(time_steps[step]) / 1000 for step in reversed(oss_steps)]
    np.testing.assert_allclose(wan.oss_sigmas(5.0), expected, rtol=0, atol=1e-6)


def test_condition_errors():
    with pytest.raises(ValueError, match="one frame per image"):
        wan.keyframe_condition([_image(0)], [0, 8], 17, 32, 32)
    with pytest.raises(ValueError, match="outside"):
        wan.keyframe_condition([_image(0)], [17], 17, 32, 32)
    with pytest.raises(ValueError, match="4k\\+1"):
        wan.keyframe_condition([_image(0)], [0], 16, 32, 32)
    with pytest.raises(ValueError, match="multiples of 16"):
        wan.motion_mask_condition(_image(0), np.ones((17, 4, 4), bool), 17, 40, 32)
    with pytest.raises(ValueError, match="uint8"):
        wan.keyframe_condition([_image(0).astype(np.float32)], [0], 17, 32, 32)


# --- the pipeline ------------------------------------------------------------------------------------------

def test_first_frame_condition_equals_diffusers_and_noise_equals_anisora(folders):
    pipe = _load(folders)
    condition = wan.keyframe_condition([_image(1)], [0], 17, 32, 48)
    noise, stock = WanImageToVideoPipeline.prepare_latents(
        pipe, condition.video[:, :, 0], 1, 16, 32, 48, 17, torch.float32, torch.device("cpu"),
        torch.Generator().manual_seed(7))
    ours = pipe.condition_latents(condition, device=torch.device("cpu"))
    assert ours.shape == (1, 20, 5, 4, 6)
    torch.testing.assert_close(ours, stock, rtol=0, atol=0)
    # the noise both prepare_latents draw is AniSora's torch.randn(16, (F-1)//4+1, lat_h, lat_w, generator=seed_g)
    torch.testing.assert_close(noise[0], torch.randn(16, 5, 4, 6, generator=torch.Generator().manual_seed(7)))


def test_keyframe_generation_wan21(folders):
    pipe = _load(folders)
    replaced = WanTransformer3DModel.from_pretrained(folders["dit"])
    assert all(torch.equal(a, b) for a, b in zip(pipe.transformer.state_dict().values(),
                                                 replaced.state_dict().values()))
    images = [_image(1), _image(2), _image(3)]
    condition = wan.keyframe_condition(images, [0, 8, 16], 17, 32, 32)
    video = _generate(pipe, condition, num_inference_steps=2)
    assert video.shape == (17, 32, 32, 3) and np.isfinite(video).all()

    moved = wan.keyframe_condition([images[0], images[1], _image(9)], [0, 8, 16], 17, 32, 32)
    changed = (pipe.condition_latents(condition) - pipe.condition_latents(moved)).abs().amax(dim=(0, 1, 3, 4))
    assert changed[:4].max() == 0 and changed[4] > 0  # pixel frame 16 -> latent frame 4 only
    fast = {"num_inference_steps": 2, "guidance_scale": 1.0, "output_type": "latent"}
    latents = pipe(condition, prompt=PROMPT, generator=torch.Generator().manual_seed(3), **fast).frames
    again = pipe(condition, prompt=PROMPT, generator=torch.Generator().manual_seed(3), **fast).frames
    other = pipe(moved, prompt=PROMPT, generator=torch.Generator().manual_seed(3), **fast).frames
    assert torch.equal(latents, again)
    assert (latents - other).abs().max() > 1e-5


def test_first_last_runs_where_diffusers_last_image_crashes(folders):
    pipe = _load(folders)
    first, last = _image(1), _image(2)
    condition = wan.keyframe_condition([first, last], [0, 8], 9, 32, 32)
    assert _generate(pipe, condition, num_inference_steps=1).shape == (9, 32, 32, 3)
    with pytest.raises(ValueError, match="last_image"):
        pipe(condition, prompt=PROMPT, last_image=Image.fromarray(last))

    stock = WanImageToVideoPipeline.from_pretrained(folders["wan21"], transformer=pipe.transformer)
    stock.set_progress_bar_config(disable=True)
    with pytest.raises(RuntimeError, match="Sizes of tensors must match"):
        stock(image=Image.fromarray(first), last_image=Image.fromarray(last), prompt=PROMPT, height=32, width=32,
              num_frames=9, num_inference_steps=1)


def test_two_expert_generation_wan22_without_clip(folders):
    pipe = wan.load_pipeline(folders["wan22"], transformer=folders["high"], transformer_2=folders["low"],
                             boundary_ratio=BOUNDARY_RATIO)
    pipe.set_progress_bar_config(disable=True)
    assert pipe.image_encoder is None and pipe.config.boundary_ratio == BOUNDARY_RATIO
    calls = {"high": 0, "low": 0}
    hooks = [model.register_forward_hook(lambda *_, name=name: calls.__setitem__(name, calls[name] + 1))
             for name, model in (("high", pipe.transformer), ("low", pipe.transformer_2))]
    keep = np.random.default_rng(5).random((9, 8, 12)) > 0.5
    condition = dataclasses.replace(wan.motion_mask_condition(_image(6), keep, 9, 32, 48), clip_image=None)
    video = _generate(pipe, condition, num_inference_steps=2)
    for hook in hooks:
        hook.remove()
    assert video.shape == (9, 32, 48, 3) and np.isfinite(video).all()
    assert calls == {"high": 2, "low": 2}  # UniPC flow_shift 3, 2 steps: t = 1000, 750; boundary 900; CFG x2


def test_oss_sigmas_drive_one_call_then_the_scheduler_is_restored(folders):
    pipe = _load(folders)
    published = pipe.scheduler
    seen = []

    def record(_pipe, _step, timestep, _tensors):
        seen.append(float(timestep))
        assert isinstance(_pipe.scheduler, FlowMatchEulerDiscreteScheduler)
        return {}

    condition = wan.keyframe_condition([_image(1)], [0], 5, 32, 32)
    sigmas = wan.oss_sigmas(5.0)
    latents = pipe(condition, prompt=PROMPT, sigmas=sigmas, guidance_scale=1.0, output_type="latent",
                   callback_on_step_end=record).frames
    assert latents.shape == (1, 16, 2, 4, 4) and torch.isfinite(latents).all()
    np.testing.assert_allclose(seen, [1000 * s for s in sigmas], rtol=1e-6)
    assert pipe.scheduler is published


def test_scheduler_sets_the_published_samplers(folders):
    pipe = _load(folders)
    unipc = wan.scheduler(pipe, "unipc", 5.0)
    assert pipe.scheduler is unipc and isinstance(unipc, UniPCMultistepScheduler)
    assert unipc.config.prediction_type == "flow_prediction" and unipc.config.solver_order == 2
    # wan/utils/fm_solvers_unipc.py: sigma_max = float32(1 - 1/1000).item(), linspace(sigma_max, 0, n+1)[:-1],
    # shift, timesteps int64(1000 s), final sigma 0
    sigma_max = torch.tensor(1 - 1 / 1000, dtype=torch.float32).item()
    for steps in (8, 40):
        raw = np.linspace(sigma_max, 0, steps + 1)[:-1]
        sigmas = 5.0 * raw / (1 + 4.0 * raw)
        unipc.set_timesteps(steps)
        np.testing.assert_array_equal(unipc.timesteps.numpy(), torch.from_numpy(sigmas * 1000).long().numpy())
        np.testing.assert_array_equal(unipc.sigmas.numpy(), np.append(sigmas, 0).astype(np.float32))
    euler = wan.scheduler(pipe, "euler", 3.0)
    assert pipe.scheduler is euler and isinstance(euler, FlowMatchEulerDiscreteScheduler)
    assert euler.config.shift == 3.0
    with pytest.raises(ValueError, match="solver"):
        wan.scheduler(pipe, "dpm++", 5.0)


def test_clip_sees_the_first_guide_squashed_as_anisora(folders):
    pipe = _load(folders)
    first = _image(1, 40, 64)
    condition = wan.keyframe_condition([first, _image(2)], [0, 8], 9, 32, 32)
    ours = pipe.image_processor(images=pipe.clip_input(condition), return_tensors="pt").pixel_values
    # anisoraV3/wan/modules/clip.py visual(): bicubic squash (no crop) to the CLIP size, then x*0.5+0.5
    # normalised with OpenAI CLIP's mean/std. Ours goes through uint8: rounding and clipping of the overshoot.
    pixels = F.interpolate(anisora_unit(first)[None], size=(32, 32), mode="bicubic", align_corners=False)
    mean = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
    std = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)
    expected = (pixels.clamp(-1, 1) * 0.5 + 0.5 - mean) / std
    torch.testing.assert_close(ours, expected, rtol=0, atol=0.5 / 255 / 0.26 + 1e-5)
    assert pipe.encode_image(pipe.clip_input(condition), torch.device("cpu")).shape == (1, 32 * 32 + 1, 4)
