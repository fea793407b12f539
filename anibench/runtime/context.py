"""The runtime a scoring or generation pass runs in: device, dtype, weights, loaded model families.

A :class:`Runtime` is created once per process (per ``anibench run``, per scoring
session, per reward server). Model families (:class:`anibench.features.ModelFamily`) are
loaded through it on first use and stay loaded until released, so a backbone shared by
several scorers (DINO for two VBench dimensions) is loaded once. Weights are resolved
through the weights manifest (:mod:`anibench.runtime.weights`): offline, never
downloaded silently, never replaced by random weights.

torch is imported only when a model family is loaded: the weight-free core never needs it.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from anibench.errors import AnibenchError, MissingWeightsError

DEFAULT_BATCH_SIZE = 16
ALIASES_ENV = "ANIBENCH_WEIGHT_ALIASES"


def aliases_from_env() -> dict[str, str]:
    """``$ANIBENCH_WEIGHT_ALIASES``: ``entry=substitute[,entry=substitute]`` (see :attr:`Runtime.weight_aliases`)."""
    pairs = [p for p in os.environ.get(ALIASES_ENV, "").split(",") if p.strip()]
    out = {}
    for pair in pairs:
        name, sep, substitute = pair.partition("=")
        if not sep or not name.strip() or not substitute.strip():
            raise AnibenchError(f"${ALIASES_ENV}: expected entry=substitute pairs separated by commas, got {pair!r}")
        out[name.strip()] = substitute.strip()
    return out


@dataclass
class Runtime:
    """Device, dtype, batch size and weights for model-based features and generators.

    ``device`` and ``dtype`` are the user's requests (``auto``, ``cpu``, ``cuda:1``;
    ``auto``, ``fp32``, ``bf16``, ``fp16``), resolved on first use. ``batch_size`` is how
    many inputs a model family runs at once; it never changes values' identity.
    ``weight_aliases`` substitutes one manifest entry for another of the same architecture
    (``{"dino_vitb16": "my_anime_dino"}``: a fine-tuned checkpoint, or seeded random
    weights in tests); the substitute's sha256 enters every score identity and its name the
    provenance. Default: ``$ANIBENCH_WEIGHT_ALIASES``.
    """

    device: str = "auto"
    dtype: str = "auto"
    batch_size: int = DEFAULT_BATCH_SIZE
    weights_root: str | None = None
    weight_aliases: Mapping[str, str] = field(default_factory=aliases_from_env)
    _selection: Any = field(default=None, init=False, repr=False)
    _families: dict[str, Any] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, init=False, repr=False)
    # One model forward at a time per runtime: a forward already uses every core (CPU intra-op threads) or the
    # device's queue, so two families running at once from two decoding workers only oversubscribe it
    # (measured: the six AnimeReward heads in one session ran 15 % slower than alone before this). Reentrant: a
    # family's forward may call another family (the character pipeline embeds with the recogniser).
    model_lock: threading.RLock = field(default_factory=threading.RLock, init=False, repr=False)

    # -- device and precision ------------------------------------------------------------
    @property
    def selection(self) -> Any:
        """The resolved device selection (see :mod:`anibench.runtime.devices`)."""
        if self._selection is None:
            from anibench.runtime.devices import select_runtime

            self._selection = select_runtime(self.device, self.dtype)
        return self._selection

    @property
    def precision(self) -> str:
        """The numeric precision models run in (``fp32``, ``bf16``, ``fp16``): part of score identities."""
        return self.selection.dtype

    @property
    def torch_device(self) -> Any:
        return self.selection.torch_device()

    @property
    def torch_dtype(self) -> Any:
        return self.selection.torch_dtype()

    def describe(self) -> dict[str, Any]:
        """Provenance: the device and dtype requested and used, the batch size."""
        described = {"requested": {"device": self.device, "dtype": self.dtype}, "batch_size": self.batch_size}
        if self._selection is not None:
            described.update(self._selection.provenance())
        return described

    # -- weights ----------------------------------------------------------------------------
    @property
    def weights(self) -> Any:
        from anibench.runtime.weights import WeightStore

        return WeightStore(self.weights_root)

    def resolve_weights(self, name: str) -> Any:
        """The installed weights of manifest entry ``name`` (or its alias), or :class:`MissingWeightsError`."""
        return self.weights.resolve(self.weight_aliases.get(name, name))

    # -- model families -------------------------------------------------------------------
    def family(self, name: str) -> Any:
        """The model family ``name``, loaded on first use (its weights resolved, moved to the device)."""
        from anibench.features.base import MODEL_FAMILIES

        with self._lock:
            if name not in self._families:
                self._families[name] = MODEL_FAMILIES.get(name)(self)
            return self._families[name]

    def loaded_families(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._families)

    def release(self, names: Iterable[str] | None = None) -> None:
        """Unload model families (all when ``names`` is None) and free device memory."""
        with self._lock:
            for name in list(self._families if names is None else names):
                family = self._families.pop(name, None)
                if family is not None:
                    family.release()
        if self._selection is not None and self._selection.kind == "cuda":
            import torch

            torch.cuda.empty_cache()


def family_weight_names(families: Iterable[str]) -> list[str]:
    """The weights manifest entries the named model families load."""
    from anibench.features.base import MODEL_FAMILIES

    names: list[str] = []
    for family in families:
        names += [w for w in MODEL_FAMILIES.get(family).weights if w not in names]
    return names


def missing_weights(families: Iterable[str], runtime: Runtime | None = None) -> MissingWeightsError | None:
    """Every missing weight of ``families`` in one error a user would get (each file and how to provide it), or None."""
    return missing_entries(family_weight_names(families), runtime)


def missing_entries(names: Iterable[str], runtime: Runtime | None = None) -> MissingWeightsError | None:
    """Every missing manifest entry of ``names`` in one error (each file and how to provide it), or None."""
    names = list(names)
    if not names:
        return None
    runtime = runtime or Runtime()
    errors = []
    for name in names:
        try:
            runtime.resolve_weights(name)
        except MissingWeightsError as exc:
            errors.append(exc)
    if len(errors) <= 1:
        return errors[0] if errors else None
    return MissingWeightsError(f"{len(errors)} weights are missing:\n" + "\n".join(e.message for e in errors),
                               path=errors[0].path)


def family_weights(families: Iterable[str], runtime: Runtime | None = None) -> list[dict[str, Any]]:
    """Provenance of the weights behind ``families``: name, file, sha256, source (or why missing)."""
    runtime = runtime or Runtime()
    out = []
    for name in family_weight_names(families):
        try:
            out.append(runtime.resolve_weights(name).provenance())
        except AnibenchError as exc:
            out.append({"name": name, "missing": str(exc)})
    return out


def family_digests(families: Iterable[str], runtime: Runtime | None) -> dict[str, Any]:
    """What makes model outputs what they are: each family's version, weights' sha256, and the precision."""
    from anibench.features.base import MODEL_FAMILIES

    runtime = runtime or Runtime()
    out: dict[str, Any] = {"precision": runtime.precision}
    for family in families:
        cls = MODEL_FAMILIES.get(family)
        digests = {}
        for name in cls.weights:
            try:
                digests[name] = runtime.resolve_weights(name).sha256
            except MissingWeightsError:
                digests[name] = None
        out[family] = {"version": cls.version, "weights": digests}
    return out
