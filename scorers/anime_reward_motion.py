"""AnimeReward visual motion: how likely ActionCLIP finds the clip's protagonist moving a lot rather than standing still.

Follows the published AnimeReward script, bilibili/Index-anisora at 171fe63 (``reward/reward_infer.py`` with
``reward/models/actionclip.py``, ``adapter.py``, ``load.py``; anisora.md §2.3):

- model: ActionCLIP = CLIP ViT-B/16 + ``TransformerAdapter`` (8 frame-position embeddings, a transformer, the
  residual, mean over frames), checkpoint ``reward/weights/testvl-pre76-top187-rec69.pth`` (weights entry
  ``anime_reward_actionclip``), :mod:`anibench.models.actionclip`; loaded by ``init_actionclip(mode='self')``
  (load.py:45-79; reward_infer.py:97-100);
- frames (reward_infer.py:165-171): T = the container's declared frame count; T > 24 → the 24 frames
  ``arange(0, M, M/24).astype(int)`` with ``M = min(T, 144)`` (the first 144 frames only), otherwise every frame;
  then the 8 frames at positions ``torch.linspace(0, n-1, 8).long()`` among them (line 191);
- preprocessing (``load_key_image``, lines 136-149, 185-189): PIL bicubic resize to 224 x 224 **without crop**
  (the aspect ratio is squashed), ToTensor, CLIP mean/std;
- text (lines 119-134, 152-153): the two prompts :data:`~anibench.models.actionclip.MOTION_PROMPTS`
  ("...large range of movement, such as running, jumping, dancing, or waving arms." /
  "...remain stationary in the video with no apparent movement."), ``clip.tokenize`` (77 tokens), CLIP's text
  tower — constant, computed once per model load;
- per-video value (lines 193-197): ``softmax(100 · v̂ · t̂ᵀ)[0]`` with v̂, t̂ the L2-normalised video and text
  embeddings: the **probability of the "large range of movement" prompt** against the "stationary" one, in
  (0, 1). Higher = ActionCLIP sees more protagonist motion. It is the amount of motion, not its quality; the
  published benchmark reports it as a reward (higher is better). It does not read the prompt or the guides;
- aggregate: mean over clips (the published script scores one clip).

``details`` per clip: the 24 sampled frame indices, the 8 motion frame indices, both probabilities, the two
cosines, and the declared frame count the sampling used.

Deliberate differences: clips shorter than 8 frames are refused (the published code would repeat frames in the
linspace and the temporal adapter would see a stutter that is not in the clip); several clips go through the
network in one batch (the published script: one at a time), which changes values by float rounding only
(~1e-7); frames are decoded by anibench's reader (PyAV, as the published script). The OpenAI ViT-B-16.pt that
the published constructor downloads is not used: the checkpoint overwrites all of it (see
:mod:`anibench.models.actionclip`). With a GPU runtime in bf16/fp16 the embeddings are computed in that precision
(the published script: float32); the softmax is always float32.
"""

from __future__ import annotations

from anibench.features import FeatureSpec
from anibench.features.anime_reward_inputs import MIN_FRAMES, SAMPLING
from anibench.sanity import no_claim_but
from anibench.scoring import Expect, Scorer, ScoreInput, ScoreResult

# Declared for the published weights. A frozen clip has no motion at all: the "stationary" prompt should win.
# Frame-order and appearance perturbations: how a learned motion classifier reacts depends on the content.
# Inputs the head does not read (prompt, guides, mask) must change nothing. With random weights (the tests)
# the frame directions are chance; the tests check the plumbing and the unread inputs.
_EXPECTATIONS = no_claim_but({
    "freeze": Expect.DOWN,
    "swap_prompt": Expect.NONE,
    "swap_guide": Expect.NONE,
    "invert_mask": Expect.NONE,
})

VIDEO_FEATURE = FeatureSpec.of("anime_reward.actionclip_video")
TEXT_FEATURE = FeatureSpec.of("anime_reward.actionclip_text")


class VisualMotion(Scorer):
    """AnimeReward visual motion: ActionCLIP's P("large range of movement") on 8 of the 24 sampled frames."""

    name = "anime_reward.visual_motion"
    version = "1"
    families = ("actionclip_vit_b16",)
    sampling = SAMPLING
    lower, upper, higher_is_better = 0.0, 1.0, True
    aggregate = "mean"
    min_frames = MIN_FRAMES
    expectations = _EXPECTATIONS

    def features(self, sample: ScoreInput) -> list[FeatureSpec]:
        return [VIDEO_FEATURE, TEXT_FEATURE]

    def compute(self, sample: ScoreInput) -> ScoreResult:
        from anibench.features.actionclip import motion_frame_indices
        from anibench.models.actionclip import motion_score

        score = motion_score(sample.feature(VIDEO_FEATURE), sample.feature(TEXT_FEATURE))
        sampled, motion_frames = motion_frame_indices(sample.num_frames, sample.fps)
        return self.result(
            score.value,
            frame_indices=sampled,
            motion_frames=motion_frames,
            probabilities={"large_movement": score.probabilities[0], "stationary": score.probabilities[1]},
            cosines={"large_movement": score.cosines[0], "stationary": score.cosines[1]},
            declared_frames=sample.num_frames,
        )
