"""AnimeReward's Mantis regression heads (171fe63) on a tiny random checkpoint and small clips → parity fixture.

    /work/parity-work/venv-mantis/bin/python scripts/parity/anime_reward_mantis_reference.py [--work DIR]

Runs in the reference venv of scripts/parity/setup_anime_reward_mantis_env.sh (transformers 4.45.1, the
version the vendored Mantis class was written for; never imported by anibench) and writes
tests/parity/fixtures/anime_reward_mantis.json.

What runs is the published code path of ``reward/reward_infer.py`` for ``visual_smooth`` / ``visual_quality``
(lines 52-63 prompt, 72-83 loading, 164-175 frames and prompt, 213-237 processor, forward and rounding):

- the checkpoint folder (tests/parity/weights_mantis.py:write_tiny_checkpoint) is loaded with
  ``AutoProcessor.from_pretrained`` and the vendored ``mantis.models.idefics2.Idefics2ForSequenceClassification
  .from_pretrained(..., torch_dtype=float32)`` (fp32: the fixture's precision; the script passes bf16) — the
  loading info must list no missing or unexpected key, so the recipe's key layout *is* the Mantis class's;
- frames: PyAV, ``T = container.streams.video[0].frames``, ``arange(0, min(T,144), min(T,144)/24).astype(int)``
  when T > 24, else every frame; decoded frames with index in that set, ``Image.fromarray`` at native size;
- prompt: ``REGRESSION_QUERY_PROMPT.format(text_prompt=prompt)`` then ``"<image> "`` once per frame (the
  published count of ``<image>`` already in the text is 0 for these prompts);
- ``processor(text=eval_prompt, images=frames, return_tensors="pt")``, ``model(**inputs).logits[0, 0]``,
  ``round(logit, 3) / 100``.

The prompt template is read from the published ``reward_infer.py`` text itself (the script cannot be imported:
it loads all six models at import).
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import platform
import shlex
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PARITY_HOME = Path(os.environ.get("PARITY_HOME", "/work/parity-work"))
REWARD_TREE = Path(os.environ.get("ANISORA_REWARD", PARITY_HOME / "anisora" / "reward"))
FIXTURE = REPO / "tests" / "parity" / "fixtures" / "anime_reward_mantis.json"
COMMIT = "171fe63"
TOLERANCE = 1e-4

sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REWARD_TREE))


def published_prompt_template() -> str:
    """``REGRESSION_QUERY_PROMPT`` as assigned in reward_infer.py (parsed, not imported)."""
    tree = ast.parse((REWARD_TREE / "reward_infer.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "REGRESSION_QUERY_PROMPT"
                                                for t in node.targets):
            return ast.literal_eval(node.value)
    raise SystemExit("REGRESSION_QUERY_PROMPT not found in reward_infer.py")


def published_frames(path: Path):
    """The published frame selection and decoding (reward_infer.py:35-47, 164-171)."""
    import av
    import numpy as np
    from PIL import Image

    container = av.open(str(path))
    total = container.streams.video[0].frames
    if total > 24:
        span = min(total, 144)
        indices = np.arange(0, span, span / 24).astype(int)
    else:
        indices = np.arange(total)
    frames = []
    container.seek(0)
    for i, frame in enumerate(container.decode(video=0)):
        if i > indices[-1]:
            break
        if i >= indices[0] and i in indices:
            frames.append(frame.to_ndarray(format="rgb24"))
    container.close()
    return [int(i) for i in indices], [Image.fromarray(x) for x in np.stack(frames)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=None, help="keep the work folder here")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="a real checkpoint-final folder instead of the tiny random one (once the published "
                             "weights are at hand); writes fixtures/anime_reward_mantis_<folder>.json")
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
    parser.add_argument("--device", default="cpu", help="cuda for the real 8B checkpoints")
    args = parser.parse_args()

    import numpy as np
    import torch
    import transformers
    from transformers import AutoProcessor

    from mantis.models.idefics2 import Idefics2ForSequenceClassification
    from parity.clips import frames_sha256, write_clip
    from parity.weights_mantis import MANTIS_CLIPS, MANTIS_PROMPTS, folder_state_sha256, write_tiny_checkpoint

    torch.manual_seed(0)
    work = args.work or Path(tempfile.mkdtemp(prefix="mantis-parity-"))
    checkpoint = args.checkpoint or write_tiny_checkpoint(work / "checkpoint-final")
    dtype = getattr(torch, args.dtype)
    fixture_path = FIXTURE
    if args.checkpoint:
        fixture_path = FIXTURE.with_name(f"anime_reward_mantis_{args.checkpoint.resolve().parent.name}.json")
    template = published_prompt_template()

    started = time.perf_counter()
    processor = AutoProcessor.from_pretrained(str(checkpoint), torch_dtype=dtype)
    model, info = Idefics2ForSequenceClassification.from_pretrained(
        str(checkpoint), torch_dtype=dtype, output_loading_info=True)
    model.to(args.device).eval()
    problems = {k: v for k, v in info.items() if v}
    if problems:
        raise SystemExit(f"the Mantis class did not load the recipe's keys exactly: {problems}")
    state = model.state_dict()
    load_seconds = time.perf_counter() - started

    results = {}
    clips = {}
    for spec in MANTIS_CLIPS:
        clip = write_clip(spec, work / "clips")
        indices, frames = published_frames(Path(clip["video"]))
        prompt = MANTIS_PROMPTS[spec.name]
        eval_prompt = template.format(text_prompt=prompt)
        eval_prompt += "<image> " * (len(frames) - eval_prompt.count("<image>"))
        started = time.perf_counter()
        inputs = processor(text=eval_prompt, images=frames, return_tensors="pt")
        inputs = {k: v.to(args.device) for k, v in inputs.items()}
        with torch.no_grad():
            logits = model(**inputs).logits
        seconds = time.perf_counter() - started
        logit = logits[0, 0].item()
        pixel_values = inputs["pixel_values"].cpu()
        clips[spec.name] = {**{k: v for k, v in clip.items() if k not in ("video", "image")},
                            "decoded_sha256": frames_sha256(np.stack([np.asarray(f) for f in frames]))}
        results[spec.name] = {
            "prompt": prompt,
            "frame_indices": indices,
            "input_ids": inputs["input_ids"][0].cpu().tolist(),
            "pixel_values_shape": list(pixel_values.shape),
            "pixel_values_sha256": hashlib.sha256(pixel_values.numpy().astype(np.float32).tobytes()).hexdigest(),
            "pixel_values_sum": float(pixel_values.double().sum()),
            "pixel_attention_mask_all": bool(inputs["pixel_attention_mask"].all()),
            "logit": logit,
            "published": round(logit, 3) / 100,
            "seconds": seconds,
        }
        print(f"{spec.name}: {len(indices)} frames, {inputs['input_ids'].shape[1]} tokens, logit {logit:.6f}")

    packages = {name: metadata.version(name) for name in ("torch", "transformers", "tokenizers", "safetensors",
                                                          "numpy", "pillow", "av")}
    fixture = {
        "what": "AnimeReward visual smoothness / visual appeal: the vendored Mantis Idefics2ForSequenceClassification "
                "on a tiny random checkpoint, published reward_infer.py path, fp32 CPU",
        "recipe": {
            "reference": f"bilibili/Index-anisora@{COMMIT} reward/reward_infer.py, "
                         "reward/mantis/models/idefics2/modeling_idefics2.py",
            "commit": COMMIT,
            "packages": packages,
            "python": platform.python_version(),
            "weights": ({"recipe": "tests/parity/weights_mantis.py:write_tiny_checkpoint", "seed": 0,
                         "state_sha256": folder_state_sha256(checkpoint)} if not args.checkpoint
                        else {"folder": str(checkpoint)}),
            "clips": clips,
            "command": "scripts/parity/setup_anime_reward_mantis_env.sh && "
                       + shlex.join(["/work/parity-work/venv-mantis/bin/python",
                                     "scripts/parity/anime_reward_mantis_reference.py"]),
            "dtype": args.dtype,
            "tolerance": TOLERANCE,
            "load_seconds": load_seconds,
        },
        "mantis_state_dict": {name: list(tensor.shape) for name, tensor in state.items()},
        "tokenizer_config": json.loads((checkpoint / "tokenizer_config.json").read_text())
        if (checkpoint / "tokenizer_config.json").is_file() else None,
        "results": results,
    }
    fixture_path.parent.mkdir(parents=True, exist_ok=True)
    fixture_path.write_text(json.dumps(fixture, indent=1) + "\n")
    print(f"wrote {fixture_path} (transformers {transformers.__version__})")


if __name__ == "__main__":
    main()
