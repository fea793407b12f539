"""VBench dynamic degree with VBench's own network: RAFT (``raft-things.pth``, 20 iterations).

This is ``vbench.dynamic_degree``. The weight-free ``dynamic_degree`` scorer
(:mod:`anibench.scorers.dynamic_degree`) applies the same rule to OpenCV DIS flow at a working
size and needs no weights; its values approximate this one, they are not VBench's.
"""

from __future__ import annotations

from anibench.errors import InputError
from anibench.features import FeatureSpec
from anibench.features.raft import TARGET_FPS, raft_sampling
from anibench.scorers.dynamic_degree import dynamic_params, is_dynamic
from anibench.scoring import Expect, ScoreInput, ScoreResult, Scorer


class DynamicDegree(Scorer):
    """VBench dynamic degree (``vbench/dynamic_degree.py``, Vchitect/VBench 45e79ec): 1 if the clip moves, else 0.

    Rule for rule, as VBench:

    * frames: every ``max(1, round(fps / 8))``-th frame from frame 0, fps from the container
      (``get_frames`` L96-113, ``extract_frame`` L116-120), full resolution, RGB;
    * each pair of consecutive sampled frames (``infer`` L74-79) is padded by replication to
      multiples of 8 (``InputPadder``, sintel mode: split evenly, the extra pixel at the
      bottom/right) and run through RAFT-large with ``raft-things.pth``, 20 iterations, float32;
    * pair motion = mean of the ``int(H'·W'·0.05)`` largest flow magnitudes of the *padded*
      flow (``get_score`` L42-56; H', W' padded);
    * ``thres = 6 · min(H, W) / 256`` on the unpadded frame, ``count_num = round(4 · N / 16)``
      with N sampled frames and Python's half-to-even ``round`` (``set_params`` L59-61);
    * dynamic once ``count_num`` pairs have motion ``> thres`` (``check_move`` L84-93, early
      return; a clip without pairs is never dynamic).

    Per video a boolean (1.0 / 0.0, VBench's ``video_results`` is ``True``/``False``); the
    dimension is the fraction of dynamic videos (``np.mean``, ``aggregate = "mean"``), 0-1,
    weight 0.5 in VBench's Quality score.

    The network is torchvision's ``raft_large`` holding the published checkpoint converted key by
    key (:mod:`anibench.models.raft`); on the same weights its flow equals VBench's vendored RAFT.
    Deliberate differences: frames are decoded with PyAV (VBench: OpenCV ``VideoCapture``;
    identical RGB on the parity clips) from any container anibench reads (VBench: ``.mp4`` or a
    frame folder only); frames under 128 px a side once padded are refused (VBench's RAFT
    divides by zero in its coarsest correlation level there and returns a meaningless value);
    pairs are batched (pair values within 1e-6 px of one pair at a time on the parity clips).
    """

    name = "vbench.dynamic_degree"
    version = "1"
    families = ("raft_things",)
    sampling = raft_sampling(TARGET_FPS)
    lower, upper, higher_is_better = 0.0, 1.0, True
    aggregate = "mean"
    # VBench needs two sampled frames for one pair; with fewer frames no pair exists and VBench
    # returns False (not dynamic). anibench keeps that rule: a 1-frame clip is an input error from
    # the core (min_frames 2), a clip of 2 frames at 16+ fps has one sampled frame and is static.
    min_frames = 2
    # With the published weights RAFT measures motion. (With random weights, as in the tests, the
    # battery checks the plumbing: decoding, sampling, batching and the rule, not what RAFT sees.)
    expectations = {
        "freeze": Expect.DOWN,
        "swap_prompt": Expect.NONE,
        "swap_guide": Expect.NONE,
        "invert_mask": Expect.NONE,
        # Every other perturbation changes how much motion each sampled pair carries, or adds
        # motion that was not there (shake, shuffle, splice): only clips near the threshold cross
        # it, and a boolean already at 1 cannot go up. No claim.
        **{p: Expect.NO_CLAIM for p in ("shake", "shuffle", "reverse", "channel_swap", "flicker", "blur", "low_fps",
                                 "splice", "hold_twos", "stutter", "reencode", "downscale", "letterbox",
                                 "speed_up", "jitter")},
    }

    def features(self, sample: ScoreInput) -> list[FeatureSpec]:
        return [FeatureSpec.of("vbench.raft_peaks", target_fps=TARGET_FPS)]

    def check(self, sample: ScoreInput) -> None:
        super().check(sample)
        from anibench.models.raft import check_frame_size

        try:
            check_frame_size(sample.info.height, sample.info.width)
        except InputError as exc:
            raise InputError(f"{self.name}: {exc.message}", case_id=sample.case_id, path=sample.video_path) from None

    def compute(self, sample: ScoreInput) -> ScoreResult:
        from anibench.models.raft import padded_size

        indices = self.sampling.indices(sample.num_frames, sample.fps)
        motions = [float(m) for m in sample.feature(self.features(sample)[0])]
        thres, count_num = dynamic_params(min(sample.info.height, sample.info.width), len(indices))
        dynamic = is_dynamic(motions, thres, count_num)
        return self.result(
            1.0 if dynamic else 0.0,
            stride=self.sampling.stride(sample.fps),
            sampled_frames=[int(i) for i in indices],
            padded_size=list(padded_size(sample.info.height, sample.info.width)),
            threshold_px=thres,
            pairs_needed=count_num,
            pairs_above=sum(1 for m in motions if m > thres),
            pair_motion_px=motions,
        )
