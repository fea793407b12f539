"""The perturbation battery: does a scorer measure what it claims?

Each perturbation changes a clip (or its inputs) in a controlled way; each scorer
declares in ``Scorer.expectations`` whether its value should go up, go down or stay
put (within ``Scorer.none_tolerance``). A scorer must also stay put when an input it
does not declare changes (a frames-only metric under ``swap_prompt``).
:func:`run_battery` applies every perturbation to every case and reports, per scorer
and perturbation, the share of cases that moved as declared. A value already at the bound it should move toward counts as moved.

Perturbations (the donor is the suite's case whose middle frame differs most):

=============  ==========================================================================
freeze         every frame replaced by the middle frame
shuffle        frames in a random order (fixed seed)
shake          each frame shifted by a random offset up to 4 % of the short side (camera shake)
reverse        frames in reverse order
flicker        brightness alternately ×1.15 and ×0.87 on odd / even frames
blur           Gaussian blur, sigma = 1.5 % of the short side
low_fps        every 4th frame kept, at a quarter of the frame rate (same duration)
splice         a quarter-length shot of the donor inserted mid-clip (two hard cuts)
swap_guide     the donor's guide images at this case's guide positions
swap_prompt    the donor's prompt
invert_mask    the motion region inverted
=============  ==========================================================================
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import cv2
import numpy as np

from anibench.conditions import Condition, Guidance, GuideFrame, fit_guidance, resolve
from anibench.errors import AnibenchError
from anibench.images import fit_image
from anibench.scoring import Expect, Input, Scorer, ScoreInput
from anibench.suite import Suite
from anibench.video import Video

DEFAULT_MIN_SHARE = 0.8
# Perturbations that change a single input: a scorer that does not declare it must not move.
INPUT_PERTURBATIONS = {"swap_guide": Input.GUIDES, "swap_prompt": Input.PROMPT, "invert_mask": Input.MASK}
Perturbation = Callable[[ScoreInput, ScoreInput], "ScoreInput | None"]


def _with_frames(sample: ScoreInput, frames: np.ndarray, fps: float | None = None) -> ScoreInput:
    """``sample`` with new frames; guides are re-placed when the clip's length changes."""
    video = Video(np.ascontiguousarray(frames), fps or sample.video.fps)
    guidance = sample.guidance
    if guidance is not None:
        guidance = fit_guidance(guidance, video.num_frames, video.height, video.width)
    return sample.with_changes(video=video, guidance=guidance)


def freeze(sample: ScoreInput, donor: ScoreInput) -> ScoreInput:
    frames = sample.video.frames
    return _with_frames(sample, np.repeat(frames[len(frames) // 2][None], len(frames), axis=0))


def shuffle(sample: ScoreInput, donor: ScoreInput) -> ScoreInput:
    order = np.random.default_rng(0).permutation(sample.video.num_frames)
    return _with_frames(sample, sample.video.frames[order])


def shake(sample: ScoreInput, donor: ScoreInput) -> ScoreInput:
    rng = np.random.default_rng(0)
    reach = max(2, round(0.04 * min(sample.video.height, sample.video.width)))
    shifted = []
    for frame in sample.video.frames:
        dx, dy = rng.integers(-reach, reach + 1, size=2)
        matrix = np.float32([[1, 0, dx], [0, 1, dy]])
        shifted.append(cv2.warpAffine(frame, matrix, frame.shape[1::-1], borderMode=cv2.BORDER_REPLICATE))
    return _with_frames(sample, np.stack(shifted))


def reverse(sample: ScoreInput, donor: ScoreInput) -> ScoreInput:
    return _with_frames(sample, sample.video.frames[::-1])


def flicker(sample: ScoreInput, donor: ScoreInput) -> ScoreInput:
    gains = np.where(np.arange(sample.video.num_frames) % 2 == 1, 1.15, 0.87).astype(np.float32)
    frames = np.clip(sample.video.frames.astype(np.float32) * gains[:, None, None, None], 0, 255)
    return _with_frames(sample, frames.astype(np.uint8))


def blur(sample: ScoreInput, donor: ScoreInput) -> ScoreInput:
    sigma = max(0.8, 0.015 * min(sample.video.height, sample.video.width))
    return _with_frames(sample, np.stack([cv2.GaussianBlur(f, (0, 0), sigma) for f in sample.video.frames]))


def low_fps(sample: ScoreInput, donor: ScoreInput) -> ScoreInput:
    return _with_frames(sample, sample.video.frames[::4], sample.video.fps / 4)


def splice(sample: ScoreInput, donor: ScoreInput) -> ScoreInput:
    frames = sample.video.frames
    half, length = len(frames) // 2, max(1, len(frames) // 4)
    picked = donor.video.frames[np.linspace(0, donor.video.num_frames - 1, length).astype(int)]
    inserted = np.stack([fit_image(f, sample.video.height, sample.video.width, "center-crop") for f in picked])
    return _with_frames(sample, np.concatenate([frames[:half], inserted, frames[half:]]))


def swap_guide(sample: ScoreInput, donor: ScoreInput) -> ScoreInput | None:
    if not sample.guides or not donor.guides:
        return None
    height, width = sample.video.height, sample.video.width
    swapped = tuple(
        GuideFrame(g.position, g.frame_index, fit_image(d.image, height, width, "center-crop"), f"donor {donor.case_id}")
        for g, d in zip(sample.guides, _cycle(donor.guides, len(sample.guides)))
    )
    g = sample.guidance
    guidance = Guidance(g.condition, swapped, g.num_frames, g.fps, g.height, g.width, g.motion_region)
    return sample.with_changes(guidance=guidance)


def swap_prompt(sample: ScoreInput, donor: ScoreInput) -> ScoreInput | None:
    if donor.prompt == sample.prompt:
        return None
    return sample.with_changes(prompt=donor.prompt)


def invert_mask(sample: ScoreInput, donor: ScoreInput) -> ScoreInput | None:
    if sample.motion_region is None:
        return None
    g = sample.guidance
    guidance = Guidance(g.condition, g.guides, g.num_frames, g.fps, g.height, g.width, ~g.motion_region)
    return sample.with_changes(guidance=guidance)


def _cycle(items: Sequence, n: int) -> list:
    return [items[i % len(items)] for i in range(n)]


PERTURBATIONS: dict[str, Perturbation] = {
    "freeze": freeze,
    "shuffle": shuffle,
    "shake": shake,
    "reverse": reverse,
    "flicker": flicker,
    "blur": blur,
    "low_fps": low_fps,
    "splice": splice,
    "swap_guide": swap_guide,
    "swap_prompt": swap_prompt,
    "invert_mask": invert_mask,
}


@dataclass(frozen=True)
class _Outcome:
    key: tuple[str, str]
    case_id: str
    before: float | None = None
    after: float | None = None
    error: bool = False


@dataclass
class PerturbationCheck:
    """One scorer × perturbation: how many cases moved as declared."""

    scorer: str
    perturbation: str
    expected: Expect
    cases: int = 0
    moved_as_declared: int = 0
    errors: int = 0
    misses: list[dict] = field(default_factory=list)

    @property
    def share(self) -> float:
        return self.moved_as_declared / self.cases if self.cases else math.nan

    def passed(self, min_share: float = DEFAULT_MIN_SHARE) -> bool:
        return self.cases > 0 and self.share >= min_share and self.errors == 0


@dataclass
class BatteryReport:
    checks: list[PerturbationCheck]
    min_share: float = DEFAULT_MIN_SHARE

    def for_scorer(self, name: str) -> list[PerturbationCheck]:
        return [c for c in self.checks if c.scorer == name]

    def failures(self) -> list[PerturbationCheck]:
        return [c for c in self.checks if c.cases and not c.passed(self.min_share)]

    @property
    def passed(self) -> bool:
        return not self.failures()


def expectations_for(scorer: Scorer) -> dict[str, Expect]:
    """The scorer's declared expectations, plus "no effect" for inputs it does not read."""
    undeclared = {p: Expect.NONE for p, needed in INPUT_PERTURBATIONS.items() if needed not in scorer.requires}
    return {**undeclared, **scorer.expectations}


def moved_as_declared(before: float, after: float, expected: Expect, scorer: Scorer) -> bool:
    """Did ``before → after`` move as ``expected``? Staying at the bound it should move toward counts as yes.

    "No effect" allows ``Scorer.none_tolerance``; a move up or down is any strict change.
    """
    if expected is Expect.NONE:
        return abs(after - before) <= scorer.none_tolerance
    if expected is Expect.UP:
        return after > before or after == before == scorer.upper
    return after < before or after == before == scorer.lower


def battery_inputs(suite: Suite, *, max_side: int | None = 320, limit: int | None = None) -> list[ScoreInput]:
    """One input per case with a video: guides at first, middle and last frame, and the mask when any.

    Frames are shrunk to ``max_side`` (directions do not depend on resolution, the cost does).
    Cases whose files cannot be read are skipped here; ``anibench run`` reports them.
    """
    samples = []
    for case in suite.cases:
        if case.video is None:
            continue
        try:
            video = _shrink(Video.read(case.video), max_side)
            condition = Condition("sanity", (0.0, 0.5, 1.0), use_mask=case.mask is not None)
            guidance = resolve(case, condition, ground_truth=video, defaults=suite.defaults)
        except AnibenchError:
            continue
        samples.append(
            ScoreInput(case.id, video, case.prompt, guidance, label=case.label, style=case.style, video_path=case.video)
        )
        if limit and len(samples) >= limit:
            break
    return samples


def _shrink(video: Video, max_side: int | None) -> Video:
    if not max_side or max(video.height, video.width) <= max_side:
        return video
    scale = max_side / max(video.height, video.width)
    size = (max(2, round(video.width * scale)), max(2, round(video.height * scale)))
    return Video(np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in video.frames]), video.fps)


def run_battery(
    scorers: Sequence[Scorer],
    samples: Sequence[ScoreInput],
    *,
    perturbations: Iterable[str] | None = None,
    min_share: float = DEFAULT_MIN_SHARE,
    workers: int = 2,
) -> BatteryReport:
    """Score every sample and each perturbation of it with every scorer; tally declared moves.

    A perturbed sample is built once and shared by all scorers (and their flow caches);
    samples are processed in ``workers`` threads.
    """
    names = [p for p in (perturbations if perturbations is not None else PERTURBATIONS)]
    expected = {s.name: expectations_for(s) for s in scorers}
    checks = {
        (s.name, p): PerturbationCheck(s.name, p, expected[s.name][p])
        for s in scorers
        for p in names
        if p in expected[s.name]
    }

    donors = _most_different(samples)

    def one(index: int) -> list[_Outcome]:
        sample, donor = samples[index], samples[donors[index]]
        outcomes: list[_Outcome] = []

        def score(scorer: Scorer, clip: ScoreInput, keys: list[tuple[str, str]]) -> float | None:
            try:
                return _try_score(scorer, clip)
            except Exception:  # noqa: BLE001 - a scorer crashing on a clip is a finding, not a crash
                outcomes.extend(_Outcome(key, sample.case_id, error=True) for key in keys)
                return None

        baseline = {s.name: score(s, sample, [k for k in checks if k[0] == s.name]) for s in scorers}
        for name in names:
            relevant = [s for s in scorers if (s.name, name) in checks and baseline[s.name] is not None]
            if not relevant or (donor is sample and name in ("splice", "swap_guide", "swap_prompt")):
                continue
            perturbed = PERTURBATIONS[name](sample, donor)
            if perturbed is None:
                continue
            for scorer in relevant:
                after = score(scorer, perturbed, [(scorer.name, name)])
                if after is not None:
                    outcomes.append(_Outcome((scorer.name, name), sample.case_id, baseline[scorer.name], after))
        return outcomes

    by_name = {s.name: s for s in scorers}
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for outcomes in pool.map(one, range(len(samples))):
            for outcome in outcomes:
                check = checks[outcome.key]
                if outcome.error:
                    check.errors += 1
                    continue
                check.cases += 1
                if moved_as_declared(outcome.before, outcome.after, check.expected, by_name[outcome.key[0]]):
                    check.moved_as_declared += 1
                else:
                    check.misses.append({"case": outcome.case_id, "before": outcome.before, "after": outcome.after})
    return BatteryReport(list(checks.values()), min_share)


def _most_different(samples: Sequence[ScoreInput]) -> list[int]:
    """For each sample, the index of the one whose middle frame differs most (a clear shot change)."""
    thumbs = np.stack(
        [cv2.resize(s.video.frames[s.video.num_frames // 2], (32, 32), interpolation=cv2.INTER_AREA) for s in samples]
    ).astype(np.float32)
    distance = np.abs(thumbs[:, None] - thumbs[None]).mean(axis=(2, 3, 4))
    np.fill_diagonal(distance, -1)
    return [int(i) if len(samples) > 1 else 0 for i in distance.argmax(axis=1)]


def _try_score(scorer: Scorer, sample: ScoreInput) -> float | None:
    """The scorer's value, or None when it does not apply to the sample."""
    try:
        scorer.check(sample)
    except AnibenchError:
        return None
    return scorer.compute(sample).value
