"""VBench's motion smoothness on AMT-S: how well a frame interpolator predicts every other frame.

Follows ``vbench/motion_smoothness.py`` (Vchitect/VBench at 45e79ec) with AMT-S
(``vbench/third_party/amt``, ``cfgs/AMT-S.yaml``, weights ``amt-s.pth``):

* frames: every frame, decoded to uint8 RGB; even frames ``0, 2, 4, …`` are AMT-S's inputs, the
  frame halfway (``embt = 1/2``) between each consecutive pair is interpolated and compared with the
  original odd frame between them (the last frame of an even-length clip is not used);
* input: ``uint8 / 255`` as float32, replicate-padded to multiples of ``int(16/scale)``; the
  prediction is unpadded and turned back into uint8 by ``(x·255).clip(0, 255)`` and truncation;
* per video: ``(255 − mean_k mean|frame_{2k+1} − interpolated_k|) / 255`` (mean over pixels and
  channels, then over interpolated frames), in [0, 1], higher is smoother;
* aggregate: the plain mean over videos (``np.mean``, one process and several alike).

Downscaling. VBench scales AMT-S's internal resolution by a rule that depends on the device: on
CPU never (scale 1 for every frame up to 67 megapixels), on CUDA by the GPU's total memory
(``anibench.models.amt.vbench_scale``). anibench's rule is deterministic and device-independent:
VBench's CPU rule by default (parameter ``vram_bytes`` = None), which also equals VBench's CUDA
rule for every frame whose scale comes out at 1 there (on an 80 GB GPU up to about 4.3 megapixels,
on a 24 GB GPU about 2.3 megapixels: 480p to 1080p alike); ``vram_bytes`` set to a GPU's total memory
reproduces VBench's downscaling on that GPU. ``details`` record the scale and padding used.

Deliberate differences: frames smaller than 128 px a side (after padding) are refused with an
error — AMT-S's coarsest correlation level is then 1 px, the reference divides by zero and VBench
reports a meaningless number; pairs are batched (values unchanged, every step is per sample);
frames are streamed with a look-back of two instead of decoding the whole clip first.
"""

from __future__ import annotations

from typing import Any, ClassVar, Mapping

from anibench.features import FeatureSpec
from anibench.scoring import Expect, FrameSampling, Scorer, ScoreInput, ScoreResult


class MotionSmoothness(Scorer):
    """VBench motion smoothness, ``(255 − mean |odd frame − AMT-S(neighbours)|)/255`` per video; mean over videos."""

    name = "vbench.motion_smoothness"
    version = "1"
    families = ("amt_s",)
    sampling = FrameSampling("all")
    lower, upper, higher_is_better = 0.0, 1.0, True
    aggregate = "mean"
    min_frames = 3
    default_params: ClassVar[Mapping[str, Any]] = {"vram_bytes": None}
    none_tolerance = 1e-6
    # With the published weights. (With random weights, as in the tests, only the inputs the scorer
    # ignores can be checked: prompt, guides and mask leave every value unchanged.)
    expectations = {
        "swap_prompt": Expect.NONE,
        "swap_guide": Expect.NONE,
        "invert_mask": Expect.NONE,
        "freeze": Expect.UP,  # identical neighbours: the interpolator reproduces them
        "shuffle": Expect.DOWN,
        "shake": Expect.DOWN,
        "jitter": Expect.DOWN,
        "flicker": Expect.DOWN,  # an odd frame's brightness cannot be predicted from its neighbours
        "low_fps": Expect.DOWN,
        "speed_up": Expect.DOWN,
        "letterbox": Expect.UP,  # static black bars are predicted exactly and dilute the error
        # AMT-S is not exactly symmetric in time, nor in colour channels: close, not equal.
        "reverse": Expect.NO_CLAIM,
        "channel_swap": Expect.NO_CLAIM,
        # Holds put an odd frame next to an equal neighbour: easy or hard with the phase of the drawings.
        "hold_twos": Expect.NO_CLAIM,
        "stutter": Expect.NO_CLAIM,
        # Detail removed from frame and prediction alike: the error shrinks or grows with the content.
        "blur": Expect.NO_CLAIM,
        "reencode": Expect.NO_CLAIM,
        "downscale": Expect.NO_CLAIM,
        # Two cuts add two badly predicted frames; on a clip that already moves a lot they may not matter.
        "splice": Expect.NO_CLAIM,
    }

    def feature(self) -> FeatureSpec:
        return FeatureSpec.of("vbench.amt_errors", vram_bytes=self.params["vram_bytes"])

    def features(self, sample: ScoreInput) -> list[FeatureSpec]:
        return [self.feature()]

    def compute(self, sample: ScoreInput) -> ScoreResult:
        from anibench.features.amt import interpolated_frames
        from anibench.models.amt import motion_smoothness_value, vbench_geometry

        errors = sample.feature(self.feature())
        geometry = vbench_geometry(sample.info.height, sample.info.width, self.params["vram_bytes"])
        return self.result(
            motion_smoothness_value(errors),
            interpolated_frames=len(errors),
            compared_frames=interpolated_frames(sample.num_frames),
            mean_abs_error=float(errors.mean()),
            errors=[float(e) for e in errors],
            scale=geometry.scale,
            pad_left_right_top_bottom=list(geometry.pad),
            padded_size_hw=list(geometry.padded_size),
            downscale_rule="VBench CPU (none)" if self.params["vram_bytes"] is None
            else f"VBench CUDA, total memory {self.params['vram_bytes']} bytes",
        )
