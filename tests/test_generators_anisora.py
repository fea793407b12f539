"""The AniSora generator plugins: presets, conditions, placement, weights and the diffusers base class.

The pipelines themselves are tested in test_models_wan_anisora.py, test_models_wan_convert.py and
test_models_cogvideox_anisora.py; the end-to-end runs with tiny converted weights in
test_generators_anisora_e2e.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from anibench.conditions import BUILTIN_CONDITIONS, Guidance, GuideFrame, GuidePlacement, get_condition
from anibench.diffusion import ConditionSupport, is_out_of_memory, suffix_parts
from anibench.errors import InputError, NotApplicable
from anibench.generation import GENERATORS, GenerationRequest, create_generator
from anibench.runtime.context import Runtime

WAN = ("anisora-v2", "anisora-v3", "anisora-v3.1", "anisora-v3.2", "anisora-anymask")
ALL = (*WAN, "anisora-v1", "anisora-v1-rl")


def _guidance(positions, num_frames=49, height=128, width=192, mask=False) -> Guidance:
    image = np.full((height, width, 3), 90, np.uint8)
    guides = tuple(GuideFrame(p, round((num_frames - 1) * p), image, "test") for p in positions)
    region = np.zeros((num_frames, height, width), bool) if mask else None
    return Guidance("test", guides, num_frames, 16.0, height, width, region)


def _request(generator, guidance: Guidance, prompt="a girl waves") -> GenerationRequest:
    return GenerationRequest("case_a", prompt, generator.place(guidance), rng_seed=7)


def test_every_version_is_registered_with_its_published_default_preset():
    for name in ALL:
        generator = create_generator(name)
        described = generator.describe()
        assert described["preset"]["name"] == generator.default_preset
        assert "171fe63" in described["preset"]["source"]
        assert generator.weight_entries(), name
    v3 = create_generator("anisora-v3").settings
    assert (v3["steps"], v3["shift"], v3["guidance_scale"], v3["num_frames"], v3["max_area"]) == (8, 5.0, 1.0, 81,
                                                                                                   1280 * 720)
    v1 = create_generator("anisora-v1").settings
    assert (v1["steps"], v1["guidance_scale"], v1["dynamic_cfg"], v1["height"], v1["width"]) == (50, 6.0, True, 720,
                                                                                                 1280)
    assert create_generator("anisora-v2").settings["schedule"] == "oss"
    assert create_generator("anisora-v3.2").weight_entries()[0] == "wan22_i2v_a14b_diffusers"


def test_settings_are_overridable_and_recorded_and_unknown_presets_refused():
    generator = create_generator("anisora-v3", preset="distilled-8step-360p", steps=4, num_frames=17)
    assert generator.settings["steps"] == 4 and generator.settings["max_area"] == 640 * 360
    assert generator.describe()["settings"]["num_frames"] == 17
    assert generator.identity() != create_generator("anisora-v3", preset="distilled-8step-360p").identity()
    with pytest.raises(InputError, match="no preset 'fast'.*distilled-8step"):
        create_generator("anisora-v3", preset="fast")
    with pytest.raises(InputError, match="offload must be one of"):
        create_generator("anisora-v3", offload="disk")
    with pytest.raises(InputError, match="no parameter"):
        create_generator("anisora-v3", stepz=3)
    with pytest.raises(InputError, match="OSS schedule has 16 fixed steps"):
        create_generator("anisora-v2", steps=8)
    assert create_generator("anisora-v2", preset="unipc-40step", steps=8).settings["steps"] == 8


def test_execution_options_do_not_change_a_clips_identity():
    plain = create_generator("anisora-v3")
    assert create_generator("anisora-v3", offload="model", devices="cuda:0,cuda:1").identity() == plain.identity()
    assert create_generator("anisora-v3", vae_tiling=True).identity() != plain.identity()  # tiling changes pixels


@pytest.mark.parametrize("requested, wan, cog", [(81, 81, 81), (49, 49, 49), (20, 17, 21), (13, 17, 13), (1, 9, 5)])
def test_frame_counts_are_snapped_to_what_the_model_produces_and_recorded(requested, wan, cog):
    v3 = create_generator("anisora-v3", num_frames=requested)
    v1 = create_generator("anisora-v1", num_frames=requested)
    assert v3.place(_guidance((0.0,))).num_frames == wan
    assert v1.place(_guidance((0.0,))).num_frames == cog
    assert v3.describe()["output"]["num_frames"] == wan and v1.describe()["output"]["num_frames"] == cog


def test_wan_output_size_follows_the_case_aspect_within_the_area_and_v1_is_landscape():
    v3 = create_generator("anisora-v3")
    landscape = v3.place(_guidance((0.0,), height=1080, width=1920))
    portrait = v3.place(_guidance((0.0,), height=1920, width=1080))
    assert (landscape.height, landscape.width) == (720, 1280) and (portrait.height, portrait.width) == (1280, 720)
    assert landscape.guides[0].image.shape == (720, 1280, 3)
    v1 = create_generator("anisora-v1").place(_guidance((0.0,), height=1920, width=1080))
    assert (v1.height, v1.width) == (720, 1280)  # published: landscape only; the guide is centre-cropped


def test_v3_places_keyframes_with_anisora_snapping():
    v3 = create_generator("anisora-v3", num_frames=81)
    placed = v3.place(_guidance((0.0, 0.33, 0.5, 1.0), num_frames=49))
    assert [g.frame_index for g in placed.guides] == [0, 24, 40, 80]
    assert placed.placement is GuidePlacement.ANISORA_V3


def test_v1_places_guides_on_its_latent_slots():
    v1 = create_generator("anisora-v1", num_frames=49)
    assert [g.frame_index for g in v1.place(_guidance((0.0, 0.5, 1.0))).guides] == [0, 24, 48]
    assert [g.frame_index for g in v1.place(_guidance((0.0, 1.0))).guides] == [0, 48]


@pytest.mark.parametrize("name, condition, refused", [
    ("anisora-v1", "i2v", False), ("anisora-v1", "first-last", False), ("anisora-v1", "first-mid-last", False),
    ("anisora-v1", "last", True), ("anisora-v1", "keyframes@0,0.25", True), ("anisora-v1", "motion-mask", True),
    ("anisora-v2", "i2v", False), ("anisora-v2", "first-last", True),
    ("anisora-v3", "keyframes@0,0.3,0.7,1", False), ("anisora-v3", "last", False), ("anisora-v3", "motion-mask", True),
    ("anisora-v3.2", "first-mid-last", False),
    ("anisora-anymask", "motion-mask", False), ("anisora-anymask", "i2v", True),
])
def test_conditions_a_model_cannot_honour_are_refused_per_case(name, condition, refused):
    generator = create_generator(name)
    spec = get_condition(condition)
    positions = spec.positions or (0.0,)
    request = _request(generator, _guidance(positions, mask=bool(spec.use_mask)))
    if refused:
        with pytest.raises(NotApplicable, match=name):
            generator.check(request)
        (outcome,) = generator.generate_batch([request])  # the refusal is the slot's outcome, never a crash
        assert isinstance(outcome, NotApplicable)
    else:
        generator.check(request)


def test_support_description_names_what_a_model_takes():
    assert ConditionSupport(position_sets=((0.0,), (0.0, 1.0))).refusal(_guidance((0.5,)), "x").endswith(
        "it supports guide positions 0 | 0,1")
    assert "motion-mask" in create_generator("anisora-anymask").describe()["conditions"]
    assert set(BUILTIN_CONDITIONS) >= {"i2v", "first-last", "first-mid-last", "motion-mask"}


def test_prompt_suffixes_are_added_once_and_a_stated_score_is_kept():
    v3 = create_generator("anisora-v3")
    guidance = _guidance((0.0,))
    plain = v3.prompt(_request(v3, guidance))
    assert plain == "a girl waves aesthetic score: 5.5. motion score: 3.0. There is no text in the video."
    stated = v3.prompt(_request(v3, guidance, "a girl waves. motion score: 2.0. There is no text in the video."))
    assert stated.count("motion score") == 1 and "motion score: 2.0" in stated and stated.count("no text") == 1
    assert suffix_parts("aesthetic score: 5.5. motion score: 0.7.") == ["aesthetic score: 5.5.", "motion score: 0.7."]
    assert create_generator("anisora-v3", prompt_suffix="").prompt(_request(v3, guidance)) == "a girl waves"


def test_out_of_memory_errors_are_recognised_on_every_device():
    import torch

    assert is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    try:
        torch.empty(1 << 50, dtype=torch.uint8)  # a real allocation failure of the CPU allocator
    except RuntimeError as exc:
        assert is_out_of_memory(exc)
    assert not is_out_of_memory(RuntimeError("Sizes of tensors must match"))


def test_missing_weights_are_named_before_anything_is_generated(tmp_path, monkeypatch):
    monkeypatch.setenv("ANIBENCH_WEIGHTS", str(tmp_path / "empty-weights"))
    error = create_generator("anisora-v3.2").missing_weights(Runtime(device="cpu", dtype="fp32"))
    text = str(error)
    for name in ("wan22_i2v_a14b_diffusers", "anisora_v3_2_high_noise_dit", "anisora_v3_2_low_noise_dit"):
        assert name in text and f"anibench weights import {name}" in text
    assert "3 weights are missing" in text
    assert create_generator("anisora-v3", model=str(tmp_path)).missing_weights(Runtime()) is None


def test_plugins_are_registered_through_the_entry_point_group():
    assert set(ALL) <= set(GENERATORS.names())


def test_generators_show_prints_presets_settings_and_weight_status():
    import yaml
    from typer.testing import CliRunner

    from anibench.cli.app import app

    shown = CliRunner().invoke(app, ["generators", "show", "anisora-v3.2:preset=distilled-8step-360p,steps=4"])
    assert shown.exit_code == 0, shown.output
    described = yaml.safe_load(shown.output)
    assert described["settings"]["steps"] == 4 and described["settings"]["max_area"] == 640 * 360
    assert set(described["presets"]) == {"distilled-8step", "distilled-8step-360p"}
    assert set(described["weights"]) == {"wan22_i2v_a14b_diffusers", "anisora_v3_2_high_noise_dit",
                                         "anisora_v3_2_low_noise_dit"}
    refused = CliRunner().invoke(app, ["generators", "show", "anisora-v3:preset=fast"])
    assert refused.exit_code == 2 and "no preset 'fast'" in refused.output
