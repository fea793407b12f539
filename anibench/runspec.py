"""Run specifications: suite × generators × conditions × seeds × scorers, from YAML or flags.

Example ``run.yaml``::

    suite: {name: anisora, path: /data/anisora-benchmark, prompts: prompts.txt}
    generators:
      - reference
      - {name: crossfade, label: crossfade-linear}
    conditions: [i2v, first-last, "keyframes@0,0.5,1"]
    seeds: [0, 1]
    scorers: [dynamic_degree, {name: guide_psnr, params: {max_db: 60}}]
    limit: 100        # first N cases (optional)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from anibench.errors import InputError
from anibench.suite import CASE_ID_PATTERN

DEFAULT_GENERATORS = ("reference", "static", "crossfade")
DEFAULT_CONDITIONS = ("i2v", "first-last")


def check_model_name(name: str) -> str:
    """Model names become folder names and table rows: letters, digits, '.', '_', '-'."""
    if not CASE_ID_PATTERN.match(name or ""):
        raise InputError(f"model name {name!r} must start with a letter or digit and use only letters, digits, '.', '_', '-'")
    return name


@dataclass(frozen=True)
class PluginSpec:
    """A plugin by name with parameters; ``label`` tells two configurations of one plugin apart."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)
    label: str | None = None

    @property
    def display_name(self) -> str:
        return self.label or self.name

    @classmethod
    def parse(cls, value: "str | dict | PluginSpec") -> "PluginSpec":
        """``"name"``, ``"name:key=value,key=value"`` or ``{"name", "params", "label"}``."""
        if isinstance(value, PluginSpec):
            return value
        if isinstance(value, dict):
            unknown = set(value) - {"name", "params", "label"}
            if "name" not in value or unknown:
                raise InputError(f"plugin spec {value!r} needs 'name' and takes only 'params' and 'label'")
            return cls(str(value["name"]), dict(value.get("params") or {}), value.get("label"))
        name, _, rest = str(value).partition(":")
        params: dict[str, Any] = {}
        for pair in filter(None, rest.split(",")):
            key, sep, raw = pair.partition("=")
            if not sep:
                raise InputError(f"plugin spec {value!r}: expected key=value after ':'")
            params[key.strip()] = yaml.safe_load(raw)
        return cls(name.strip(), params)


@dataclass
class RunSpec:
    """What a run does. ``scorers=None`` means every scorer available on this machine."""

    suite: dict[str, Any] = field(default_factory=lambda: {"name": "smoke"})
    generators: list[PluginSpec] = field(default_factory=lambda: [PluginSpec(g) for g in DEFAULT_GENERATORS])
    conditions: list[str] = field(default_factory=lambda: list(DEFAULT_CONDITIONS))
    seeds: list[int] = field(default_factory=lambda: [0])
    scorers: list[PluginSpec] | None = None
    limit: int | None = None
    cases: list[str] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.suite, str):
            name, _, path = self.suite.partition(":")
            self.suite = {"name": name, **({"path": path} if path else {})}
        self.generators = [PluginSpec.parse(g) for g in self.generators]
        if self.scorers is not None:
            self.scorers = [PluginSpec.parse(s) for s in self.scorers]
        self.seeds = [int(s) for s in self.seeds]
        labels = [check_model_name(g.display_name) for g in self.generators]
        duplicates = {label for label in labels if labels.count(label) > 1}
        if duplicates:
            raise InputError(f"generators {sorted(duplicates)} appear twice; give each a distinct 'label'")
        if not self.generators or not self.conditions or not self.seeds:
            raise InputError("a run needs at least one generator, one condition and one seed")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunSpec":
        known = {"suite", "generators", "conditions", "seeds", "scorers", "limit", "cases"}
        unknown = set(data) - known
        if unknown:
            raise InputError(f"unknown run spec key(s) {sorted(unknown)}; known: {sorted(known)}")
        return cls(**data)

    @classmethod
    def from_yaml(cls, path: str | Path) -> "RunSpec":
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise InputError(f"cannot read run spec ({exc})", path=path) from exc
        if not isinstance(data, dict):
            raise InputError("a run spec is a YAML mapping", path=path)
        try:
            return cls.from_dict(data)
        except InputError as exc:
            raise exc.with_context(path=path)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
