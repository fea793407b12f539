"""Errors that name what went wrong, for which case and in which file.

Every error anibench raises about user input derives from :class:`AnibenchError`
and carries the case id and the file it concerns, so a run can record it next to
the case and carry on with the others.
"""

from __future__ import annotations

from pathlib import Path


class AnibenchError(Exception):
    """Base class: a message plus the case and the file it concerns (either may be unknown)."""

    def __init__(self, message: str, *, case_id: str | None = None, path: str | Path | None = None):
        self.message = message
        self.case_id = case_id
        self.path = str(path) if path is not None else None
        super().__init__(self._render())

    def _render(self) -> str:
        where = []
        if self.case_id:
            where.append(f"case {self.case_id!r}")
        if self.path:
            where.append(f"file {self.path}")
        prefix = ", ".join(where)
        return f"{prefix}: {self.message}" if prefix else self.message

    def with_context(self, *, case_id: str | None = None, path: str | Path | None = None) -> "AnibenchError":
        """Fill in the case or the file where the raiser did not know them; returns self."""
        if self.case_id is None and case_id is not None:
            self.case_id = case_id
        if self.path is None and path is not None:
            self.path = str(path)
        self.args = (self._render(),)
        return self


class InputError(AnibenchError):
    """A file or value given to anibench is unusable (missing, corrupt, wrong format or size)."""


class VideoDecodeError(InputError):
    """A video file could not be decoded into frames."""


class ImageFormatError(InputError):
    """A guide image is not 8-bit RGB (grayscale, transparent, 16-bit) or cannot be read."""


class SuiteError(InputError):
    """A suite's layout, manifest or prompt file is invalid."""


class NotApplicable(AnibenchError):
    """A scorer or condition does not apply to a case (e.g. no guide frame at that position).

    Not a failure: runs record it separately and leave the cell empty.
    """


class MissingWeightsError(AnibenchError):
    """A model-based scorer's weights are not on this machine; the message says how to get them."""


class RegistryError(AnibenchError):
    """Unknown or conflicting plugin name."""
