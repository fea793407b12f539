"""The perturbation battery: does a scorer measure what it claims?

Each perturbation changes a clip (or its inputs) in a controlled way; each scorer
declares in ``Scorer.expectations`` whether its value should go up, go down or stay
put (within ``Scorer.none_tolerance``), or makes explicitly no claim (:data:`NO_CLAIM`,
with the reason in a comment) when the reaction depends on the clip. A scorer must also
stay put when an input it does not declare changes (a frames-only metric under
``swap_prompt``). :func:`run_battery` applies every perturbation to every case.

A case *informs* a check only if it can show the declared reaction: the perturbation
visibly changed the clip (some frame's mean absolute difference exceeds
:data:`VISIBLE_CHANGE` gray levels, or the length changed; input perturbations always
count), and for "up" or "down" the value was not already at the scorer's bound in that
direction and left there (a static clip that stays static under "freeze" shows
nothing). A check *passes* with at least :func:`required_informative` informative cases
(≥ 3 and ≥ a quarter of the cases) of which ≥ ``min_share`` (80 %) moved as declared and
no errors; with fewer informative cases it is *inconclusive*, neither pass nor failure.
A scorer is *measured* when at least one of its up/down checks passes; the battery
passes when no check fails and every scorer with enough cases is measured, so a scorer
sitting at its bound, or one that never moves, cannot pass.

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
hold_twos      held on twos: frames 2k and 2k+1 both show frame 2k
stutter        a quarter of the frames (random, fixed seed) repeat the frame shown before them
reencode       a real H.264 encode and decode at crf 40 (:meth:`anibench.video.Video.write`)
downscale      ×4 smaller in area (half each side, area interpolation), bicubic back up
letterbox      static black bars over the top and bottom eighth of every frame
channel_swap   RGB → BGR
speed_up       every other frame kept at the same frame rate (twice as fast, half as long)
jitter         each frame translated by a random sub-pixel offset, up to ±1.5 px (fixed seed)
=============  ==========================================================================
"""

from __future__ import annotations

import math
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import cv2
import numpy as np

from anibench.conditions import Condition, Guidance, GuideFrame, fit_guidance, resolve
from anibench.errors import AnibenchError
from anibench.images import fit_image
from anibench.frames import ArrayFrames
from anibench.runtime.context import Runtime
from anibench.scoring import Expect, Input, Scorer, ScoreInput, ScoreResult
from anibench.session import ScoringJob, ScoringSession
from anibench.suite import Suite
from anibench.video import Video

DEFAULT_MIN_SHARE = 0.8
# A check needs this many informative cases, and at least this share of its cases, to pass or fail.
MIN_INFORMATIVE_CASES = 3
MIN_INFORMATIVE_SHARE = 0.25
# A frame perturbation that changes no frame by more than this mean absolute difference (gray
# levels) left the clip as it was (holding a clip already held on twos): it cannot inform.
VISIBLE_CHANGE = 0.5
# Declared in ``Scorer.expectations`` when the reaction depends on the clip; say why in a comment.
NO_CLAIM = Expect.NO_CLAIM
REENCODE_CRF = 40
STUTTER_SHARE = 0.25
JITTER_PX = 1.5
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


def hold_twos(sample: ScoreInput, donor: ScoreInput) -> ScoreInput:
    return _with_frames(sample, sample.video.frames[(np.arange(sample.video.num_frames) // 2) * 2])


def stutter(sample: ScoreInput, donor: ScoreInput) -> ScoreInput:
    shown = np.arange(sample.video.num_frames)
    repeat = np.random.default_rng(0).random(len(shown)) < STUTTER_SHARE
    for i in range(1, len(shown)):
        if repeat[i]:
            shown[i] = shown[i - 1]
    return _with_frames(sample, sample.video.frames[shown])


def reencode(sample: ScoreInput, donor: ScoreInput) -> ScoreInput:
    with tempfile.TemporaryDirectory(prefix="anibench-reencode-") as folder:
        path = sample.video.write(Path(folder) / "clip.mp4", crf=REENCODE_CRF)
        decoded = Video.read(path)
    return _with_frames(sample, decoded.frames)


def downscale(sample: ScoreInput, donor: ScoreInput) -> ScoreInput:
    height, width = sample.video.height, sample.video.width
    small = (max(1, round(width / 2)), max(1, round(height / 2)))
    return _with_frames(sample, np.stack([
        cv2.resize(cv2.resize(f, small, interpolation=cv2.INTER_AREA), (width, height), interpolation=cv2.INTER_CUBIC)
        for f in sample.video.frames
    ]))


def letterbox(sample: ScoreInput, donor: ScoreInput) -> ScoreInput:
    frames = sample.video.frames.copy()
    bar = max(1, round(sample.video.height / 8))
    frames[:, :bar] = 0
    frames[:, -bar:] = 0
    return _with_frames(sample, frames)


def channel_swap(sample: ScoreInput, donor: ScoreInput) -> ScoreInput:
    return _with_frames(sample, sample.video.frames[..., ::-1])


def speed_up(sample: ScoreInput, donor: ScoreInput) -> ScoreInput:
    return _with_frames(sample, sample.video.frames[::2])


def jitter(sample: ScoreInput, donor: ScoreInput) -> ScoreInput:
    offsets = np.random.default_rng(0).uniform(-JITTER_PX, JITTER_PX, size=(sample.video.num_frames, 2))
    moved = [
        cv2.warpAffine(frame, np.float32([[1, 0, dx], [0, 1, dy]]), frame.shape[1::-1],
                       flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        for frame, (dx, dy) in zip(sample.video.frames, offsets)
    ]
    return _with_frames(sample, np.stack(moved))


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
    "hold_twos": hold_twos,
    "stutter": stutter,
    "reencode": reencode,
    "downscale": downscale,
    "letterbox": letterbox,
    "channel_swap": channel_swap,
    "speed_up": speed_up,
    "jitter": jitter,
}
DIRECTIONAL = (Expect.UP, Expect.DOWN)


def no_claim_but(claims: dict[str, Expect]) -> dict[str, Expect]:
    """``claims``, and no claim for every other perturbation of the battery.

    For model-based scorers whose reaction to the frame-order and appearance perturbations depends on the
    network and the content; the caller states why in a comment and lists every input perturbation itself.
    """
    return {**{name: Expect.NO_CLAIM for name in PERTURBATIONS}, **claims}


def required_informative(cases: int, minimum: int = MIN_INFORMATIVE_CASES) -> int:
    """Informative cases a check needs to pass or fail: ``max(minimum, ceil(0.25 * cases))``."""
    return max(minimum, math.ceil(MIN_INFORMATIVE_SHARE * cases))


@dataclass(frozen=True)
class _Outcome:
    key: tuple[str, str]
    case_id: str
    before: float | None = None
    after: float | None = None
    error: bool = False
    visible: bool = True


@dataclass
class PerturbationCheck:
    """One scorer × perturbation: how many cases informed the check and how many moved as declared."""

    scorer: str
    perturbation: str
    expected: Expect
    cases: int = 0
    informative: int = 0
    moved_as_declared: int = 0
    errors: int = 0
    misses: list[dict] = field(default_factory=list)
    uninformative: list[str] = field(default_factory=list)

    @property
    def share(self) -> float:
        """Share of the informative cases that moved as declared."""
        return self.moved_as_declared / self.informative if self.informative else math.nan

    def required(self, min_informative: int = MIN_INFORMATIVE_CASES) -> int:
        return required_informative(self.cases, min_informative)

    def status(self, min_share: float = DEFAULT_MIN_SHARE, min_informative: int = MIN_INFORMATIVE_CASES) -> str:
        """``"fail"`` (an error, or too few informative cases moved), ``"inconclusive"`` (too few
        informative cases to tell) or ``"pass"``."""
        if self.errors:
            return "fail"
        if self.informative < self.required(min_informative):
            return "inconclusive"
        return "pass" if self.share >= min_share else "fail"

    def passed(self, min_share: float = DEFAULT_MIN_SHARE, min_informative: int = MIN_INFORMATIVE_CASES) -> bool:
        return self.status(min_share, min_informative) == "pass"


@dataclass
class BatteryReport:
    checks: list[PerturbationCheck]
    min_share: float = DEFAULT_MIN_SHARE
    min_informative: int = MIN_INFORMATIVE_CASES

    def for_scorer(self, name: str) -> list[PerturbationCheck]:
        return [c for c in self.checks if c.scorer == name]

    def status(self, check: PerturbationCheck) -> str:
        return check.status(self.min_share, self.min_informative)

    def failures(self) -> list[PerturbationCheck]:
        return [c for c in self.checks if self.status(c) == "fail"]

    def inconclusive(self) -> list[PerturbationCheck]:
        return [c for c in self.checks if self.status(c) == "inconclusive"]

    def scorer_status(self, name: str) -> str:
        """``"fail"`` (a check failed), ``"pass"`` (none failed and an up/down check passed),
        ``"unmeasured"`` (none failed, none of its up/down checks passed although one had enough
        cases) or ``"too few cases"`` (the suite has too few clips it applies to)."""
        checks = self.for_scorer(name)
        if any(self.status(c) == "fail" for c in checks):
            return "fail"
        directional = [c for c in checks if c.expected in DIRECTIONAL]
        if any(self.status(c) == "pass" for c in directional):
            return "pass"
        if any(c.cases >= c.required(self.min_informative) for c in directional):
            return "unmeasured"
        return "too few cases"

    def scorers(self) -> list[str]:
        return list(dict.fromkeys(c.scorer for c in self.checks))

    @property
    def passed(self) -> bool:
        """No check failed and every scorer with enough cases was measured."""
        return all(self.scorer_status(name) in ("pass", "too few cases") for name in self.scorers())


def expectations_for(scorer: Scorer) -> dict[str, Expect | str]:
    """The scorer's declared expectations, plus "no effect" for inputs it does not read."""
    undeclared = {p: Expect.NONE for p, needed in INPUT_PERTURBATIONS.items() if needed not in scorer.requires}
    return {**undeclared, **scorer.expectations}


def at_bound(value: float, expected: Expect, scorer: Scorer) -> bool:
    """Is ``value`` already at the bound ``expected`` moves toward (the upper for up, the lower for down)?"""
    return (expected is Expect.UP and value >= scorer.upper) or (expected is Expect.DOWN and value <= scorer.lower)


def informative(before: float, after: float, expected: Expect, scorer: Scorer, *, visible: bool = True) -> bool:
    """Could this case show the declared reaction? Not when the perturbation left the clip as it
    was, nor when the value sat at the bound it should move toward and stayed there."""
    if not visible:
        return False
    return not (at_bound(before, expected, scorer) and after == before)


def moved_as_declared(before: float, after: float, expected: Expect, scorer: Scorer) -> bool:
    """Did ``before → after`` move as ``expected``? Ask :func:`informative` first: a value that
    stays at its bound did not move.

    "No effect" allows ``Scorer.none_tolerance``; a move up or down is any strict change.
    """
    if expected is Expect.NONE:
        return abs(after - before) <= scorer.none_tolerance
    if expected is Expect.UP:
        return after > before
    return after < before


def _visibly_changed(original: ScoreInput, perturbed: ScoreInput) -> bool:
    """Did a frame perturbation change what the clip shows (beyond :data:`VISIBLE_CHANGE`)?"""
    a, b = original.video, perturbed.video
    if a is b:
        return True  # an input perturbation: the frames stay on purpose
    if a.frames.shape != b.frames.shape or a.fps != b.fps:
        return True
    for x, y in zip(a.frames, b.frames):
        if cv2.absdiff(x, y).mean() > VISIBLE_CHANGE:
            return True
    return False


def _share_features(perturbed: ScoreInput, sample: ScoreInput) -> ScoreInput:
    """An input perturbation keeps the clip: it reuses the clip's computed features (a feature's spec
    names every input it reads, so one that reads the changed input is recomputed)."""
    if perturbed.video is sample.video:
        perturbed.features = dict(sample.features)
    return perturbed


def score_values(session: ScoringSession, jobs: Sequence[tuple[ScoreInput, Sequence[Scorer]]]) -> list[dict]:
    """Per (clip, scorers): scorer name → value, None when it does not apply, or the error it raised.

    One batch through the session: every feature of a clip in one pass, model features
    batched across the clips.
    """
    prepared, applicable = [], []
    for sample, scorers in jobs:
        names = []
        for scorer in scorers:
            try:
                scorer.check(sample)
            except AnibenchError:
                continue
            names.append(scorer.name)
        applicable.append(names)
        prepared.append(ScoringJob(ArrayFrames.of(sample.video), sample, names))
    results = session.score_jobs(prepared, place_guides=False)
    out = []
    for (sample, scorers), names, result in zip(jobs, applicable, results):
        values: dict = {s.name: None for s in scorers}
        for name in names:
            outcome = result.scores.get(name)
            values[name] = outcome.value if isinstance(outcome, ScoreResult) else outcome
        out.append(values)
    return out


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
    min_informative: int = MIN_INFORMATIVE_CASES,
    workers: int = 2,
    runtime: Runtime | None = None,
) -> BatteryReport:
    """Score every sample and each perturbation of it with every scorer; tally informative cases and declared moves.

    A sample's perturbations are built once and scored together as one batch of a scoring
    session (every scorer's features in one pass per clip, model features batched across
    the clips); samples are processed in ``workers`` threads. Pairs declared
    :data:`NO_CLAIM` are not checked.
    """
    names = [p for p in (perturbations if perturbations is not None else PERTURBATIONS)]
    expected = {s.name: expectations_for(s) for s in scorers}
    checks = {
        (s.name, p): PerturbationCheck(s.name, p, Expect(expected[s.name][p]))
        for s in scorers
        for p in names
        if p in expected[s.name] and expected[s.name][p] != NO_CLAIM
    }

    donors = _most_different(samples)
    session = ScoringSession(list(scorers), runtime, workers=1)

    def one(index: int) -> list[_Outcome]:
        sample, donor = samples[index], samples[donors[index]]
        outcomes: list[_Outcome] = []
        (baseline,) = score_values(session, [(sample, scorers)])
        for name, value in list(baseline.items()):
            if isinstance(value, BaseException):  # a scorer crashing on a clip is a finding, not a crash
                outcomes.extend(_Outcome(key, sample.case_id, error=True) for key in checks if key[0] == name)
                baseline[name] = None
        batch: list[tuple[str, ScoreInput, list[Scorer]]] = []
        for name in names:
            relevant = [s for s in scorers if (s.name, name) in checks and baseline[s.name] is not None]
            if not relevant or (donor is sample and name in ("splice", "swap_guide", "swap_prompt")):
                continue
            perturbed = PERTURBATIONS[name](sample, donor)
            if perturbed is None:
                continue
            perturbed = _share_features(perturbed, sample)
            if not _visibly_changed(sample, perturbed):
                # Nothing to measure; scored as unchanged without recomputing.
                outcomes.extend(
                    _Outcome((s.name, name), sample.case_id, baseline[s.name], baseline[s.name], visible=False)
                    for s in relevant
                )
                continue
            batch.append((name, perturbed, relevant))
        after_values = score_values(session, [(perturbed, relevant) for _, perturbed, relevant in batch])
        for (name, _, relevant), after in zip(batch, after_values):
            for scorer in relevant:
                value = after[scorer.name]
                if isinstance(value, BaseException):
                    outcomes.append(_Outcome((scorer.name, name), sample.case_id, error=True))
                elif value is not None:
                    outcomes.append(_Outcome((scorer.name, name), sample.case_id, baseline[scorer.name], value))
        return outcomes

    by_name = {s.name: s for s in scorers}
    with session, ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for outcomes in pool.map(one, range(len(samples))):
            for outcome in outcomes:
                check = checks[outcome.key]
                if outcome.error:
                    check.errors += 1
                    continue
                check.cases += 1
                scorer = by_name[outcome.key[0]]
                if not informative(outcome.before, outcome.after, check.expected, scorer, visible=outcome.visible):
                    check.uninformative.append(outcome.case_id)
                    continue
                check.informative += 1
                if moved_as_declared(outcome.before, outcome.after, check.expected, scorer):
                    check.moved_as_declared += 1
                else:
                    check.misses.append({"case": outcome.case_id, "before": outcome.before, "after": outcome.after})
    return BatteryReport(list(checks.values()), min_share, min_informative)


def _most_different(samples: Sequence[ScoreInput]) -> list[int]:
    """For each sample, the index of the one whose middle frame differs most (a clear shot change)."""
    thumbs = np.stack(
        [cv2.resize(s.video.frames[s.video.num_frames // 2], (32, 32), interpolation=cv2.INTER_AREA) for s in samples]
    ).astype(np.float32)
    distance = np.abs(thumbs[:, None] - thumbs[None]).mean(axis=(2, 3, 4))
    np.fill_diagonal(distance, -1)
    return [int(i) if len(samples) > 1 else 0 for i in distance.argmax(axis=1)]

