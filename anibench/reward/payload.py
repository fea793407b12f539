"""Wire formats of the reward service: the binary frames container and the JSON request.

Pure numpy + json (no torch, no anibench imports beyond errors): the client on a trainer
machine and the server share this module.

Binary container (``Content-Type: application/vnd.anibench.reward+binary``), version 1::

    bytes 0-7    magic  b"ANIBRW\\x00\\x01"   (name, NUL, format version)
    bytes 8-11   N      uint32 little-endian, length of the header (at most MAX_HEADER_BYTES)
    bytes 12..   header N bytes of UTF-8 JSON (below)
    then         data   every blob, back to back; blobs are addressed by (offset, length)
                        relative to the start of this section

Header::

    {"request_id": "…", "scorers": ["…"] (optional subset),
     "items": [{"id": "…", "prompt": "…", "fps": 16.0,
                "video": BLOB,
                "guides": [{"position": 0.0, "image": BLOB}]}]}

    BLOB = {"offset": o, "length": n, "format": "raw", "shape": [T, H, W, 3], "layout": "THWC"}
         | {"offset": o, "length": n, "format": "raw", "shape": [T, 3, H, W], "layout": "TCHW"}
         | {"offset": o, "length": n, "format": "encoded"}     (mp4/webm/... bytes; PNG/JPEG for guides)

Raw blobs are uint8 only; guides use layouts ``HWC`` / ``CHW`` with shape (H, W, 3) / (3, H, W).
Raw frames are used in place (``np.frombuffer`` views of the body: no copy, no decode) and
their limits (frames per clip, pixels per frame, items per batch) are checked from the
header before any blob is touched. Nothing in a body is ever unpickled.

The JSON request (``application/json``) has the same shape, with ``"data": "<base64>"`` in
place of ``offset``/``length`` (and, when the server allows it, ``"path"``: a file under one
of its allowed folders).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

MAGIC = b"ANIBRW\x00\x01"
BINARY_CONTENT_TYPE = "application/vnd.anibench.reward+binary"
MAX_HEADER_BYTES = 16 * 1024 * 1024
_PREFIX = struct.Struct("<8sI")

VIDEO_LAYOUTS = {"THWC": (0, 1, 2, 3), "TCHW": (0, 2, 3, 1)}  # → (T, H, W, C)
IMAGE_LAYOUTS = {"HWC": (0, 1, 2), "CHW": (1, 2, 0)}


class PayloadError(ValueError):
    """A request that cannot be accepted; ``status`` is the HTTP status it maps to (413 or 422)."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Limits:
    """What one request may hold; checked from headers and shapes before anything is decoded.

    ``max_frames`` and ``max_pixels`` also apply to encoded clips, from their container
    metadata before decoding (there they fail the item, not the request).
    """

    max_body_bytes: int = 512 * 1024 * 1024
    max_batch: int = 64
    max_frames: int = 1024
    max_pixels: int = 4096 * 4096
    max_guides: int = 16
    max_prompt_chars: int = 20_000

    def describe(self) -> dict[str, int]:
        return {k: int(getattr(self, k)) for k in self.__dataclass_fields__}


@dataclass
class ClipData:
    """One clip or guide image as received: raw uint8 pixels (in (T|·, H, W, 3) order), encoded bytes, or a path."""

    kind: str  # "frames" | "encoded" | "path"
    value: Any


@dataclass
class RequestItem:
    """One item of a request, decoded from its wire form (frames still as views of the body)."""

    video: ClipData
    prompt: str = ""
    fps: float | None = None
    id: str | None = None
    guides: list[tuple[ClipData, float | None]] = field(default_factory=list)


@dataclass
class ParsedRequest:
    items: list[RequestItem]
    request_id: str | None = None
    scorers: list[str] | None = None


# -- encoding (client side) -----------------------------------------------------------------
def _as_uint8_array(value: Any) -> np.ndarray:
    """numpy or torch (on any device) → a numpy uint8 array, without copying when it already is one."""
    if type(value).__module__.startswith("torch"):
        value = value.detach().cpu().numpy()
    array = np.asarray(value)
    if array.dtype != np.uint8:
        raise PayloadError(f"frames must be uint8, got {array.dtype}")
    return array


def video_layout(shape: Sequence[int], layout: str | None = None) -> str:
    """``THWC`` or ``TCHW`` for a 4-D uint8 clip (``layout`` when given, else from where the 3 channels are)."""
    if len(shape) != 4:
        raise PayloadError(f"a clip's frames must be 4-D (T, H, W, 3) or (T, 3, H, W), got shape {tuple(shape)}")
    if layout is not None:
        layout = layout.upper()
        if layout not in VIDEO_LAYOUTS:
            raise PayloadError(f"unknown frame layout {layout!r}; use THWC or TCHW")
        return layout
    if shape[-1] == 3:
        return "THWC"
    if shape[1] == 3:
        return "TCHW"
    raise PayloadError(f"frames of shape {tuple(shape)} have no axis of 3 colour channels (RGB)")


def image_layout(shape: Sequence[int], layout: str | None = None) -> str:
    if len(shape) != 3:
        raise PayloadError(f"a guide image must be 3-D (H, W, 3) or (3, H, W), got shape {tuple(shape)}")
    if layout is not None:
        layout = layout.upper()
        if layout not in IMAGE_LAYOUTS:
            raise PayloadError(f"unknown image layout {layout!r}; use HWC or CHW")
        return layout
    if shape[-1] == 3:
        return "HWC"
    if shape[0] == 3:
        return "CHW"
    raise PayloadError(f"image of shape {tuple(shape)} has no axis of 3 colour channels (RGB)")


def _blob(value: Any, *, image: bool) -> tuple[dict[str, Any], bytes | memoryview]:
    """(descriptor without offset, bytes) of a clip/guide given as bytes, a path's bytes or pixels."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"format": "encoded"}, memoryview(value).cast("B")
    if isinstance(value, (str, Path)):
        return {"format": "encoded"}, Path(value).read_bytes()
    array = _as_uint8_array(value)
    layout = image_layout(array.shape) if image else video_layout(array.shape)
    array = np.ascontiguousarray(array)  # a view already when contiguous
    return {"format": "raw", "shape": list(array.shape), "layout": layout}, memoryview(array).cast("B")


def encode_binary(items: Sequence[Mapping[str, Any]], *, request_id: str | None = None,
                  scorers: Sequence[str] | None = None) -> list[bytes | memoryview]:
    """The binary container of ``items`` as a list of chunks (header first; blobs are not copied).

    Each item: ``video`` (uint8 frames (T,H,W,3)/(T,3,H,W) numpy or torch, encoded bytes, or a
    local file path whose bytes are sent), ``prompt``, ``fps``, ``id``, ``guides`` (images as
    arrays, encoded bytes or paths; or ``{"image": …, "position": p}``).
    """
    blobs, offset = [], 0

    def add(value: Any, image: bool) -> dict[str, Any]:
        nonlocal offset
        descriptor, data = _blob(value, image=image)
        descriptor.update(offset=offset, length=len(data))
        blobs.append(data)
        offset += len(data)
        return descriptor

    header = _describe(items, add, request_id=request_id, scorers=scorers)
    encoded = json.dumps(header, separators=(",", ":")).encode()
    return [_PREFIX.pack(MAGIC, len(encoded)) + encoded, *blobs]


def encode_json(items: Sequence[Mapping[str, Any]], *, request_id: str | None = None,
                scorers: Sequence[str] | None = None) -> dict[str, Any]:
    """The JSON request of ``items`` (base64 blobs): for clients that cannot send the binary container."""
    def blob(value: Any, image: bool) -> dict[str, Any]:
        descriptor, data = _blob(value, image=image)
        descriptor["data"] = base64.b64encode(bytes(data)).decode("ascii")
        return descriptor

    return _describe(items, blob, request_id=request_id, scorers=scorers)


def _describe(items: Sequence[Mapping[str, Any]], blob: Callable[[Any, bool], dict[str, Any]], *,
              request_id: str | None, scorers: Sequence[str] | None) -> dict[str, Any]:
    """The request header both formats share; ``blob(value, is_image)`` describes (and stores) each clip/image."""
    described_items = []
    for item in items:
        entry: dict[str, Any] = {"prompt": item.get("prompt") or "", "video": blob(item["video"], False)}
        if item.get("fps") is not None:
            entry["fps"] = float(item["fps"])
        if item.get("id") is not None:
            entry["id"] = str(item["id"])
        guides = []
        for guide in _guide_list(item.get("guides")):
            value, position = _guide_parts(guide)
            described = {"image": blob(value, True)}
            if position is not None:
                described["position"] = float(position)
            guides.append(described)
        if guides:
            entry["guides"] = guides
        described_items.append(entry)
    request: dict[str, Any] = {"items": described_items}
    if request_id:
        request["request_id"] = request_id
    if scorers:
        request["scorers"] = list(scorers)
    return request


def _guide_parts(guide: Any) -> tuple[Any, Any]:
    """(image, position or None) of a guide given bare or as ``{"image": …, "position": p}``."""
    return (guide.get("image"), guide.get("position")) if isinstance(guide, Mapping) else (guide, None)


def _guide_list(guides: Any) -> list:
    if guides is None:
        return []
    if isinstance(guides, (list, tuple)):
        return list(guides)
    return [guides]  # one image (array, bytes, path or mapping)


# -- decoding (server side) -----------------------------------------------------------------
def decode_binary(body: bytes | bytearray | memoryview, limits: Limits) -> ParsedRequest:
    """Parse the binary container; limits are checked on the header before any blob is read."""
    view = memoryview(body).cast("B")
    if len(view) < _PREFIX.size:
        raise PayloadError("binary body too short for the anibench reward header")
    magic, header_len = _PREFIX.unpack_from(view, 0)
    if magic[:6] != MAGIC[:6]:
        raise PayloadError("not an anibench reward binary body (bad magic); send JSON with Content-Type "
                           "application/json or the binary container")
    if magic != MAGIC:
        raise PayloadError(f"binary format version {magic[7]} is not supported (this server reads version {MAGIC[7]})")
    if header_len > MAX_HEADER_BYTES:
        raise PayloadError(f"binary header of {header_len} bytes exceeds {MAX_HEADER_BYTES}", status=413)
    start = _PREFIX.size + header_len
    if start > len(view):
        raise PayloadError(f"binary header declares {header_len} bytes but the body ends first")
    try:
        header = json.loads(bytes(view[_PREFIX.size:start]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadError(f"binary header is not valid UTF-8 JSON ({exc})") from None
    data = view[start:]

    def fetch(descriptor: Mapping[str, Any], where: str) -> memoryview:
        offset, length = descriptor.get("offset"), descriptor.get("length")
        if not (_is_int(offset) and _is_int(length)) or offset < 0 or length < 0:
            raise PayloadError(f"{where}: offset and length must be non-negative integers")
        if offset + length > len(data):
            raise PayloadError(f"{where}: blob [{offset}, {offset + length}) lies beyond the data section "
                               f"({len(data)} bytes)")
        return data[offset:offset + length]

    return _parse(header, fetch, limits, allow_paths=None)


def decode_json(request: Mapping[str, Any], limits: Limits, *,
                allowed_roots: Sequence[Path] | None = None) -> ParsedRequest:
    """Parse the JSON request (already ``json.loads``-ed); blobs are base64 in ``data``."""
    def fetch(descriptor: Mapping[str, Any], where: str) -> bytes:
        data = descriptor.get("data")
        if not isinstance(data, str):
            raise PayloadError(f"{where}: give the blob as base64 text in 'data'")
        try:
            return base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise PayloadError(f"{where}: 'data' is not valid base64 ({exc})") from None

    return _parse(request, fetch, limits, allow_paths=allowed_roots)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _parse(header: Any, fetch: Callable[[Mapping[str, Any], str], Any], limits: Limits,
           allow_paths: Sequence[Path] | None) -> ParsedRequest:
    if not isinstance(header, Mapping):
        raise PayloadError("the request must be a JSON object with an 'items' list")
    items = header.get("items")
    if not isinstance(items, list) or not items:
        raise PayloadError("the request needs a non-empty 'items' list")
    if len(items) > limits.max_batch:
        raise PayloadError(f"batch of {len(items)} items exceeds the limit of {limits.max_batch} per request; "
                           "split it", status=413)
    request_id = header.get("request_id")
    if request_id is not None and not isinstance(request_id, str):
        raise PayloadError("'request_id' must be a string")
    scorers = header.get("scorers")
    if scorers is not None and not (isinstance(scorers, list) and all(isinstance(s, str) for s in scorers)):
        raise PayloadError("'scorers' must be a list of scorer names")
    # Pass 1: every descriptor's limits, before any blob is read or decoded.
    for i, item in enumerate(items):
        where = f"item {i}"
        if not isinstance(item, Mapping):
            raise PayloadError(f"{where} must be an object")
        _check_descriptor(item.get("video"), f"{where}.video", limits, image=False)
        guides = item.get("guides") or []
        if not isinstance(guides, list):
            raise PayloadError(f"{where}.guides must be a list")
        if len(guides) > limits.max_guides:
            raise PayloadError(f"{where} has {len(guides)} guides; the limit is {limits.max_guides}", status=413)
        for j, guide in enumerate(guides):
            if not isinstance(guide, Mapping):
                raise PayloadError(f"{where}.guides[{j}] must be an object with 'image'")
            _check_descriptor(guide.get("image"), f"{where}.guides[{j}].image", limits, image=True)
            position = guide.get("position")
            if position is not None and not (isinstance(position, (int, float)) and not isinstance(position, bool)
                                             and 0.0 <= position <= 1.0):
                raise PayloadError(f"{where}.guides[{j}].position must be a number in [0, 1]")
        prompt = item.get("prompt", "")
        if prompt is None:
            prompt = ""
        if not isinstance(prompt, str):
            raise PayloadError(f"{where}.prompt must be a string")
        if len(prompt) > limits.max_prompt_chars:
            raise PayloadError(f"{where}.prompt has {len(prompt)} characters; the limit is "
                               f"{limits.max_prompt_chars}", status=413)
        fps = item.get("fps")
        if fps is not None and not (isinstance(fps, (int, float)) and not isinstance(fps, bool)
                                    and math.isfinite(fps) and fps > 0):
            raise PayloadError(f"{where}.fps must be a positive number")
        if item.get("id") is not None and not isinstance(item.get("id"), str):
            raise PayloadError(f"{where}.id must be a string")
    # Pass 2: the blobs.
    parsed = []
    for i, item in enumerate(items):
        video = _clip(item["video"], f"item {i}.video", fetch, allow_paths, image=False)
        guides = [(_clip(g["image"], f"item {i}.guides[{j}].image", fetch, allow_paths, image=True),
                   None if g.get("position") is None else float(g["position"]))
                  for j, g in enumerate(item.get("guides") or [])]
        fps = item.get("fps")
        parsed.append(RequestItem(video, item.get("prompt") or "", None if fps is None else float(fps),
                                  item.get("id"), guides))
    return ParsedRequest(parsed, request_id, scorers)


def _check_descriptor(descriptor: Any, where: str, limits: Limits, *, image: bool) -> None:
    if not isinstance(descriptor, Mapping):
        raise PayloadError(f"{where} must be an object describing the {'image' if image else 'clip'}")
    fmt = descriptor.get("format", "encoded" if "path" not in descriptor else "path")
    if fmt not in ("raw", "encoded", "path"):
        raise PayloadError(f"{where}.format must be 'raw' or 'encoded', got {fmt!r}")
    if fmt != "raw":
        return
    shape = descriptor.get("shape")
    if not (isinstance(shape, list) and all(_is_int(s) and s > 0 for s in shape)):
        raise PayloadError(f"{where}.shape must be a list of positive integers")
    layout = image_layout(shape, descriptor.get("layout")) if image else video_layout(shape, descriptor.get("layout"))
    order = (IMAGE_LAYOUTS if image else VIDEO_LAYOUTS)[layout]
    hwc = [shape[k] for k in order]
    if hwc[-1] != 3:
        raise PayloadError(f"{where}: layout {layout} of shape {shape} does not have 3 colour channels")
    height, width = hwc[-3], hwc[-2]
    if height * width > limits.max_pixels:
        raise PayloadError(f"{where}: {height}x{width} = {height * width} pixels per frame exceeds the limit of "
                           f"{limits.max_pixels}", status=413)
    if not image and hwc[0] > limits.max_frames:
        raise PayloadError(f"{where}: {hwc[0]} frames exceed the limit of {limits.max_frames} per clip",
                           status=413)
    dtype = descriptor.get("dtype", "uint8")
    if dtype != "uint8":
        raise PayloadError(f"{where}: frames must be uint8, got dtype {dtype!r}")


def _clip(descriptor: Mapping[str, Any], where: str, fetch: Callable, allow_paths: Sequence[Path] | None,
          *, image: bool) -> ClipData:
    fmt = descriptor.get("format", "encoded" if "path" not in descriptor else "path")
    if fmt == "path" or "path" in descriptor:
        return ClipData("path", _allowed_path(descriptor.get("path"), where, allow_paths))
    data = fetch(descriptor, where)
    if fmt == "encoded":
        if len(data) == 0:
            raise PayloadError(f"{where}: empty blob")
        return ClipData("encoded", data)
    shape = descriptor["shape"]
    expected = int(np.prod(shape))
    if len(data) != expected:
        raise PayloadError(f"{where}: {len(data)} bytes for shape {shape} (expected {expected} uint8 values)")
    layout = image_layout(shape, descriptor.get("layout")) if image else video_layout(shape, descriptor.get("layout"))
    array = np.frombuffer(data, dtype=np.uint8).reshape(shape)
    order = (IMAGE_LAYOUTS if image else VIDEO_LAYOUTS)[layout]
    if order != tuple(range(len(order))):
        array = np.ascontiguousarray(array.transpose(order))
    return ClipData("frames", array)


def _allowed_path(path: Any, where: str, roots: Sequence[Path] | None) -> Path:
    if not roots:
        raise PayloadError(f"{where}: this server does not read files by path; send the bytes or frames "
                           "(start it with --allow-path DIR to allow paths under DIR)")
    if not isinstance(path, str) or not path:
        raise PayloadError(f"{where}.path must be a non-empty string")
    resolved = Path(path).resolve()
    for root in roots:
        if resolved.is_relative_to(Path(root).resolve()):
            return resolved
    raise PayloadError(f"{where}: path {path!r} is outside the folders this server may read")
