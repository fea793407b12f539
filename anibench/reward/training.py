"""``anibench reward train`` / ``eval``: fit heads on a ratings file, and measure agreement with people.

:func:`train_heads` reads a ratings file (:mod:`anibench.reward.ratings`), embeds every usable video
once with a frozen backbone (:mod:`anibench.reward.backbones`), splits the videos (by content sha256:
every rater and every copy of a clip on one side) into training and held-out sets, fits one ridge head
per dimension (:mod:`anibench.reward.heads`), measures it on the held-out videos
(:mod:`anibench.reward.metaeval`) and registers each head in the weights store as
``<name>.<dimension>``.

:func:`evaluate_heads` scores a ratings file's videos with registered heads and compares them with
the human ratings; videos a head was trained on are left out (by sha256) unless asked for.
:func:`evaluate_scorer` does the same for any scorer (``anime_reward.visual_motion``, say).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from anibench.errors import InputError
from anibench.reward.backbones import ClipRequest, extract, get_backbone, score_requests
from anibench.reward.heads import (
    RidgeHead, fit_ridge, head_config, head_entry_name, heads_named, load_registered, register_head, split_videos,
)
from anibench.reward.metaeval import correlate, rater_agreement
from anibench.reward.ratings import DIMENSIONS, RatedVideo, RatingsFile, read_ratings

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
MAX_PROBLEMS_STORED = 200


def check_dimensions(requested: Sequence[str] | None) -> list[str] | None:
    if not requested:
        return None
    names = [d.strip() for part in requested for d in part.split(",") if d.strip()]
    unknown = [d for d in names if d not in DIMENSIONS]
    if unknown:
        raise InputError(f"unknown dimension(s) {unknown}; known: {', '.join(DIMENSIONS)}")
    return list(dict.fromkeys(names))


def _hash_videos(videos: Sequence[RatedVideo]) -> None:
    from anibench.provenance import sha256_file

    for video in videos:
        video.sha256 = sha256_file(video.video)


def _embed(ratings: RatingsFile, videos: list[RatedVideo], backbone: str, *, runtime: Any,
           workers: int, cache: Any) -> tuple[list[RatedVideo], dict[str, np.ndarray]]:
    """Backbone vectors of ``videos``; videos that cannot be embedded are moved to the file's problems."""
    requests = [ClipRequest(v.key, v.video, v.prompt, v.guide_image, v.sha256) for v in videos]
    extraction = extract(requests, backbone, runtime=runtime, workers=workers, cache=cache)
    kept = []
    for video in videos:
        if video.key in extraction.errors:
            ratings.reject_video(video.video, f"video not usable: {extraction.errors[video.key]}")
        else:
            kept.append(video)
    return kept, extraction.vectors


@dataclass
class HeadReport:
    """One dimension's training outcome: the entry registered, or why none was."""

    dimension: str
    entry: str | None = None
    file: Path | None = None
    train_videos: int = 0
    heldout_videos: int = 0
    alpha: float | None = None
    heldout: dict[str, Any] | None = None
    train_spearman: float | None = None
    skipped: str | None = None
    sha256: str | None = None


@dataclass
class TrainReport:
    name: str
    backbone: str
    ratings: RatingsFile
    heads: list[HeadReport] = field(default_factory=list)
    videos: int = 0
    split: dict[str, Any] = field(default_factory=dict)

    @property
    def trained(self) -> list[HeadReport]:
        return [h for h in self.heads if h.entry]


def train_heads(ratings_path: str | Path, *, name: str, backbone: str = "handcrafted",
                dimensions: Sequence[str] | None = None, holdout: float = 0.2, seed: int = 0,
                out_dir: str | Path | None = None, replace: bool = False, runtime: Any = None,
                workers: int = 2, n_boot: int = 1000, cache: Any = None, store: Any = None) -> TrainReport:
    """Fit and register one head per dimension (see the module docstring)."""
    from anibench.provenance import sha256_file
    from anibench.runtime.weights import WeightStore

    if not _NAME.match(name):
        raise InputError(f"head name {name!r} must match [a-z0-9][a-z0-9_-]* (the weights entries are "
                         "<name>.<dimension>)")
    chosen = get_backbone(backbone)
    wanted = check_dimensions(dimensions)
    store = store or (WeightStore(runtime.weights_root) if runtime is not None else WeightStore())
    if not replace:
        existing = [e for e in store.names() if e.startswith(name + ".") and e[len(name) + 1:] in DIMENSIONS]
        if existing:
            raise InputError(f"heads named {name!r} exist already ({', '.join(existing)}); pass --replace to train "
                             "new versions, or choose another --name")
    ratings = read_ratings(ratings_path)
    dims = wanted or list(ratings.dimensions)
    report = TrainReport(name, backbone, ratings)
    videos = ratings.videos()
    _hash_videos(videos)
    videos, vectors = _embed(ratings, videos, backbone, runtime=runtime, workers=workers, cache=cache)
    report.videos = len(videos)
    train_keys, held_keys = split_videos([v.sha256 for v in videos], holdout, seed)
    held = set(held_keys)
    report.split = {"by": "video sha256", "holdout": holdout, "seed": seed, "train_videos": len(train_keys),
                    "heldout_videos": len(held_keys)}
    out_dir = Path(out_dir) if out_dir else _default_out(name)
    ratings_sha = sha256_file(ratings.path)
    for dimension in dims:
        head = HeadReport(dimension)
        report.heads.append(head)
        rated = [v for v in videos if v.target(dimension) is not None]
        train = [v for v in rated if v.sha256 not in held]
        test = [v for v in rated if v.sha256 in held]
        head.train_videos, head.heldout_videos = len(train), len(test)
        targets = np.array([v.target(dimension) for v in train])
        if len(train) < 3:
            head.skipped = f"{len(train)} rated training video(s); a head needs at least 3"
            continue
        if np.ptp(targets) == 0:
            head.skipped = "every training video has the same rating: nothing to learn"
            continue
        x = np.stack([vectors[v.key] for v in train])
        fitted = fit_ridge(x, targets)
        head.alpha = fitted.config["model"]["alpha"]
        head.train_spearman = correlate(fitted.raw(x), targets, n_boot=0)["spearman"]["value"]
        if test:
            predicted, _ = fitted.predict(np.stack([vectors[v.key] for v in test]))
            head.heldout = correlate(predicted, [v.target(dimension) for v in test], n_boot=n_boot, seed=seed)
        entry = head_entry_name(name, dimension)
        rows_used = sum(len(v.rows) for v in rated)
        training = {
            "ratings_file": str(ratings.path.resolve()), "ratings_sha256": ratings_sha,
            "rows_total": len(ratings.rows) + len(ratings.problems), "rows_used": rows_used,
            "rows_rejected": len(ratings.problems),
            "problems": [p.to_dict() for p in ratings.problems[:MAX_PROBLEMS_STORED]],
            "seed": seed, "holdout": holdout,
            "uses_guide": all(v.guide_image is not None for v in train),
            "split": {"by": "video sha256 (all raters and copies of a clip on one side)",
                      "train_videos": sorted(v.sha256 for v in train),
                      "heldout_videos": sorted(v.sha256 for v in test)},
            "metrics": {"heldout": head.heldout, "train_spearman": head.train_spearman, "n_boot": n_boot},
        }
        fitted.config = {**head_config(name=entry, dimension=dimension, backbone=chosen, training=training),
                         "model": fitted.config["model"]}
        path = fitted.save(out_dir / f"{entry}.safetensors")
        resolved = register_head(path, entry, store=store, replace=replace,
                                 description=f"reward head {dimension} on {backbone} features, trained on "
                                             f"{ratings.path.name} ({len(train)} videos)")
        head.entry, head.file, head.sha256 = entry, path, resolved.sha256
    return report


def _default_out(name: str) -> Path:
    from anibench.suites.smoke import cache_root

    return cache_root() / "reward-heads" / name


# -- evaluation ---------------------------------------------------------------------------------------
def _agreement(videos: Sequence[RatedVideo], dimension: str) -> dict[str, Any] | None:
    return rater_agreement({v.key: v.ratings[dimension] for v in videos if dimension in v.ratings})


def _result(dimension: str, predictions: dict[str, float], videos: Sequence[RatedVideo], *, n_boot: int,
            seed: int, level: float, **extra: Any) -> dict[str, Any]:
    used = [v for v in videos if v.key in predictions and v.target(dimension) is not None]
    metrics = correlate([predictions[v.key] for v in used], [v.target(dimension) for v in used],
                        n_boot=n_boot, seed=seed, level=level)
    return {"dimension": dimension, **extra, "metrics": metrics, "agreement": _agreement(used, dimension)}


def evaluate_heads(ratings_path: str | Path, head: str, *, dimensions: Sequence[str] | None = None,
                   include_training: bool = False, n_boot: int = 1000, seed: int = 0, level: float = 0.95,
                   runtime: Any = None, workers: int = 2, cache: Any = None) -> dict[str, Any]:
    """Metrics of the registered head(s) ``head`` against the ratings file (see the module docstring)."""
    from anibench.runtime.context import Runtime
    from anibench.runtime.weights import WeightStore

    runtime = runtime or Runtime()
    wanted = check_dimensions(dimensions)
    heads: list[tuple[str, RidgeHead, Any]] = []
    for entry in heads_named(head, store=WeightStore(runtime.weights_root)):
        loaded, resolved = load_registered(entry, runtime=runtime)
        if wanted is None or loaded.dimension in wanted:
            heads.append((entry, loaded, resolved))
    if not heads:
        raise InputError(f"no head of {head!r} rates {', '.join(wanted or [])}")
    ratings = read_ratings(ratings_path)
    videos = ratings.videos()
    _hash_videos(videos)
    vectors: dict[str, dict[str, np.ndarray]] = {}
    for backbone in dict.fromkeys(h.backbone for _, h, _ in heads):
        get_backbone(backbone)
        videos, vectors[backbone] = _embed(ratings, videos, backbone, runtime=runtime, workers=workers, cache=cache)
    report: dict[str, Any] = {"ratings_file": str(ratings.path), "head": head, "dimensions": {},
                              "settings": {"n_boot": n_boot, "seed": seed, "level": level,
                                           "include_training": include_training}}
    for entry, loaded, resolved in heads:
        dimension = loaded.dimension
        trained_on = set(loaded.config.get("training", {}).get("split", {}).get("train_videos", ()))
        rated = [v for v in videos if v.target(dimension) is not None]
        chosen = rated if include_training else [v for v in rated if v.sha256 not in trained_on]
        predictions = {}
        for video in chosen:
            clamped, _ = loaded.predict(vectors[loaded.backbone][video.key])
            predictions[video.key] = float(clamped)
        report["dimensions"][dimension] = _result(
            dimension, predictions, chosen, n_boot=n_boot, seed=seed, level=level, head=entry,
            head_sha256=resolved.sha256, backbone=loaded.backbone,
            excluded_training_videos=len(rated) - len(chosen))
    _finish(report, ratings)
    return report


def evaluate_scorer(ratings_path: str | Path, scorer: str, *, dimension: str | None = None, n_boot: int = 1000,
                    seed: int = 0, level: float = 0.95, runtime: Any = None, workers: int = 2,
                    cache: Any = None) -> dict[str, Any]:
    """Metrics of any scorer's values (``name`` or ``name:k=v``) against the ratings of ``dimension``
    (default: the scorer name's suffix after the last dot, ``anime_reward.visual_motion`` → ``visual_motion``)."""
    from anibench.runspec import PluginSpec
    from anibench.runtime.context import Runtime
    from anibench.scoring import SCORERS, ScoreResult

    runtime = runtime or Runtime()
    spec = PluginSpec.parse(scorer)
    dimension = dimension or spec.name.rsplit(".", 1)[-1]
    check_dimensions([dimension])
    instance = SCORERS.get(spec.name)(**spec.params)
    ratings = read_ratings(ratings_path)
    videos = [v for v in ratings.videos() if v.target(dimension) is not None]
    _hash_videos(videos)
    requests = [ClipRequest(v.key, v.video, v.prompt, v.guide_image, v.sha256) for v in videos]
    results = score_requests(requests, [instance], runtime=runtime, workers=workers, cache=cache)
    predictions: dict[str, float] = {}
    failures: dict[str, str] = {}
    for video in videos:
        value = results[video.key]
        value = value.get(instance.name) if isinstance(value, dict) else value
        if isinstance(value, ScoreResult) and math.isfinite(value.value):
            sign = -1.0 if value.higher_is_better is False else 1.0
            predictions[video.key] = sign * value.value
        else:
            failures[video.key] = str(value)
            ratings.reject_video(video.video, f"{instance.name} could not score it: {value}")
    report: dict[str, Any] = {"ratings_file": str(ratings.path), "scorer": scorer, "dimensions": {},
                              "settings": {"n_boot": n_boot, "seed": seed, "level": level}}
    report["dimensions"][dimension] = _result(dimension, predictions, videos, n_boot=n_boot, seed=seed, level=level,
                                              scorer=scorer, direction="scorer values flipped (lower is better)"
                                              if instance.higher_is_better is False else "as scored")
    _finish(report, ratings)
    return report


def _finish(report: dict[str, Any], ratings: RatingsFile) -> None:
    report["rows"] = {"used": len(ratings.rows), "rejected": len(ratings.problems)}
    report["problems"] = [p.to_dict() for p in ratings.problems]
    report["ignored_columns"] = list(ratings.ignored_columns)
