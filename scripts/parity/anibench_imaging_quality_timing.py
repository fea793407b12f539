"""anibench's side of the imaging-quality timing: the 49-frame 848x480 clip, full-size MUSIQ, random weights, CPU fp32.

    flock /tmp/anibench-heavy.lock .venv/bin/python scripts/parity/anibench_imaging_quality_timing.py [--repeat N]

The recipe's full-size random MUSIQ (tests/parity/weights_musiq.py, seed 0) is imported into a scratch
weights store through the real converter and stands in for ``musiq_spaq`` (a weight alias); the clip is
tests/parity/clips.py ``TIMING_CLIP``. Measured like VBench's side
(scripts/parity/vbench_imaging_quality_reference.py --timing): ``end_to_end_s`` is a fresh
:class:`~anibench.session.ScoringSession` scoring the file (model load + PyAV decode + preprocessing in
the decoding threads + batched forward passes); ``model_load_s`` the family load alone. The minimum over
``--repeat`` runs is reported and merged into tests/parity/fixtures/vbench_imaging_quality_timing.json
under ``anibench``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "tests" / "parity" / "fixtures" / "vbench_imaging_quality_timing.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "tests"))
    with tempfile.TemporaryDirectory(prefix="anibench-iq-timing-") as tmp:
        os.environ["ANIBENCH_WEIGHTS"] = str(Path(tmp) / "weights")
        import torch

        from anibench.features.musiq import MusiqSpaq
        from anibench.runtime.context import Runtime
        from anibench.runtime.weights import WeightStore
        from anibench.scorers.vbench_imaging_quality import ImagingQuality
        from anibench.session import ScoringSession
        from parity.clips import TIMING_CLIP, write_parity_clips
        from parity.weights_musiq import write_musiq_checkpoint

        checkpoint = write_musiq_checkpoint(Path(tmp) / "seeded_musiq_spaq.pth", seed=0)
        WeightStore().add_local("seeded_musiq_spaq", checkpoint, format="torch-state-dict",
                                converter="anibench.models.musiq:convert_published")
        clip = write_parity_clips(Path(tmp) / "clips", (TIMING_CLIP,))[TIMING_CLIP.name]
        aliases = {"musiq_spaq": "seeded_musiq_spaq"}
        load_avg_start = os.getloadavg()
        runs = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            MusiqSpaq(Runtime(device="cpu", dtype="fp32", weight_aliases=aliases))
            load = time.perf_counter() - start
            start = time.perf_counter()
            with ScoringSession([ImagingQuality()], Runtime(device="cpu", dtype="fp32", weight_aliases=aliases)) as s:
                (result,) = s.score([clip["video"]])
                decodes = s.stats["decodes"]
            end_to_end = time.perf_counter() - start
            outcome = result["vbench.imaging_quality"]
            if isinstance(outcome, BaseException):
                raise outcome
            runs.append({"end_to_end_s": end_to_end, "model_load_s": load, "video_results": outcome.value,
                         "decodes": decodes})
        best = {key: min(run[key] for run in runs) for key in ("end_to_end_s", "model_load_s")}
        payload = json.loads(OUT.read_text()) if OUT.is_file() else {"dimension": "imaging_quality"}
        payload["anibench"] = {
            **best, "per_clip_ms": best["end_to_end_s"] * 1000, "runs": runs,
            "what": "ScoringSession([vbench.imaging_quality]).score([clip]): family load + PyAV decode + "
                    "'longer' resize and patch extraction in the decoding threads + one forward pass per frame "
                    "(CPU_BATCH_SIZE 1), min over runs",
            "load_average_start_end": [load_avg_start, os.getloadavg()],
            "torch_num_threads": torch.get_num_threads(),
            "command": ".venv/bin/python " + shlex.join(["scripts/parity/anibench_imaging_quality_timing.py",
                                                         *sys.argv[1:]]),
        }
        if "vbench" in payload:
            payload["ratio_vbench_over_anibench"] = payload["vbench"]["end_to_end_s"] / best["end_to_end_s"]
            payload["video_value_abs_difference"] = abs(payload["vbench"]["runs"][0]["video_results"] - runs[0]["video_results"])
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(json.dumps(payload, indent=2) + "\n")
        print(json.dumps(payload["anibench"], indent=2))


if __name__ == "__main__":
    main()
