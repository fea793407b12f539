"""The weight-free core runs without torch: CLI, scorer listing, registry, weights list, a scoring run.

A subprocess installs an import hook that makes torch, transformers and the other neural
packages unimportable (as on a machine without the ``neural`` extra), runs the commands
in-process through typer's runner, and reports what tried to import them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from conftest import moving_square

BLOCKED = ("torch", "torchvision", "torch_npu", "transformers", "safetensors", "huggingface_hub", "diffusers",
           "open_clip", "timm")

SCRIPT = textwrap.dedent("""
    import importlib.abc, json, sys

    BLOCKED = set(sys.argv[1].split(","))
    clip, out_dir = sys.argv[2], sys.argv[3]
    attempts = []

    def importer():
        frame = sys._getframe(2)
        while frame is not None and (frame.f_code.co_filename.startswith("<frozen")
                                     or frame.f_globals.get("__name__", "").startswith("importlib")):
            frame = frame.f_back
        return frame.f_globals.get("__name__") if frame is not None else None

    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in BLOCKED:
                attempts.append([name, importer()])
                raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
            return None

    sys.meta_path.insert(0, Blocker())

    from typer.testing import CliRunner
    from anibench.cli.app import app
    from anibench.scoring import SCORERS

    runner = CliRunner()
    report = {}
    def run(key, args):
        result = runner.invoke(app, args)
        report[key] = {"exit": result.exit_code, "output": result.output,
                       "exception": None if result.exception is None or isinstance(result.exception, SystemExit)
                       else f"{type(result.exception).__name__}: {result.exception}"}

    run("help", ["--help"])
    run("scorers", ["scorers", "list"])
    run("weights_list", ["weights", "list", "--json"])
    run("weights_path", ["weights", "path", "dino_vitb16"])
    run("score", ["score", clip, "--out", out_dir, "--scorer", "temporal_flickering", "--scorer", "guide_psnr",
                  "--no-report"])
    report["registry"] = sorted(cls.__name__ for cls in map(SCORERS.get, SCORERS.names()))
    report["attempts"] = attempts
    report["loaded"] = sorted(m for m in sys.modules if m.partition(".")[0] in BLOCKED)
    print("REPORT " + json.dumps(report))
""")


def test_weight_free_core_runs_without_torch(tmp_path):
    from anibench.video import Video

    clip = Video(moving_square(num_frames=9, height=48, width=64), fps=8).write(tmp_path / "clips" / "square.mp4")
    env = {**os.environ, "ANIBENCH_WEIGHTS": str(tmp_path / "weights")}
    env.pop("ANIBENCH_WEIGHTS_MANIFEST", None)
    done = subprocess.run([sys.executable, "-c", SCRIPT, ",".join(BLOCKED), str(clip), str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.split("REPORT ", 1)[1])

    assert report["loaded"] == [], f"neural packages were imported: {report['loaded']}"
    from_anibench = [a for a in report["attempts"] if (a[1] or "").startswith("anibench")]
    assert from_anibench == [], f"anibench tried to import neural packages: {from_anibench}"

    assert report["help"]["exit"] == 0 and "weights" in report["help"]["output"]
    assert report["scorers"]["exit"] == 0 and "temporal_flickering" in report["scorers"]["output"]
    assert "TemporalFlickering" in report["registry"]
    listed = json.loads(report["weights_list"]["output"])
    assert {w["name"]: w["status"] for w in listed["weights"]}["dino_vitb16"] == "missing"
    missing = report["weights_path"]
    assert missing["exit"] == 2 and missing["exception"] is None  # a message, not a traceback
    assert "weights 'dino_vitb16' are missing" in missing["output"]
    assert "anibench weights import dino_vitb16" in missing["output"]
    assert report["score"]["exit"] == 0, report["score"]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["counts"]["this_invocation"]["computed"] >= 1
    assert not results["failures"], results["failures"]
