"""Trainable reward heads: ridge regression on standardised frozen backbone features.

Why ridge (and not a small MLP): ratings sets are small (tens to a few thousand rated clips) and
backbone vectors wide (20 handcrafted statistics, 516 CLIP dimensions); a linear head with an L2
penalty is convex, deterministic for a given split, fits in milliseconds on a CPU, and its penalty
is chosen on the training rows alone by exact leave-one-out error (the closed form of ridge:
``e_i / (1 − H_ii)``), so no extra validation split eats the few ratings there are. An MLP would
add seeds, epochs and a learning rate to tune on the same few rows, and overfit them.

Model: ``x_std = (x − mean) / scale`` (training mean and standard deviation; constant features get
scale 1), ``raw = x_std · coef + intercept``. Targets are ratings mapped to [0, 1]
(:func:`anibench.reward.ratings.to_unit`, mean over raters); a prediction is clamped to [0, 1] and
the raw value kept (:meth:`RidgeHead.predict`).

Saved form (:meth:`RidgeHead.save`): one safetensors file with float64 tensors ``mean``, ``scale``,
``coef`` and ``intercept`` (shape (1,)), whose header metadata ``anibench.head`` holds the JSON config
(backbone, its feature names and version, dimension, target mapping, model, training metadata);
the same config is written beside it as ``<file>.json`` for people. The file is registered in the
weights store with :meth:`~anibench.runtime.weights.WeightStore.add_local`, so it is listed by
``anibench weights list`` and resolved, hashed and verified like any published weight.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from anibench.errors import InputError
from anibench.runtime.weights.files import WeightFileError

FORMAT = "anibench.reward_head"
FORMAT_VERSION = 1
METADATA_KEY = "anibench.head"
TENSORS = ("mean", "scale", "coef", "intercept")
DEFAULT_ALPHAS = tuple(float(a) for a in np.logspace(-3, 4, 15))


@dataclass
class RidgeHead:
    """A fitted head: standardisation, coefficients, intercept, and its config (see the module docstring)."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def dimension(self) -> str:
        return self.config.get("dimension", "")

    @property
    def backbone(self) -> str:
        return self.config.get("backbone", {}).get("name", "")

    def raw(self, features: np.ndarray) -> np.ndarray:
        """Unclamped predictions for (N, D) or (D,) features."""
        x = np.asarray(features, dtype=np.float64)
        if x.shape[-1] != self.coef.shape[0]:
            raise InputError(f"head expects {self.coef.shape[0]} features, got {x.shape[-1]} "
                             f"(backbone {self.backbone!r} changed since training?)")
        return ((x - self.mean) / self.scale) @ self.coef + self.intercept

    def predict(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(clamped to [0, 1], raw) predictions."""
        raw = self.raw(features)
        return np.clip(raw, 0.0, 1.0), raw

    # -- files ------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the safetensors file (config in its metadata) and ``<path>.json``; returns the file."""
        save_file = _safetensors().numpy.save_file
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {"mean": self.mean, "scale": self.scale, "coef": self.coef,
                   "intercept": np.array([self.intercept])}
        tensors = {k: np.ascontiguousarray(v, dtype=np.float64) for k, v in tensors.items()}
        text = json.dumps(self.config, sort_keys=True, default=_json_default)
        save_file(tensors, str(path), metadata={METADATA_KEY: text})
        path.with_name(path.name + ".json").write_text(json.dumps(self.config, indent=2, sort_keys=True,
                                                                  default=_json_default) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path, *, name: str | None = None) -> "RidgeHead":
        """Read a head file; a file that is not one (other tensors, no config, wrong shapes) is a
        :class:`WeightFileError` naming the file and the weights entry."""
        safe_open = _safetensors().safe_open
        path = Path(path)
        label = f"weights {name!r}" if name else "reward head"

        def fail(message: str) -> WeightFileError:
            return WeightFileError(f"{label} is not an anibench reward head: {message}", path=path)

        try:
            with safe_open(str(path), framework="np") as handle:
                metadata = handle.metadata() or {}
                keys = set(handle.keys())
                tensors = {k: handle.get_tensor(k) for k in keys}
        except Exception as exc:  # noqa: BLE001 - safetensors raises several types for broken files
            raise fail(f"cannot read it as safetensors ({type(exc).__name__}: {exc})") from exc
        if METADATA_KEY not in metadata:
            raise fail(f"no {METADATA_KEY!r} config in its safetensors metadata")
        try:
            config = json.loads(metadata[METADATA_KEY])
        except ValueError as exc:
            raise fail(f"its config is not JSON ({exc})") from exc
        if not isinstance(config, dict) or config.get("format") != FORMAT:
            raise fail(f"config format is {config.get('format') if isinstance(config, dict) else config!r}, "
                       f"expected {FORMAT!r}")
        if config.get("format_version") != FORMAT_VERSION:
            raise fail(f"config format_version {config.get('format_version')!r}; this anibench reads {FORMAT_VERSION}")
        if keys != set(TENSORS):
            raise fail(f"tensors {sorted(keys)}, expected {list(TENSORS)}")
        width = len(config.get("backbone", {}).get("feature_names", ()))
        shapes = {k: tuple(v.shape) for k, v in tensors.items()}
        if shapes != {"mean": (width,), "scale": (width,), "coef": (width,), "intercept": (1,)}:
            raise fail(f"tensor shapes {shapes} do not match the config's {width} backbone features")
        return cls(tensors["mean"].astype(np.float64), tensors["scale"].astype(np.float64),
                   tensors["coef"].astype(np.float64), float(tensors["intercept"][0]), config)


def _safetensors() -> Any:
    """The safetensors package (numpy API only: no torch), or a clear error saying how to install it."""
    try:
        import safetensors
        import safetensors.numpy  # noqa: F401
    except ImportError as exc:
        from anibench.runtime.devices import MissingDependencyError

        raise MissingDependencyError("reward heads are stored as safetensors files: install it with "
                                     "pip install 'safetensors>=0.4' (part of anibench[neural])") from exc
    return safetensors


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


# -- fitting ------------------------------------------------------------------------------------------
def standardise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and standard deviations (ddof 0); constant columns get scale 1."""
    mean = x.mean(0)
    scale = x.std(0)
    scale = np.where(scale > 1e-12, scale, 1.0)
    return mean, scale


def loo_errors(z: np.ndarray, y: np.ndarray, alphas: Sequence[float]) -> np.ndarray:
    """Mean squared leave-one-out error of ridge (with intercept) for each alpha, exactly.

    ``z`` are standardised (centred) features; with the intercept unpenalised the hat matrix is
    ``1/n + Z (ZᵀZ + αI)⁻¹ Zᵀ``, computed through the SVD of ``Z``.
    """
    n = len(y)
    u, s, _ = np.linalg.svd(z, full_matrices=False)
    uy = u.T @ (y - y.mean())
    out = []
    for alpha in alphas:
        shrink = s**2 / (s**2 + alpha)
        fitted = y.mean() + u @ (shrink * uy)
        hat = 1.0 / n + np.sum((u**2) * shrink, axis=1)
        residual = (y - fitted) / np.maximum(1.0 - hat, 1e-9)
        out.append(float(np.mean(residual**2)))
    return np.asarray(out)


def fit_ridge(x: np.ndarray, y: np.ndarray, *, alphas: Sequence[float] = DEFAULT_ALPHAS,
              config: Mapping[str, Any] | None = None) -> RidgeHead:
    """Fit a :class:`RidgeHead` on (N, D) features and N targets; the penalty is the alpha of least
    leave-one-out error over ``alphas`` (recorded in ``config['model']``)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or len(x) != len(y) or len(y) < 3:
        raise InputError(f"a head needs at least 3 rated training videos, got {len(y)}")
    mean, scale = standardise(x)
    z = (x - mean) / scale
    errors = loo_errors(z, y, alphas)
    best = int(np.argmin(errors))
    alpha = float(alphas[best])
    d = z.shape[1]
    coef = np.linalg.solve(z.T @ z + alpha * np.eye(d), z.T @ (y - y.mean()))
    model = {"kind": "ridge", "alpha": alpha, "alphas": list(alphas), "loo_mse": float(errors[best]),
             "standardise": "z-score with the training videos' mean and std (ddof 0; constant features: scale 1)",
             "output": "clamp(raw, 0, 1); raw kept"}
    if best == len(alphas) - 1:
        model["note"] = ("the largest penalty was chosen: on the training videos the features predicted the ratings "
                         "no better than their mean")
    return RidgeHead(mean, scale, coef, float(y.mean()), {**(config or {}), "model": model})


def head_config(*, name: str, dimension: str, backbone: Any, training: Mapping[str, Any]) -> dict[str, Any]:
    """The config stored with a head (see the module docstring)."""
    import anibench
    from anibench.reward.ratings import RATING_MAX, RATING_MIN

    return {
        "format": FORMAT, "format_version": FORMAT_VERSION, "name": name, "dimension": dimension,
        "backbone": {**backbone.describe(), "feature_names": list(backbone.feature_names)},
        "target": {"mapping": "(rating - 1) / 4", "ratings": [RATING_MIN, RATING_MAX], "range": [0.0, 1.0],
                   "raters": "mean over a video's raters"},
        "training": dict(training),
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "anibench_version": anibench.__version__,
    }


def split_videos(keys: Sequence[str], holdout: float, seed: int) -> tuple[list[str], list[str]]:
    """(train, held-out) keys: a seeded permutation of the sorted keys (video sha256), so every row of a
    video — every rater, every copy of the same file — falls on one side. ``holdout`` in [0, 1)."""
    if not 0.0 <= holdout < 1.0 or math.isnan(holdout):
        raise InputError(f"--holdout must be in [0, 1), got {holdout}")
    ordered = sorted(set(keys))
    order = np.random.default_rng(seed).permutation(len(ordered))
    count = int(round(holdout * len(ordered)))
    if holdout > 0 and len(ordered) >= 4:
        count = min(max(count, 1), len(ordered) - 3)
    held = {ordered[i] for i in order[:count]}
    return [k for k in ordered if k not in held], [k for k in ordered if k in held]


# -- the weights store --------------------------------------------------------------------------------
def head_entry_name(name: str, dimension: str) -> str:
    """Weights entry of the head trained as ``name`` for ``dimension``: ``<name>.<dimension>``."""
    return f"{name}.{dimension}"


def register_head(path: Path, entry: str, *, store: Any = None, replace: bool = False, description: str = "") -> Any:
    """Register a head file in the weights store (``manifest.local.yaml``) and import it."""
    from anibench.runtime.weights import WeightStore

    store = store or WeightStore()
    return store.add_local(entry, path, format="safetensors", description=description,
                           used_by=["anime_reward.trained"], replace=replace)


def load_registered(entry: str, *, runtime: Any = None) -> tuple[RidgeHead, Any]:
    """(head, resolved weight) of a registered head; missing → the core's MissingWeightsError."""
    from anibench.runtime.context import Runtime

    runtime = runtime or Runtime()
    resolved = runtime.resolve_weights(entry)
    return RidgeHead.load(resolved.path, name=entry), resolved


def heads_named(name: str, *, store: Any = None) -> list[str]:
    """Entries of ``name``: the entry itself when it exists, else every ``name.<dimension>`` head."""
    from anibench.reward.ratings import DIMENSIONS
    from anibench.runtime.weights import WeightStore

    store = store or WeightStore()
    names = store.names()
    if name in names:
        return [name]
    found = [head_entry_name(name, d) for d in DIMENSIONS if head_entry_name(name, d) in names]
    if not found:
        raise InputError(f"no trained head named {name!r} in the weights store {store.root} (expected an entry "
                         f"{name!r} or {name}.<dimension>; see: anibench weights list)")
    return found
