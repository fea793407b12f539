"""Anime timing, measured: the cadence a clip is animated on, its held frames and its judder.

Hand-drawn animation shows each drawing for several frames: "on ones" (a new drawing
every frame), "on twos" (every drawing held for two frames, 12 drawings a second at
24 fps), "on threes", often mixed within a shot. A generated clip may hold frames by
design, stutter (repeat frames irregularly) or freeze. These scorers find the repeats
and describe the timing; no peer benchmark measures it.

**Repeats.** The change between consecutive frames t and t+1 is
``c_t = P99.9(box3×3(|Y_{t+1} − Y_t|))``: the 99.9th percentile (nearest rank below)
over pixels of the absolute luma difference averaged over 3×3 neighbourhoods, in grey
levels, on frames at the working size ``flow_max_side`` (the averaging keeps a moving
edge and damps per-pixel codec noise; the percentile ignores the few noisiest pixels).
A codec never reproduces a held frame exactly, so the threshold follows the clip's
measured noise floor: ``ν`` = the median change of the clip's quiet pairs (those with
``c_t ≤ 8``), and the pair is a repeat when ``c_t ≤ min(8, max(4, 5ν))``. 4 grey levels
admit exact and near-exact repeats whatever the noise (a held frame of a crf-12 H.264
clip changes by 0.2-2, rarely up to 4); the noisier a clip's quiet pairs, the more noise
its repeats may show (held pairs of one clip spread to about 5 times their median), up
to 8, the most a held frame of the smoke suite shows after a crf-23 re-encode (crf 28:
up to 15). Real changes start above that: the smallest in the AniSora samples
are a talking face at 11.7 and a sub-pixel breath at 7.6. A pair that changes less is a
visual repeat whether it comes from a held drawing or a near-still moment (the top of a
breath, the start of an eased move). At crf 40, codec noise on held frames (up to 50)
and small real changes overlap, and no threshold tells them apart.

**Runs.** Consecutive repeats join frames into runs (one drawing each); the clip is
described by its run lengths.
"""

from __future__ import annotations

from abc import abstractmethod
from collections import Counter
from dataclasses import dataclass
from typing import Any, Sequence

import cv2
import numpy as np

from anibench.features import FeatureSpec, FrameFeature
from anibench.scoring import Expect, FrameSampling, MotionScorer, ScoreInput, ScoreResult

CHANGE_PERCENTILE = 99.9
REPEAT_FLOOR = 4.0
REPEAT_CEILING = 8.0
NOISE_FACTOR = 5.0


def pair_change(gray_a: np.ndarray, gray_b: np.ndarray) -> float:
    """``P99.9(box3×3(|b − a|))`` in grey levels (nearest rank below).

    The 3×3 sums of the uint8 difference are integers (0-2295), so the percentile is read
    exactly from their histogram.
    """
    sums = cv2.boxFilter(cv2.absdiff(gray_a, gray_b), cv2.CV_16U, (3, 3), normalize=False).ravel()
    rank = int(CHANGE_PERCENTILE / 100.0 * (sums.size - 1))
    cumulative = np.cumsum(np.bincount(sums, minlength=9 * 255 + 1))
    return float(np.searchsorted(cumulative, rank + 1)) / 9.0


def repeat_threshold(changes: np.ndarray) -> tuple[float, float | None]:
    """``(threshold, noise floor ν)``: ``min(8, max(4, 5ν))``, ν = median of the changes ≤ 8 (None if none)."""
    quiet = changes[changes <= REPEAT_CEILING]
    if not quiet.size:
        return REPEAT_FLOOR, None
    noise = float(np.median(quiet))
    return min(REPEAT_CEILING, max(REPEAT_FLOOR, NOISE_FACTOR * noise)), noise


def hold_runs(repeats: Sequence[bool]) -> np.ndarray:
    """Run lengths: frames joined by consecutive repeats (``repeats[t]``: frame t+1 repeats frame t)."""
    runs, length = [], 1
    for repeat in repeats:
        if repeat:
            length += 1
        else:
            runs.append(length)
            length = 1
    runs.append(length)
    return np.array(runs, dtype=int)


def cadence_of(runs: np.ndarray) -> int:
    """Frames per drawing: the length of the run holding the clip's median frame.

    Every frame votes for the length of its run and the lower median wins, so a clip
    mostly on twos with a few ones and threes is on twos.
    """
    per_frame = np.sort(np.repeat(runs, runs))
    return int(per_frame[(len(per_frame) - 1) // 2])


def judder_of(runs: np.ndarray, cadence: int) -> float:
    """Share of the frames of interior runs (the first and last run may be cut by the clip's
    ends) that lie in runs of another length than ``cadence``; 0 with fewer than three runs."""
    interior = runs[1:-1]
    if not interior.size:
        return 0.0
    return float(interior[interior != cadence].sum() / interior.sum())


@dataclass(frozen=True)
class Timing:
    """One clip's repeats and runs."""

    changes: np.ndarray
    threshold: float
    noise_floor: float | None
    fps: float

    @property
    def repeats(self) -> np.ndarray:
        return self.changes <= self.threshold

    @property
    def runs(self) -> np.ndarray:
        return hold_runs(self.repeats)

    @property
    def cadence(self) -> int:
        return cadence_of(self.runs)

    @property
    def held_share(self) -> float:
        return float(self.repeats.mean()) if self.changes.size else 0.0

    @property
    def judder(self) -> float:
        return judder_of(self.runs, self.cadence)

    def details(self) -> dict[str, Any]:
        runs = self.runs
        return {
            "cadence": self.cadence,
            "held_share": round(self.held_share, 4),
            "judder": round(self.judder, 4),
            "drawings": int(len(runs)),
            "drawings_per_second": round(float(len(runs) * self.fps / runs.sum()), 3),
            "run_lengths": {int(k): int(v) for k, v in sorted(Counter(runs.tolist()).items())},
            "repeat_threshold": round(self.threshold, 3),
            "noise_floor": None if self.noise_floor is None else round(self.noise_floor, 3),
        }


class PairChanges(FrameFeature):
    """``timing.pair_changes``: :func:`pair_change` of every consecutive pair of grey frames at the working size.

    One feature shared by the three timing scorers: computed once per clip.
    """

    name = "timing.pair_changes"

    def __init__(self, spec, clip):
        super().__init__(spec, clip)
        self.max_side = spec.get("max_side")
        self.lookback = 1
        self._changes: list[float] = []

    def step(self, t: int) -> None:
        if t > 0:
            self._changes.append(pair_change(self.clip.gray(t - 1, self.max_side), self.clip.gray(t, self.max_side)))

    def finish(self) -> np.ndarray:
        return np.array(self._changes)


def measure_timing(changes: np.ndarray, fps: float) -> Timing:
    """The clip's timing from its consecutive-pair changes."""
    threshold, noise = repeat_threshold(changes)
    return Timing(changes, threshold, noise, fps)


class _TimingScorer(MotionScorer):
    """Shared by the timing scorers: every frame, grey frames at the working size."""

    sampling = FrameSampling("all")
    min_frames = 2

    def features(self, sample: ScoreInput) -> list[FeatureSpec]:
        return [FeatureSpec.of("timing.pair_changes", max_side=self.params["flow_max_side"])]

    def timing(self, sample: ScoreInput) -> Timing:
        return measure_timing(sample.feature(self.features(sample)[0]), sample.fps)

    def compute(self, sample: ScoreInput) -> ScoreResult:
        timing = self.timing(sample)
        return self.result(self.value(timing), **timing.details())

    @abstractmethod
    def value(self, timing: Timing) -> float:
        """The scorer's value from the clip's timing."""


class AnimationCadence(_TimingScorer):
    """Animation cadence: frames per drawing — 1 on ones, 2 on twos, 3 on threes (descriptive).

    The length of the run of repeated frames that holds the clip's median frame (see the
    module docstring for repeats and runs); a frozen clip is one run as long as the clip.
    ``details`` give the run-length histogram, the number of drawings and drawings per
    second. Neither higher nor lower is better: anime is drawn on twos and threes on
    purpose. A character animated on twos over a camera pan on ones is "on ones" here:
    the cadence is that of the whole frame.
    """

    name = "animation_cadence"
    version = "1"
    lower, upper, higher_is_better, unit = 1.0, float("inf"), None, "frames/drawing"
    expectations = {
        "freeze": Expect.UP,
        "shuffle": Expect.DOWN,
        "shake": Expect.DOWN,
        "jitter": Expect.DOWN,
        "flicker": Expect.DOWN,
        "speed_up": Expect.DOWN,
        "low_fps": Expect.DOWN,
        "reverse": Expect.NONE,
        "splice": Expect.NONE,
        "downscale": Expect.NONE,
        "letterbox": Expect.NONE,
        "channel_swap": Expect.NONE,
        # Blur (sigma 1.5 % of the short side) erases small changes: near-still pairs of a clip on
        # ones become repeats, and when they are most of the clip its cadence rises.
        "blur": Expect.NO_CLAIM,
        # Holding on twos and duplicating frames only merge runs, so the cadence never falls; it
        # rises when the merged runs come to hold most frames: a clip on ones held on twos is on
        # twos, but a clip mixing twos and threes, or lightly stuttered, may keep its cadence.
        "hold_twos": Expect.NO_CLAIM,
        "stutter": Expect.NO_CLAIM,
        # crf 40 adds codec noise above the repeat ceiling to held frames and skips small real
        # changes (new repeats): a held clip can drop to ones and a slow clip on ones can gain holds.
        "reencode": Expect.NO_CLAIM,
    }

    def value(self, timing: Timing) -> float:
        return float(timing.cadence)


class HeldFrames(_TimingScorer):
    """Held frames: the share of frames that repeat the frame before them (descriptive).

    ``repeats / (T − 1)``: 0 on ones, 0.5 on twos, about 0.67 on threes, 1 for a frozen
    clip (see the module docstring for repeats). Neither higher nor lower is better by
    itself; read it with ``animation_cadence`` and ``judder``. Tolerance for "no effect":
    0.05, two or three pairs of a 49-frame clip.
    """

    name = "held_frames"
    version = "1"
    lower, upper, higher_is_better = 0.0, 1.0, None
    none_tolerance = 0.05
    expectations = {
        "freeze": Expect.UP,
        "shuffle": Expect.DOWN,
        "shake": Expect.DOWN,
        "jitter": Expect.DOWN,
        "flicker": Expect.DOWN,
        "speed_up": Expect.DOWN,
        "low_fps": Expect.DOWN,
        "reverse": Expect.NONE,
        "letterbox": Expect.NONE,
        "channel_swap": Expect.NONE,
        # Blur and ×4 downscaling erase changes finer than a few pixels: near-still pairs of a clip
        # on ones become repeats, a held clip's drawings stay apart.
        "blur": Expect.NO_CLAIM,
        "downscale": Expect.NO_CLAIM,
        # Holding on twos and duplicating frames never lower the share, and raise it only by
        # the drawings that the replaced frames alone showed: every other drawing on ones,
        # none on twos or threes, where each drawing already spans two frames or more.
        "hold_twos": Expect.NO_CLAIM,
        "stutter": Expect.NO_CLAIM,
        # A shot on ones inserted into a held clip lowers the share; into a clip on ones, nothing.
        "splice": Expect.NO_CLAIM,
        # crf 40: see animation_cadence.
        "reencode": Expect.NO_CLAIM,
    }

    def value(self, timing: Timing) -> float:
        return timing.held_share


class Judder(_TimingScorer):
    """Judder: the share of frames held off the clip's cadence; lower is better.

    Among the interior runs (the first and last may be cut by the clip's ends), the share
    of frames in runs whose length differs from ``animation_cadence``: 0 for a clip
    regularly on ones, twos or threes, higher when frames are duplicated irregularly
    (stutter), when a clip on ones hitches, or when twos and threes are mixed. Tolerance
    for "no effect": 0.05.
    """

    name = "judder"
    version = "1"
    lower, upper, higher_is_better = 0.0, 1.0, False
    none_tolerance = 0.05
    expectations = {
        "stutter": Expect.UP,
        "freeze": Expect.DOWN,
        "shake": Expect.DOWN,
        "flicker": Expect.DOWN,
        "low_fps": Expect.DOWN,
        "reverse": Expect.NONE,
        "letterbox": Expect.NONE,
        "channel_swap": Expect.NONE,
        # Blur and ×4 downscaling turn near-still pairs of a clip on ones into stray repeats.
        "blur": Expect.NO_CLAIM,
        "downscale": Expect.NO_CLAIM,
        # Holding on twos regularises a clip on ones (judder falls) and breaks a clip on
        # threes into fours and twos (judder rises).
        "hold_twos": Expect.NO_CLAIM,
        # Dropping every other frame leaves ones and twos regular and breaks threes into twos
        # and ones.
        "speed_up": Expect.NO_CLAIM,
        # Shuffling scatters a held clip's repeats (a few irregular pairs) and leaves a clip on ones on ones.
        "shuffle": Expect.NO_CLAIM,
        # A shot on ones inserted into a held clip breaks its cadence; into a clip on ones, nothing.
        "splice": Expect.NO_CLAIM,
        # Random sub-pixel offsets break a held clip's runs into ones, but two frames of a drawing
        # now and then get nearly the same offset and stay a repeat: a stray run of two.
        "jitter": Expect.NO_CLAIM,
        # crf 40: see animation_cadence.
        "reencode": Expect.NO_CLAIM,
    }

    def value(self, timing: Timing) -> float:
        return timing.judder
