"""AniSora generators end to end with tiny random weights in the published layouts (converted on import).

Every version under every core condition through the run machinery, scored by weight-free scorers;
resume; batch-composition independence; several devices; LoRA; a real out-of-memory error; the CLI.
Random weights: the clips are noise — these tests check plumbing, shapes, placement and determinism.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from anibench.conditions import Guidance, GuideFrame
from anibench.errors import MissingWeightsError
from anibench.generation import GenerationRequest, create_generator
from anibench.results import load_samples
from anibench.runner import run
from anibench.runspec import RunSpec
from anibench.runtime.context import Runtime
from anibench.video import Video

from parity.weights_anisora import aliases_text, install_tiny

SMOKE = {"name": "smoke", "per_action": 1}
CASE = "2d_idle_aki"  # a character action: it has a motion mask
WAN_TINY = "num_frames=17,max_area=4096,steps=2"
GENERATORS = ["anisora-v1:num_frames=9,height=32,width=32,steps=2", "anisora-v2:num_frames=17,max_area=4096",
              f"anisora-v3:{WAN_TINY}", f"anisora-v3.2:{WAN_TINY}", f"anisora-anymask:{WAN_TINY}"]
CONDITIONS = ["i2v", "first-last", "first-mid-last", "keyframes@0,0.5,1", "motion-mask"]
SUPPORTED = {
    "anisora-v1": {"i2v", "first-last", "first-mid-last", "keyframes@0,0.5,1"},
    "anisora-v2": {"i2v"},
    "anisora-v3": {"i2v", "first-last", "first-mid-last", "keyframes@0,0.5,1"},
    "anisora-v3.2": {"i2v", "first-last", "first-mid-last", "keyframes@0,0.5,1"},
    "anisora-anymask": {"motion-mask"},
}
SCORERS = ["guide_psnr", "temporal_flickering"]


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    root = tmp_path_factory.mktemp("anisora-weights")
    aliases = install_tiny(root)
    yield root, aliases
    shutil.rmtree(root, ignore_errors=True)


def _runtime(tiny_weights) -> Runtime:
    root, aliases = tiny_weights
    return Runtime(device="cpu", dtype="fp32", weights_root=str(root), weight_aliases=aliases)


def _by_item(run_dir: Path) -> dict[str, dict]:
    return {s["item_id"]: s for s in load_samples(run_dir) if s["scorer"] == "temporal_flickering"}


def test_every_version_under_every_condition(tiny_weights, tmp_path):
    spec = RunSpec(suite=SMOKE, generators=GENERATORS, conditions=CONDITIONS, scorers=SCORERS, cases=[CASE])
    payload = run(spec, tmp_path / "run", runtime=_runtime(tiny_weights))
    samples = _by_item(tmp_path / "run")
    assert len(samples) == len(GENERATORS) * len(CONDITIONS)
    for sample in samples.values():
        supported = sample["condition"] in SUPPORTED[sample["model"]]
        if supported:
            assert sample["status"] == "ok", sample
            clip = Video.read(tmp_path / "run" / sample["video"])
            shape = (9, 32, 32) if sample["model"] == "anisora-v1" else (17, 48, 64)
            assert (clip.num_frames, clip.height, clip.width) == shape, sample["item_id"]
        else:
            assert sample["status"] == "not_applicable", sample
            assert sample["model"] in sample["message"], sample
            assert "cannot" in sample["message"] or "needs a motion mask" in sample["message"], sample
    psnr = {s["item_id"]: s for s in load_samples(tmp_path / "run") if s["scorer"] == "guide_psnr"}
    v3 = psnr[f"anisora-v3/keyframes@0,0.5,1/seed0/{CASE}"]["details"]["per_guide"]
    assert [g["frame_index"] for g in v3] == [0, 8, 16]  # AniSora V3 snapping on 17 frames
    v1 = psnr[f"anisora-v1/first-mid-last/seed0/{CASE}"]["details"]["per_guide"]
    assert [g["frame_index"] for g in v1] == [0, 4, 8]  # V1's latent slots 0, 1+(T-3)//2, T-1 on 9 frames
    assert payload["generators"]["anisora-v3"]["output"]["num_frames"] == 17
    weights = payload["generators"]["anisora-v3.2"]["weights"]  # the run's own weights folder, hashed
    assert set(weights) == {"wan22_i2v_a14b_diffusers", "anisora_v3_2_high_noise_dit", "anisora_v3_2_low_noise_dit"}
    assert all(len(digest) == 64 for digest in weights.values()), weights

    again = run(spec, tmp_path / "run", runtime=_runtime(tiny_weights))  # resumed: nothing is generated again
    assert again["counts"]["this_invocation"] == {"generated": 0, "computed": 0, "reused": 28}
    assert _by_item(tmp_path / "run") == samples


def test_a_clip_does_not_depend_on_its_batch(tiny_weights, tmp_path):
    alone = RunSpec(suite=SMOKE, generators=[f"anisora-v3:{WAN_TINY}"], conditions=["first-last"], scorers=SCORERS,
                    cases=[CASE])
    together = RunSpec(suite=SMOKE, generators=[f"anisora-v3:{WAN_TINY}"], conditions=["first-last"],
                       scorers=SCORERS, cases=[CASE, "2d_waving_mio"])
    run(alone, tmp_path / "alone", runtime=_runtime(tiny_weights))
    run(together, tmp_path / "together", runtime=_runtime(tiny_weights))
    item = f"anisora-v3/first-last/seed0/{CASE}"
    first = Video.read(tmp_path / "alone" / _by_item(tmp_path / "alone")[item]["video"]).frames
    second = Video.read(tmp_path / "together" / _by_item(tmp_path / "together")[item]["video"]).frames
    assert np.array_equal(first, second)


def _request(generator, num_frames=17, seed=3, case="case_a") -> GenerationRequest:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (128, 192, 3), dtype=np.uint8)
    guidance = Guidance("i2v", (GuideFrame(0.0, 0, image, "test"),), num_frames, 16.0, 128, 192)
    return GenerationRequest(case, "a girl waves", generator.place(guidance), rng_seed=seed)


def _generate(tiny_weights, requests_for, **params) -> list:
    generator = create_generator("anisora-v3", num_frames=17, max_area=4096, steps=2, **params)
    generator.load(_runtime(tiny_weights))
    try:
        return generator.generate_batch(requests_for(generator))
    finally:
        generator.unload()


def test_two_devices_make_the_same_clips_as_one(tiny_weights):
    requests = lambda g: [_request(g, seed=s, case=f"case_{s}") for s in (1, 2, 3)]  # noqa: E731
    one = _generate(tiny_weights, requests)
    two = _generate(tiny_weights, requests, devices="cpu,cpu")
    assert all(isinstance(v, Video) for v in one + two)
    for a, b in zip(one, two):
        assert np.array_equal(a.frames, b.frames)
    assert not np.array_equal(one[0].frames, one[1].frames)


def test_a_lora_changes_the_clips_and_the_identity(tiny_weights, tmp_path):
    import torch
    from diffusers import WanImageToVideoPipeline, WanTransformer3DModel
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    root, aliases = tiny_weights
    dit = Runtime(weights_root=str(root), weight_aliases=aliases).resolve_weights("anisora_v3_dit").path
    transformer = WanTransformer3DModel.from_pretrained(dit)
    transformer.add_adapter(LoraConfig(r=2, lora_alpha=2, target_modules=["to_q", "to_v"], init_lora_weights=False))
    WanImageToVideoPipeline.save_lora_weights(tmp_path / "lora", transformer_lora_layers=get_peft_model_state_dict(
        transformer), safe_serialization=True)
    lora = next((tmp_path / "lora").glob("*.safetensors"))
    request = lambda g: [_request(g)]  # noqa: E731
    (plain,) = _generate(tiny_weights, request)
    (adapted,) = _generate(tiny_weights, request, lora=str(lora))
    (weak,) = _generate(tiny_weights, request, lora=str(lora), lora_scale=0.0)
    assert not np.array_equal(plain.frames, adapted.frames)
    assert np.abs(plain.frames.astype(int) - weak.frames.astype(int)).max() <= 1  # scale 0: the LoRA is off
    with_lora = create_generator("anisora-v3", lora=str(lora))
    assert with_lora.identity() != create_generator("anisora-v3").identity()
    assert with_lora.weights()["lora"] == __import__("hashlib").sha256(lora.read_bytes()).hexdigest()
    del torch


def test_out_of_memory_fails_that_case_only(tiny_weights):
    # 1,000,001 frames of 48x64: the conditioning video alone needs ~37 GB, beyond this machine; a real failure.
    requests = lambda g: [_request(g), GenerationRequest(  # noqa: E731
        "huge", "a girl waves", Guidance("i2v", _request(g).guides, 1_000_001, 16.0, 48, 64), rng_seed=1)]
    small, huge = _generate(tiny_weights, requests)
    assert isinstance(small, Video)
    assert isinstance(huge, Exception) and "out of memory" in str(huge) and "offload=model" in str(huge)


def test_without_weights_the_run_stops_before_generating_and_names_every_file(tmp_path):
    runtime = Runtime(device="cpu", dtype="fp32", weights_root=str(tmp_path / "none"), weight_aliases={})
    spec = RunSpec(suite=SMOKE, generators=["anisora-v1"], conditions=["i2v"], scorers=SCORERS, cases=[CASE])
    with pytest.raises(MissingWeightsError) as raised:
        run(spec, tmp_path / "run", runtime=runtime)
    assert "cogvideox_5b_i2v_diffusers" in str(raised.value) and "anisora_v1_5b_sat" in str(raised.value)
    assert not (tmp_path / "run" / "videos").exists()


@pytest.mark.slow
def test_the_readme_command_with_converted_tiny_weights(tiny_weights, tmp_path):
    """`anibench run --suite smoke --generator anisora-v3 --condition "keyframes@0,0.5,1"` as a user types it."""
    root, aliases = tiny_weights
    env = {**os.environ, "ANIBENCH_WEIGHTS": str(root), "ANIBENCH_WEIGHT_ALIASES": aliases_text(aliases)}
    done = subprocess.run(
        [sys.executable, "-m", "anibench", "run", "--suite", "smoke", "--generator", f"anisora-v3:{WAN_TINY}",
         "--condition", "keyframes@0,0.5,1", "--case", CASE, "--scorer", "guide_psnr", "--out", str(tmp_path / "run"),
         "--device", "cpu", "--dtype", "fp32"], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "anisora-v3" in done.stdout and "keyframes@0,0.5,1" in done.stdout
    assert "Loading" not in done.stderr  # no progress bars from diffusers/transformers
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    described = results["generators"]["anisora-v3"]
    assert described["preset"]["name"] == "distilled-8step" and described["settings"]["steps"] == 2
    assert set(described["weights"]) == {"wan21_i2v_14b_480p_diffusers", "anisora_v3_dit"}
