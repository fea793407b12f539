"""What every plugin class shares: a name, a version and validated parameters."""

from __future__ import annotations

import hashlib
import json
from typing import Any, ClassVar, Mapping

from anibench.errors import InputError


class Configurable:
    """A plugin with ``default_params``; constructor keywords override them, unknown ones are refused.

    ``kind`` names the plugin family in messages ("scorer", "generator").
    """

    kind: ClassVar[str] = "plugin"
    name: ClassVar[str]
    version: ClassVar[str] = "1"
    default_params: ClassVar[Mapping[str, Any]] = {}

    def __init__(self, **params: Any):
        unknown = set(params) - set(self.default_params)
        if unknown:
            known = ", ".join(self.default_params) or "none"
            raise InputError(f"{self.kind} {self.name!r} has no parameter(s) {sorted(unknown)}; known: {known}")
        self._params = {**self.default_params, **params}

    @property
    def params(self) -> dict[str, Any]:
        return dict(self._params)

    def params_hash(self) -> str:
        """Short sha256 of the parameters (part of every cache key and output identity)."""
        return hashlib.sha256(json.dumps(self._params, sort_keys=True, default=str).encode()).hexdigest()[:16]
