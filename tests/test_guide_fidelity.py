"""Keyframe fidelity does not reward degradation (issue 7 §3).

Content: smoke-suite frames and frames of the real AniSora samples. A clip is the frame
between two slightly panned neighbours, written with :meth:`Video.write` (crf 12) and
decoded; the guide is the clean frame. Degradations are real: Gaussian blur σ = 1, a crf 40
re-encode through PyAV, and ×4 downscale-and-back. Grain (Gaussian, σ = 6 luma + 2 per
channel) and dither (uniform ±3 per channel) are added before encoding.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage.metrics import structural_similarity

from anibench.conditions import Guidance, GuideFrame
from anibench.images import fit_image, load_image
from anibench.scoring import ScoreInput, create_scorer
from anibench.suites import load_suite
from anibench.video import Video

from conftest import SMALL_SMOKE

SCORERS = ("guide_psnr", "guide_ssim")
# a mismatched guide stays this far below a matched one
FAR_BELOW = {"guide_psnr": 15.0, "guide_ssim": 0.3}


def _contents(samples_dir) -> list[tuple[str, np.ndarray]]:
    suite = load_suite(SMALL_SMOKE)
    out = []
    for case in suite.cases[::3]:
        video = Video.read(case.video)
        out.append((f"smoke {case.id}", video.frames[video.num_frames // 2]))
    for name, indices in [("cartoon_films_shuo_hua_26", (0, 24)), ("cartoon_films_tui_la_13", (24,))]:
        frames = Video.read(samples_dir / "reward" / "video" / f"{name}.mp4").frames
        out += [(f"{name}@{index}", frames[index]) for index in indices]
    anymask = Video.read(samples_dir / "anymask_spa" / "case_11_seed666666.mp4", max_frames=49)
    out.append(("case_11@48", anymask.frames[48]))
    for name in ("cartoon_films_ren_wu_shuo_hua_34_firstmidlast_mid.png", "motion_comics_tui_la_5_firstlast_first.png"):
        out.append((name, load_image(samples_dir / "temporal" / name)))
    return out


def _grain(frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    noise = rng.normal(0, 6.0, frame.shape[:2])[..., None] + rng.normal(0, 2.0, frame.shape)
    return np.clip(frame + noise, 0, 255).astype(np.uint8)


def _dither(frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.clip(frame.astype(np.int16) + rng.integers(-3, 4, frame.shape), 0, 255).astype(np.uint8)


def _clip(frame: np.ndarray, path, crf: int = 12) -> Video:
    """Three frames (panned 2 px left, the frame, panned 2 px right), encoded and decoded."""
    shifted = [np.roll(frame, shift, axis=1) for shift in (-2, 0, 2)]
    return Video.read(Video(np.stack(shifted), 16).write(path, crf=crf))


def _blur(video: Video, path) -> Video:
    return Video(np.stack([cv2.GaussianBlur(f, (0, 0), 1.0) for f in video.frames]), video.fps)


def _crf40(video: Video, path) -> Video:
    return Video.read(video.write(path, crf=40))


def _down4(video: Video, path) -> Video:
    height, width = video.height, video.width
    small = [cv2.resize(f, (width // 4, height // 4), interpolation=cv2.INTER_AREA) for f in video.frames]
    return Video(np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_LINEAR) for f in small]), video.fps)


DEGRADATIONS = {"blur": _blur, "crf40": _crf40, "down4": _down4}


def _fidelity(name: str, guide: np.ndarray, clip: Video) -> float:
    guidance = Guidance("t", (GuideFrame(0.5, 1, guide),), clip.num_frames, clip.fps, clip.height, clip.width)
    return create_scorer(name).score(ScoreInput("c", clip, guidance=guidance)).value


@pytest.fixture(scope="module")
def cases(samples_dir, tmp_path_factory):
    """Per content: the clean frame, a mismatched guide, and clean/grain/dither clips with their degradations."""
    folder = tmp_path_factory.mktemp("fidelity")
    rng = np.random.default_rng(7)
    contents = _contents(samples_dir)
    out = []
    for i, (label, frame) in enumerate(contents):
        other = contents[(i + len(contents) // 2) % len(contents)][1]  # another source, not a nearby frame
        mismatched = fit_image(other, frame.shape[0], frame.shape[1], "center-crop")
        clips = {}
        for kind, source in (("clean", frame), ("grain", _grain(frame, rng)), ("dither", _dither(frame, rng))):
            base = _clip(source, folder / f"{i}-{kind}.mp4")
            degraded = {d: f(base, folder / f"{i}-{kind}-{d}.mp4") for d, f in DEGRADATIONS.items()}
            clips[kind] = {"base": base, **degraded}
        out.append((label, frame, mismatched, clips))
    return out


@pytest.mark.parametrize("name", SCORERS)
def test_degrading_a_clean_matched_clip_lowers_fidelity(cases, name):
    for label, guide, _, clips in cases:
        base = _fidelity(name, guide, clips["clean"]["base"])
        for degradation in DEGRADATIONS:
            assert _fidelity(name, guide, clips["clean"][degradation]) < base, (label, degradation)


@pytest.mark.parametrize("name", SCORERS)
@pytest.mark.parametrize("kind", ["grain", "dither"])
def test_degrading_a_noisy_clip_gains_under_a_quarter_of_the_match_gap(cases, name, kind):
    for label, guide, mismatched, clips in cases:
        base = _fidelity(name, guide, clips[kind]["base"])
        gap = base - _fidelity(name, mismatched, clips[kind]["base"])
        assert gap > FAR_BELOW[name], (label, kind, gap)
        for degradation in DEGRADATIONS:
            gain = _fidelity(name, guide, clips[kind][degradation]) - base
            assert gain < 0.25 * gap, (label, kind, degradation, gain, gap)


@pytest.mark.parametrize("name", SCORERS)
def test_a_mismatched_guide_stays_far_below_a_matched_one(cases, name):
    """By the full margin on clean, grainy and dithered clips; by half of it once they are degraded
    (a ×4 downscale of a 192×128 clip leaves 48×32 pixels)."""
    for label, guide, mismatched, clips in cases:
        for kind in clips:
            for version, clip in clips[kind].items():
                matched, other = _fidelity(name, guide, clip), _fidelity(name, mismatched, clip)
                margin = FAR_BELOW[name] if version == "base" else FAR_BELOW[name] / 2
                assert other < matched - margin, (label, kind, version, matched, other)


def test_the_grain_is_strong_enough_to_fool_a_full_resolution_ssim(cases):
    """The defect these tests guard against: full-resolution SSIM (scikit-image defaults, the
    scorer's version 1) gains more than a quarter of the gap when a grainy real clip is blurred."""
    fooled = 0
    for label, guide, mismatched, clips in cases:
        grainy, blurred = clips["grain"]["base"].frames[1], clips["grain"]["blur"].frames[1]
        ssim = lambda a, b: structural_similarity(a, b, channel_axis=2, data_range=255)  # noqa: E731
        gap = ssim(guide, grainy) - ssim(mismatched, grainy)
        fooled += ssim(guide, blurred) - ssim(guide, grainy) > 0.25 * gap
    assert fooled >= len(cases) // 2
