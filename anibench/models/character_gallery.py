"""AnimeReward's character scores from recogniser embeddings: the published closed-set gallery score and
anibench's open-set score against the case's own guide image.

Published recipe (bilibili/Index-anisora at 171fe63, ``reward/character/BLIP/infer_retrieval_pretrain_v2.py``,
``compute_gallery_embeds``, ``group_gallery_according_to_names`` and ``evaluation``; anisora.md §2.3):

- embeddings are ``vision_proj(visual_encoder(x)[:, 0])`` of the BLIP ViT-L recogniser, **not** normalised;
- gallery: ``character/BLIP/data/gallerys.json`` (1,680 crops with a ``caption`` = identity name); each
  crop is read with PIL, resized to 224×224 bicubic (aspect squashed), ``ToTensor`` and CLIP mean/std;
- similarities: query (objects, 8 frames, D) @ gallery (G, D)ᵀ, then averaged per identity, where
  identities are the gallery captions **lower-cased** and ordered by first appearance (the 874 captions
  of the published gallery fold into 846 identities this way, so a uniform softmax is 1/846);
- softmax over the identities per frame, mean over the 8 frames, the top-1 probability per object;
- the clip's value is the plain mean over its objects (``evaluation`` groups objects by video and returns
  the first video's mean).

Open-set mode (anibench's, not published): see :func:`open_set_scores`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

REFERENCE = "bilibili/Index-anisora@171fe63 reward/character/BLIP/infer_retrieval_pretrain_v2.py"
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
GALLERY_IMAGE_SIZE = 224


@dataclass(frozen=True)
class GalleryEntry:
    image: str  # path relative to the gallery folder (``character/videos`` in the published layout)
    caption: str  # identity name as published (case kept)


def read_gallery_json(path: str | Path) -> list[GalleryEntry]:
    """The gallery list (``[{"image": ..., "caption": ...}, ...]``); a clear error when malformed."""
    from anibench.errors import InputError

    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the character gallery list ({exc})", path=path) from exc
    if not isinstance(raw, list) or not raw:
        raise InputError("the character gallery list must be a non-empty JSON list", path=path)
    entries = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("image"), str) or not isinstance(
                item.get("caption"), str):
            raise InputError(f"gallery entry {i} must be {{'image': str, 'caption': str}}, got {item!r}", path=path)
        entries.append(GalleryEntry(item["image"], item["caption"]))
    return entries


def identity_groups(captions: Sequence[str]) -> tuple[list[str], list[list[int]]]:
    """(identity names, gallery rows of each): captions lower-cased, identities in first-seen order."""
    groups: dict[str, list[int]] = {}
    for index, caption in enumerate(captions):
        groups.setdefault(caption.lower(), []).append(index)
    return list(groups), list(groups.values())


def gallery_pixels(image: np.ndarray) -> np.ndarray:
    """One gallery crop (RGB uint8) → float32 (3,224,224): PIL bicubic squash, ÷255, CLIP mean/std."""
    from PIL import Image

    resized = np.asarray(Image.fromarray(image).resize((GALLERY_IMAGE_SIZE, GALLERY_IMAGE_SIZE), Image.BICUBIC),
                         dtype=np.float32)
    mean = np.asarray(CLIP_MEAN, dtype=np.float32)[:, None, None]
    std = np.asarray(CLIP_STD, dtype=np.float32)[:, None, None]
    return (resized.transpose(2, 0, 1) / np.float32(255.0) - mean) / std


@dataclass
class Gallery:
    """Gallery embeddings (G, D) with their captions; identities as the published grouping makes them."""

    embeddings: np.ndarray
    captions: list[str]
    names: list[str] = field(init=False)
    groups: list[list[int]] = field(init=False)

    def __post_init__(self) -> None:
        self.embeddings = np.asarray(self.embeddings, dtype=np.float32)
        if self.embeddings.ndim != 2 or len(self.embeddings) != len(self.captions):
            raise ValueError(f"gallery embeddings {self.embeddings.shape} do not match {len(self.captions)} captions")
        self.names, self.groups = identity_groups(self.captions)


def grouped_similarities(query: Any, gallery: Gallery) -> Any:
    """(O, F, D) query embeddings → (O, F, identities): dot products averaged over each identity's crops."""
    import torch

    q = torch.as_tensor(np.asarray(query, dtype=np.float32))
    g = torch.from_numpy(gallery.embeddings)
    sims = q @ g.t()
    return torch.stack([sims[:, :, rows].mean(dim=-1) for rows in gallery.groups], dim=-1)


@dataclass(frozen=True)
class GalleryResult:
    value: float  # mean over objects of the top-1 probability
    per_object: list[dict[str, Any]]


def gallery_scores(query: Any, gallery: Gallery, *, top: int = 3) -> GalleryResult:
    """The published closed-set score of one clip's objects (query (O, F, D), unnormalised embeddings).

    Per object: softmax over identities per frame, mean over frames, top-1 probability (and its name);
    the clip's value is the mean over objects.
    """
    import torch

    grouped = grouped_similarities(query, gallery)
    probs = torch.softmax(grouped, dim=-1).mean(dim=1)  # (O, identities)
    k = min(top, probs.shape[-1])
    best, order = torch.topk(probs, k=k, dim=-1)
    per_object = []
    for o in range(probs.shape[0]):
        per_object.append({
            "top1_probability": float(best[o, 0]),
            "top1_identity": gallery.names[int(order[o, 0])],
            "top": [[gallery.names[int(i)], float(p)] for p, i in zip(best[o], order[o])],
        })
    value = float(np.mean([p["top1_probability"] for p in per_object])) if per_object else float("nan")
    return GalleryResult(value, per_object)


@dataclass(frozen=True)
class OpenSetResult:
    value: float
    per_object: list[dict[str, Any]]
    matching: list[dict[str, Any]]


def open_set_scores(clip_objects: Any, guide_objects: Any, tracked_from: Sequence[int] | None = None) -> OpenSetResult:
    """How much the characters tracked in the clip look like the characters of the case's guide image.

    ``clip_objects`` (O, F, D): the recogniser embeddings of the O tracked objects' F crops;
    ``guide_objects`` (R, D): the embeddings of the R characters GroundingDINO found in the guide image,
    each segmented in the guide by the tracker from its box and cropped exactly like the clip crops
    (mask box, background zeroed, square pad, 224 bilinear); ``tracked_from[o]``: the guide box object o
    was tracked from (default: o).

    Per tracked object o: the mean over its frames of the cosine between the L2-normalised frame
    embedding and the L2-normalised embedding of the guide character it was tracked from, mapped to
    [0, 1] by ``(1 + cos) / 2``. This is the open-set counterpart of the gallery probability: 1 = every
    frame embeds exactly like the guide character, 0.5 = orthogonal (unrelated), 0 = opposite. The
    clip's value is the mean over objects.

    The matching is recorded, too: for each object, the guide character whose embedding is closest on
    average (``best_guide``) and whether it is the one it was tracked from (``identity_kept``); with
    several guide characters, an object that drifted onto another character shows up there.
    """
    import torch

    q = torch.as_tensor(np.asarray(clip_objects, dtype=np.float32))
    r = torch.as_tensor(np.asarray(guide_objects, dtype=np.float32))
    if q.ndim != 3 or r.ndim != 2 or q.shape[-1] != r.shape[-1]:
        raise ValueError(f"open-set embeddings: clip {tuple(q.shape)} vs guide {tuple(r.shape)}")
    sources = list(range(q.shape[0])) if tracked_from is None else [int(i) for i in tracked_from]
    if len(sources) != q.shape[0] or any(not 0 <= i < r.shape[0] for i in sources):
        raise ValueError(f"tracked_from {sources} does not index the {r.shape[0]} guide characters")
    qn = torch.nn.functional.normalize(q, dim=-1)
    rn = torch.nn.functional.normalize(r, dim=-1)
    cos = torch.einsum("ofd,rd->ofr", qn, rn).mean(dim=1)  # (O, R) mean cosine over frames
    per_object, matching = [], []
    for o in range(q.shape[0]):
        source = sources[o]
        own = float(cos[o, source])
        best = int(torch.argmax(cos[o]))
        per_object.append({"cosine": own, "score": min(1.0, max(0.0, (1.0 + own) / 2.0))})
        matching.append({"object": o, "tracked_from_guide_box": source, "best_guide": best,
                         "best_cosine": float(cos[o, best]), "identity_kept": best == source,
                         "cosines": [float(c) for c in cos[o]]})
    value = float(np.mean([p["score"] for p in per_object])) if per_object else float("nan")
    return OpenSetResult(value, per_object, matching)


def gallery_image_path(root: str | Path, image: str) -> Path | None:
    """Where a gallery list's ``image`` (relative to the published ``character/videos`` folder) is in the
    installed archive: at the root, or under a top-level ``videos/`` folder of the archive."""
    root = Path(root)
    for base in (root, root / "videos"):
        path = (base / image).resolve()
        if path.is_file() and root.resolve() in path.parents:
            return path
    return None


def convert_gallery_archive(source: Path, target_dir: Path) -> None:
    """Weights converter of ``anime_reward_character_gallery_images``: unpack ``videos.tar.gz`` (only regular
    files and folders, no links, nothing outside the target: tarfile's ``data`` filter)."""
    import tarfile

    from anibench.errors import InputError

    try:
        with tarfile.open(source) as archive:
            archive.extractall(target_dir, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise InputError(f"cannot unpack the character gallery archive ({type(exc).__name__}: {exc})",
                         path=source) from exc
