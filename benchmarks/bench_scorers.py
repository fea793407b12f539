"""Benchmark: decode time, each weight-free scorer's time per clip, and the store's overhead.

Clips: 49 frames at 16 fps, rendered by the smoke renderer at 480x320 and 720x480, plus
the real 720x480 AniSora sample ``cartoon_films_shuo_hua_26`` when ../shared is present.
Decoding is timed on its own. Each scorer is then timed alone on the decoded clip (a
scoring session with that scorer only: it computes its own features, optical flow
included), then all scorers together in one session, whose single pass over the frames
shares the flows between scorers, as a run does. Medians of ``--repeats``; one worker
thread. Prints a Markdown table.

    .venv/bin/python benchmarks/bench_scorers.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from anibench.conditions import Condition, resolve
from anibench.frames import ArrayFrames
from anibench.scoring import SCORERS, Input, ScoreInput
from anibench.session import ScoringJob, ScoringSession
from anibench.smoke.render import ClipSpec, render_clip
from anibench.store import RunStore, ScoreKey
from anibench.suite import Case
from anibench.video import Video

SHARED_CLIP = Path(__file__).resolve().parents[2] / "shared/media/anisora-samples/reward/video/cartoon_films_shuo_hua_26.mp4"
# Every registered scorer that needs no weights (the model-based ones: benchmarks/bench_core.py).
WEIGHT_FREE = [name for name in SCORERS.names() if not SCORERS.get(name).families]


def timed(fn, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def clips(workdir: Path) -> list[tuple[str, Path, Path | None]]:
    out = []
    for width, height in ((480, 320), (720, 480)):
        spec = ClipSpec("Aki", "waving", "2d", "sunny_hills", 49, 16.0, width, height, 0)
        clip = render_clip(spec)
        path = Video(clip.frames, 16).write(workdir / f"smoke_{width}x{height}.mp4")
        mask = (clip.motion_mask[..., None] * 255).repeat(3, -1).astype("uint8")
        mask_path = Video(mask, 16).write(workdir / f"smoke_{width}x{height}_mask.mp4")
        out.append((f"smoke waving {width}x{height}", path, mask_path))
    if SHARED_CLIP.is_file():
        out.append(("real shuo_hua_26 720x480", SHARED_CLIP, None))
    return out


def sample_for(path: Path, mask: Path | None) -> ScoreInput:
    """The clip decoded, with guides at first/middle/last frame and its mask (not timed)."""
    video = Video.read(path)
    case = Case("bench", mask=mask)
    guidance = resolve(case, Condition("bench", (0.0, 0.5, 1.0), use_mask=mask is not None), ground_truth=video)
    return ScoreInput("bench", video, "", guidance, video_path=path)


def bench_store(n: int = 2000) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        store = RunStore.in_dir(tmp)
        store.begin_invocation("bench")
        keys = [ScoreKey(f"{i:064d}", "s", "1", "p", "i") for i in range(n)]
        start = time.perf_counter()
        for i, key in enumerate(keys):
            store.put_score(f"item{i}", key, 0.5, {"detail": [1, 2, 3]}, 0.01)
        write = (time.perf_counter() - start) / n
        start = time.perf_counter()
        for key in keys:
            store.has_score(key)
        read = (time.perf_counter() - start) / n
    return write, read


def _cell(value) -> str:
    if value is None:
        return "–"
    if not isinstance(value, float):
        return str(value)
    return f"{value * 1000:.0f} ms" if value >= 0.01 else f"{value * 1000:.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        for label, path, mask in clips(Path(tmp)):
            decode, video = timed(lambda: Video.read(path), args.repeats)
            row = {"clip": label, "frames": video.num_frames, "decode": decode}
            prepared = sample_for(path, mask)
            names = [n for n in WEIGHT_FREE if mask is not None or Input.MASK not in SCORERS.get(n).requires]

            def session_run(scorers: list[str]):
                with ScoringSession(scorers, workers=1) as session:
                    job = ScoringJob(ArrayFrames.of(prepared.video), prepared.with_changes(features={}))
                    return session.score_jobs([job], place_guides=False)

            for name in WEIGHT_FREE:
                row[name] = timed(lambda: session_run([name]), args.repeats)[0] if name in names else None
            row["all (shared flow)"] = timed(lambda: session_run(names), args.repeats)[0]
            rows.append(row)
    columns = list(rows[0])
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in rows:
        print("| " + " | ".join(_cell(row[c]) for c in columns) + " |")
    write, read = bench_store()
    print(f"\nstore: {write * 1e3:.3f} ms per score written (one committed transaction each), "
          f"{read * 1e3:.3f} ms per cache lookup")


if __name__ == "__main__":
    main()
