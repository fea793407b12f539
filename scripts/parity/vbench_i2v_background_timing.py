"""Time anibench's ``vbench.i2v_background`` on the 848x480, 49-frame clip and write the timing fixture.

    .venv/bin/python scripts/parity/vbench_i2v_background_timing.py          # anibench's venv

Full-size architecture with the parity recipe's random weights (tests/parity/weights_dreamsim.py ``FULL``,
DINO from tests/parity/weights.py), imported through a temporary weights store (not timed), CPU float32.
"end-to-end" is the family's load (both weight entries, LoRA merge) plus one ``ScoringSession.score``
call on the clip file (decode, preprocessing, compute). VBench's side comes from
``scripts/parity/vbench_i2v_background_reference.py --timing`` (parity venv), read from
``tests/parity/fixtures/vbench_i2v_background_vbench_timing.json`` and merged into
``tests/parity/fixtures/vbench_i2v_background_timing.json``. Never imported by anibench.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "parity" / "fixtures"
VBENCH_SIDE = FIXTURES / "vbench_i2v_background_vbench_timing.json"
OUT = FIXTURES / "vbench_i2v_background_timing.json"
SCORER = "vbench.i2v_background"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=None)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO / "tests"))
    import torch

    from anibench.conditions import Guidance, GuideFrame
    from anibench.images import load_image
    from anibench.runtime.context import Runtime
    from anibench.runtime.weights import WeightStore
    from anibench.session import ScoringSession
    from parity.clips import TIMING_CLIP, write_parity_clips
    from parity.weights import write_dino_vitb16_checkpoint
    from parity.weights_dreamsim import FULL, write_dreamsim_archive

    scratch = Path(tempfile.mkdtemp(prefix="i2v-background-timing-"))
    store = WeightStore(scratch / "weights")
    store.add_local("seeded_dino_vitb16", write_dino_vitb16_checkpoint(scratch / "dino_vitbase16_pretrain.pth"),
                    format="torch-state-dict", converter="anibench.models.dino:convert_published")
    write_dreamsim_archive(scratch / "dreamsim_ensemble_checkpoint.zip", FULL)
    store.add_local("seeded_dreamsim_ensemble", scratch / "dreamsim_ensemble_checkpoint.zip", format="zip",
                    converter="anibench.models.dreamsim:convert_published")
    clip = write_parity_clips(scratch / "clips", (TIMING_CLIP,))[TIMING_CLIP.name]
    image = load_image(clip["image"])
    guidance = Guidance("i2v", (GuideFrame(0.0, 0, image, clip["image"]),), TIMING_CLIP.frames, float(TIMING_CLIP.fps),
                        TIMING_CLIP.height, TIMING_CLIP.width)
    aliases = {"dino_vitb16": "seeded_dino_vitb16", "dreamsim_ensemble": "seeded_dreamsim_ensemble"}
    runs = []
    for _ in range(args.repeat):
        options = {} if args.batch_size is None else {"batch_size": args.batch_size}
        runtime = Runtime(device="cpu", dtype="fp32", weights_root=str(scratch / "weights"), weight_aliases=aliases,
                          **options)
        with ScoringSession([SCORER], runtime, workers=2) as session:
            start = time.perf_counter()
            family = runtime.family("dreamsim_ensemble")  # what the first score call would load
            load = time.perf_counter() - start
            start = time.perf_counter()
            (first,) = session.score([clip["video"]], guidance=[guidance])
            compute = time.perf_counter() - start
            batches, items = family.batches_run, family.items_run
        result = first[SCORER]
        runs.append({"end_to_end_s": load + compute, "model_load_s": load, "decode_and_compute_s": compute,
                     "value": result.value, "batches_run": batches, "items_run": items,
                     "batch_size": runtime.batch_size})
        print(f"  run: {runs[-1]}", flush=True)
    anibench_side = {
        "runs": runs,
        "best": {key: min(run[key] for run in runs) for key in ("end_to_end_s", "model_load_s", "decode_and_compute_s")},
        "torch_num_threads": torch.get_num_threads(),
        "command": shlex.join([Path(sys.executable).as_posix(), "scripts/parity/" + Path(__file__).name,
                               *(argv if argv is not None else sys.argv[1:])]),
        "note": "ScoringSession, 2 decode workers, frames batched across the family (batch_size above), CPU float32",
    }
    out = {"dimension": "i2v_background",
           "clip": {"name": TIMING_CLIP.name, "width": TIMING_CLIP.width, "height": TIMING_CLIP.height,
                    "frames": TIMING_CLIP.frames},
           "anibench": anibench_side}
    if VBENCH_SIDE.is_file():
        vbench = json.loads(VBENCH_SIDE.read_text())
        out["vbench"] = vbench
        out["ratio_end_to_end"] = vbench["best"]["end_to_end_s"] / anibench_side["best"]["end_to_end_s"]
        out["ratio_compute"] = vbench["best"]["compute_s"] / anibench_side["best"]["decode_and_compute_s"]
        out["same_value"] = abs(vbench["runs"][0]["value"] - runs[0]["value"])
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {OUT}")
    import shutil

    shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
