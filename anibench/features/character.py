"""Model families and features of AnimeReward's character head (``anime_reward.character_consistency``).

Families:

* ``anime_reward_character`` — GroundingDINO-base (weights ``anime_reward_character_gdino``, an HF folder),
  the SAM2.1 base+ tracker (``anime_reward_character_sam2``) and the BLIP ViT-L recogniser
  (``anime_reward_character_recognizer``, :mod:`anibench.models.blip_reward`). Its ``run_clip`` runs the
  whole per-clip pipeline (:mod:`anibench.models.character_tracking`): fit the reference image to the frame
  size, detect, track every box through every frame, crop 8 frames per object, embed the crops, and segment
  (one tracker step from its box) and embed each detected character of the reference image itself. The
  feature calls it when the clip's last frame has arrived, one clip at a time, so a clip's frames are not
  kept until the end of the run.
* ``anime_reward_character_gallery`` — the published gallery (list ``anime_reward_character_gallery_list``,
  crops ``anime_reward_character_gallery_images``) embedded by the recogniser **once per family load**
  and kept in memory (1,680 ViT-L forwards: minutes on a CPU, seconds on a GPU).

Features:

* ``anime_reward.character_objects`` (param ``jpeg_roundtrip``): reads every frame of the clip (the published
  tracker runs on the whole video) and the case's first guide image; value: a dict with the detections,
  per-object records, the objects' crop embeddings ``embeddings`` (O, 8, D) and the reference characters'
  embeddings ``guide_embeddings`` (R, D) (both modes read this one feature). Not persisted.
* ``anime_reward.character_gallery``: the family's :class:`~anibench.models.character_gallery.Gallery`
  (reads no frames).
"""

from __future__ import annotations

import threading
from typing import Any, Sequence

import numpy as np

from anibench.errors import InputError, MissingWeightsError
from anibench.features.base import FrameFeature, ModelFamily

GDINO_ENTRY = "anime_reward_character_gdino"
SAM2_ENTRY = "anime_reward_character_sam2"
RECOGNIZER_ENTRY = "anime_reward_character_recognizer"
GALLERY_LIST_ENTRY = "anime_reward_character_gallery_list"
GALLERY_IMAGES_ENTRY = "anime_reward_character_gallery_images"


class CharacterModels(ModelFamily):
    """GroundingDINO + SAM2 + the BLIP ViT-L recogniser; one clip per ``forward`` item."""

    name = "anime_reward_character"
    version = "1"
    weights = (GDINO_ENTRY, SAM2_ENTRY, RECOGNIZER_ENTRY)

    def load(self) -> None:
        from transformers.utils import logging as transformers_logging

        from anibench.models import blip_reward
        from anibench.models.character_tracking import load_grounding_dino, load_sam2_tracker

        transformers_logging.disable_progress_bar()
        device, dtype = self.runtime.torch_device, self.runtime.torch_dtype
        gdino = self.runtime.resolve_weights(GDINO_ENTRY)
        sam2 = self.runtime.resolve_weights(SAM2_ENTRY)
        recognizer = self.runtime.resolve_weights(RECOGNIZER_ENTRY)
        self._digests = {GDINO_ENTRY: gdino.sha256, SAM2_ENTRY: sam2.sha256, RECOGNIZER_ENTRY: recognizer.sha256}
        self.detector = load_grounding_dino(gdino.path, device, dtype, entry=GDINO_ENTRY)
        self.tracker = load_sam2_tracker(sam2.path, device, entry=SAM2_ENTRY)
        self.recognizer = blip_reward.load_blip(recognizer.path, blip_reward.RECOGNIZER, device=device, dtype=dtype)
        self.recognizer_lock = threading.Lock()

    def weight_digests(self) -> dict[str, str]:
        return dict(self._digests)

    def release(self) -> None:
        self.detector = self.tracker = self.recognizer = None

    def embed(self, crops: np.ndarray) -> np.ndarray:
        """Recogniser embeddings (N, D) float32 of normalised (N,3,224,224) crops (unnormalised, as published)."""
        from anibench.models import blip_reward

        with self.recognizer_lock:
            return blip_reward.embed_crops(self.recognizer, crops).float().cpu().numpy()

    def forward(self, batch: Sequence[Any]) -> list[Any]:
        return [self.run_clip(**item) for item in batch]

    def run_clip(self, frames: np.ndarray, reference: np.ndarray, jpeg_roundtrip: bool = True) -> dict[str, Any]:
        """The whole character pipeline on one clip (see :mod:`anibench.models.character_tracking`)."""
        from anibench.models import character_tracking as ct

        frames = np.asarray(frames)
        height, width = frames.shape[1:3]
        fitted, fit_record = ct.fit_reference(reference, height, width)
        detections = ct.detect_characters(self.detector, fitted)
        out: dict[str, Any] = {"reference": fit_record, "detections": detections, "objects": [],
                               "embeddings": np.zeros((0, ct.CROP_FRAMES, 0), np.float32), "tracked_from": [],
                               "tracked_frames": int(len(frames))}
        if not detections:
            return out
        autocast = self.runtime.torch_dtype
        boxes = [d["prompt_box"] for d in detections]
        id_map, ids = ct.track_objects(self.tracker, frames, boxes, autocast_dtype=autocast)
        crops, kept = [], []
        for box_index, object_id in enumerate(ids):
            pixels, record = ct.object_crops(frames, id_map, object_id, jpeg_roundtrip=jpeg_roundtrip)
            record["guide_box"] = box_index
            out["objects"].append(record)
            if pixels is not None:
                crops.append(pixels)
                kept.append(box_index)
        if crops:
            flat = self.embed(np.concatenate(crops))
            out["embeddings"] = flat.reshape(len(crops), ct.CROP_FRAMES, -1)
        out["tracked_from"] = kept
        # the reference's own characters (one tracker step each): cheap, so both modes share this feature
        out.update(self.guide_characters(fitted, boxes, jpeg_roundtrip))
        return out

    def guide_characters(self, fitted: np.ndarray, boxes: Sequence[Sequence[int]],
                         jpeg_roundtrip: bool) -> dict[str, Any]:
        """Each detected character of the (fitted) guide image, segmented by the tracker from its box on the
        one-frame clip [guide] and cropped like the clip's crops; their embeddings (R, D)."""
        from anibench.models import character_tracking as ct

        single = fitted[None]
        crops, records = [], []
        for box in boxes:
            id_map, _ = ct.track_objects(self.tracker, single, [box], autocast_dtype=self.runtime.torch_dtype)
            mask = id_map[0] == 1
            if mask.any():
                source = "tracker mask"
            else:  # the tracker found nothing inside the box: the box itself stands in for the mask
                mask = np.zeros(id_map.shape[1:], bool)
                x0, y0, x1, y1 = box
                mask[max(0, y0):max(0, y1), max(0, x0):max(0, x1)] = True
                source = "detection box (empty tracker mask)"
            if not mask.any():
                mask[:] = True
                source = "whole image (empty box)"
            crop = ct.square_masked_crop(fitted, mask, jpeg_roundtrip=jpeg_roundtrip)
            crops.append(ct._crop_pixels(crop))
            ys, xs = np.where(mask)
            records.append({"box": list(box), "mask_from": source,
                            "mask_box": [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]})
        return {"guide_embeddings": self.embed(np.stack(crops)), "guide_characters": records}


class CharacterGalleryFamily(ModelFamily):
    """The published gallery's recogniser embeddings, computed on first use and kept for the family's life."""

    name = "anime_reward_character_gallery"
    version = "1"
    weights = (GALLERY_LIST_ENTRY, GALLERY_IMAGES_ENTRY)

    def load(self) -> None:
        from anibench.models.character_gallery import read_gallery_json

        listing = self.runtime.resolve_weights(GALLERY_LIST_ENTRY)
        images = self.runtime.resolve_weights(GALLERY_IMAGES_ENTRY)
        self._digests = {GALLERY_LIST_ENTRY: listing.sha256, GALLERY_IMAGES_ENTRY: images.sha256}
        self.entries = read_gallery_json(listing.path)
        self.root = images.path
        self._gallery = None
        self._gallery_lock = threading.Lock()

    def weight_digests(self) -> dict[str, str]:
        return dict(self._digests)

    def forward(self, batch: Sequence[Any]) -> list[Any]:
        return [None for _ in batch]

    def release(self) -> None:
        self._gallery = None

    def gallery(self) -> Any:
        """The :class:`Gallery` (embedded once; later calls return the same object)."""
        with self._gallery_lock:
            if self._gallery is None:
                from anibench.models.character_gallery import Gallery, gallery_image_path, gallery_pixels

                from PIL import Image

                models = self.runtime.family(CharacterModels.name)
                pixels = []
                embeddings = []
                for entry in self.entries:
                    path = gallery_image_path(self.root, entry.image)
                    if path is None:
                        raise MissingWeightsError(
                            f"gallery image {entry.image!r} of {GALLERY_LIST_ENTRY} is not in the installed "
                            f"{GALLERY_IMAGES_ENTRY} ({self.root}); re-import videos.tar.gz")
                    with Image.open(path) as image:  # as the published gallery dataset: PIL, convert('RGB')
                        pixels.append(gallery_pixels(np.asarray(image.convert("RGB"))))
                    if len(pixels) == 64:
                        embeddings.append(models.embed(np.stack(pixels)))
                        pixels = []
                if pixels:
                    embeddings.append(models.embed(np.stack(pixels)))
                self._gallery = Gallery(np.concatenate(embeddings), [e.caption for e in self.entries])
            return self._gallery


class CharacterObjects(FrameFeature):
    """``anime_reward.character_objects``: the clip's tracked characters and their crop embeddings."""

    name = "anime_reward.character_objects"
    version = "1"
    family = CharacterModels.name
    persist = False

    def __init__(self, spec, clip):
        super().__init__(spec, clip)
        self.reference = reference_image(clip.sample)
        self.frames: list[np.ndarray] = []

    def step(self, t: int) -> None:
        self.frames.append(self.clip.frame(t))

    def finish(self) -> Any:
        """Runs the pipeline now, in the decoding worker (the runtime's model lock serialises clips): a clip's
        frames are held only while it is tracked, never until the end-of-run flush of batched families."""
        frames, self.frames = np.stack(self.frames), []
        family = self.clip.family(self.family)
        with family.runtime.model_lock:  # one clip at a time, and no other family's forward meanwhile
            return family.run_clip(frames, self.reference, bool(self.spec.get("jpeg_roundtrip", True)))


class CharacterGalleryFeature(FrameFeature):
    """``anime_reward.character_gallery``: the gallery embeddings (the same object for every clip)."""

    name = "anime_reward.character_gallery"
    version = "1"
    family = CharacterGalleryFamily.name
    persist = False

    def __init__(self, spec, clip):
        super().__init__(spec, clip)
        self.wanted = np.array([], dtype=np.int64)
        self.value = clip.family(self.family).gallery()

    def step(self, t: int) -> None:
        """Reads no frames."""

    def finish(self) -> Any:
        return self.value


def reference_image(sample: Any) -> np.ndarray:
    """The case's reference image: its first-frame guide (the guide's file when it came from one).

    A case without one is an :class:`InputError` naming the case (the published code crashes there)."""
    from anibench.features.backbones import conditioning_image
    from anibench.errors import NotApplicable

    try:
        return conditioning_image(sample)
    except NotApplicable as exc:
        raise InputError("anime_reward.character_consistency needs the case's reference image (a first-frame "
                         "guide image); the case has none", case_id=getattr(sample, "case_id", None)) from exc
