"""AnimeReward's character head, first half: find the characters of the reference image, track them through
the clip, and cut the crops the recogniser embeds.

Published recipe (bilibili/Index-anisora at 171fe63; anisora.md §2.3 "Character consistency"):

1. ``reward/character/samurai/samurai_with_gdino_t2v.py`` ``infer_groundino``: the reference image is
   read (cv2, BGR→RGB), **resized and centre-cropped to the clip's frame size**
   (``resize_for_rectangle_crop(..., reshape_mode="center")``: torchvision tensor resize, bicubic, of the
   side that keeps the aspect so the other side covers the frame, then a centre crop; :func:`fit_reference`).
   GroundingDINO-base (Hugging Face format, folder ``character/IP_checkpoints/grouding-dino-base``) runs on
   it with the text ``character.``; ``post_process_grounded_object_detection`` with box and text thresholds
   0.5 and the target size of the fitted image. More than 5 boxes → the 5 largest by area, sorted by area;
   otherwise the detector's order. Each box is written as ``round(x0), round(y0), round(x1-x0),
   round(y1-y0)`` and read back as the integer box ``(x, y, x+w, y+h)`` (:func:`prompt_box`).
2. ``reward/character/samurai/scripts/demo.py``: each box is tracked **separately** (one tracker state per
   object) from frame 0 over **every frame of the clip** with SAM2.1 base+ (``sam2.1_hiera_base_plus.pt``)
   — in SAMURAI's fork, with its Kalman-filter motion-aware memory (``configs/samurai/sam2.1_hiera_b+.yaml``,
   ``samurai_mode: true``). The tracker's frames are the clip's frames resized to 1024×1024 (aspect
   squashed), ImageNet mean/std. Each object's mask (logit > 0) is written into one uint16 id map,
   ``id = 1`` for the first object, then ``map.max() + 1``; a later object overwrites earlier ones where
   they overlap (:func:`track_objects`).
3. ``reward/character/BLIP/data/pretrain_IP_dataset.py`` ``load_rgb_frames`` and ``RetrievalVideoDataset``
   (infer mode): frames where the object's id appears; ``step = n // 8`` (an object visible in fewer than
   8 frames is **dropped**), the frames ``visible[::step][:8]`` — evenly strided from the first visible
   frame, not a linspace —; per frame the mask's bounding box is cut from the frame, padded with zeros to a
   square (centred, extra pixel bottom/right), multiplied by the mask (background zeroed), and read back
   with PIL, resized to 224×224 **bilinear**, ÷255, CLIP mean/std (:func:`object_crops`). The published
   code goes through JPEG twice: the frames are extracted to ``.jpg`` by cv2 and the crops are saved as
   ``.jpg`` by cv2 before PIL reads them; ``jpeg_roundtrip=True`` (the default) reproduces both with cv2's
   default quality 95.

Tracker choice: the ``sam2`` package (1.1.0, facebookresearch/sam2), not transformers' ``Sam2VideoModel``.
SAMURAI is a fork of exactly this code base, so the published ``sam2.1_hiera_base_plus.pt`` (``{'model':
state_dict}``) loads into it with its own key names and a strict check — no hand-written converter of ~500 keys
to get wrong (transformers ships no SAM2 converter) — and the propagation, memory bank, multimask fallbacks
and post-processing are the published code's own. What is reproduced beyond upstream sam2: the fork's object
score threshold (``min_obj_score_logits = -1``: a frame keeps its mask when the object logit is above -1, not
0; :func:`_shift_object_scores`) and sam2's hole filling (``fill_hole_area = 8``), whose CUDA-only connected
components are given a CPU stand-in (:func:`ensure_hole_filling`). With these, anibench's tracker equals
SAMURAI's predictor run with ``samurai_mode: false`` (parity test, mask logits within 1e-6). What is **not**
reproduced: SAMURAI's motion-aware memory (``samurai_mode: true``: a Kalman filter on the mask box re-weights
the multimask choice once the track is stable, and memory frames are selected by IoU/object-score thresholds).
On the parity clip with seeded tiny weights the published mode's masks have IoU ≥ 0.97 with ours per frame;
under fast motion, occlusion or look-alike distractors the published tracker may keep a track ours loses, or
the reverse. Other differences: the tracker's frames are resized from the decoded frames (PIL bicubic, as
sam2's JPEG-folder loader) instead of decord's 1024×1024 decode of the ``.mp4``; fp32 on CPU, the runtime's
autocast dtype on GPU (published: fp16 autocast on CUDA); the RoPE ``feat_sizes`` of SAMURAI's config
([32, 32]) differ from upstream's ([64, 64]), which changes nothing (recomputed for the actual feature size).
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from anibench.errors import InputError

REFERENCE = "bilibili/Index-anisora@171fe63 reward/character/"
QUERY = "character."
BOX_THRESHOLD = 0.5
TEXT_THRESHOLD = 0.5
MAX_OBJECTS = 5
CROP_FRAMES = 8
CROP_SIZE = 224
JPEG_QUALITY = 95  # cv2.imwrite's default, used by the published frame extraction and crop cache
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
SAM2_MEAN = (0.485, 0.456, 0.406)
SAM2_STD = (0.229, 0.224, 0.225)
SAM2_CONFIG = "configs/sam2.1/sam2.1_hiera_b+.yaml"
OBJECT_SCORE_THRESHOLD = -1.0  # min_obj_score_logits of SAMURAI's configs/samurai/sam2.1_hiera_b+.yaml
# build_sam2_video_predictor's post-processing overrides (sam2 1.1.0 and SAMURAI's fork alike).
SAM2_VIDEO_OVERRIDES = {
    "sam_mask_decoder_extra_args": {"dynamic_multimask_via_stability": True,
                                    "dynamic_multimask_stability_delta": 0.05,
                                    "dynamic_multimask_stability_thresh": 0.98},
    "binarize_mask_from_pts_for_mem_enc": True,
    "fill_hole_area": 8,
}


# -- reference image -----------------------------------------------------------------------------------
def fit_reference(image: np.ndarray, height: int, width: int) -> tuple[np.ndarray, dict[str, Any]]:
    """The reference image resized (bicubic, antialiased, as torchvision's tensor ``resize``) so it covers
    ``height``×``width`` with its aspect kept, then centre-cropped to it; plus what was done."""
    import torch

    from anibench.runtime.torchvision_compat import ensure_torchvision

    ensure_torchvision()
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms.functional import crop, resize

    if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
        raise InputError(f"the reference image must be RGB uint8 (H,W,3), got {image.shape} {image.dtype}")
    h0, w0 = image.shape[:2]
    tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None]
    if w0 / h0 > width / height:
        size = [height, int(w0 * height / h0)]
    else:
        size = [int(h0 * width / w0), width]
    resized = resize(tensor, size=size, interpolation=InterpolationMode.BICUBIC)[0]
    top, left = (size[0] - height) // 2, (size[1] - width) // 2
    out = crop(resized, top=top, left=left, height=height, width=width)
    record = {"reference_size": [int(w0), int(h0)], "resized_to": [int(size[1]), int(size[0])],
              "crop_offset": [int(left), int(top)], "frame_size": [int(width), int(height)]}
    return out.permute(1, 2, 0).contiguous().numpy(), record


# -- detector ------------------------------------------------------------------------------------------
@dataclass
class Detector:
    model: Any
    processor: Any
    lock: threading.Lock = field(default_factory=threading.Lock)


def load_grounding_dino(folder: str | Path, device: Any = "cpu", dtype: Any = None, *, entry: str = "") -> Detector:
    """GroundingDINO (transformers) and its processor from a Hugging Face checkpoint folder."""
    from transformers import AutoConfig, AutoProcessor, GroundingDinoForObjectDetection

    from anibench.runtime.torchvision_compat import ensure_torchvision

    ensure_torchvision()
    folder = Path(folder)
    label = f"weights entry {entry!r}" if entry else "GroundingDINO folder"
    try:
        config = AutoConfig.from_pretrained(folder)
    except Exception as exc:  # noqa: BLE001 - reported with the entry and folder
        raise InputError(f"{label}: not a Hugging Face checkpoint folder ({type(exc).__name__}: {exc})",
                         path=folder) from exc
    if getattr(config, "model_type", None) != "grounding-dino":
        raise InputError(f"{label}: expected a GroundingDINO checkpoint (model_type 'grounding-dino'), got "
                         f"{getattr(config, 'model_type', None)!r}", path=folder)
    try:
        processor = AutoProcessor.from_pretrained(folder)
        model = GroundingDinoForObjectDetection.from_pretrained(folder)
    except Exception as exc:  # noqa: BLE001
        raise InputError(f"{label}: cannot load GroundingDINO ({type(exc).__name__}: {exc})", path=folder) from exc
    model = model.to(device=device, dtype=dtype) if dtype is not None else model.to(device)
    return Detector(model.eval(), processor)


def detect_characters(detector: Detector, image: np.ndarray, *, query: str = QUERY,
                      box_threshold: float = BOX_THRESHOLD, text_threshold: float = TEXT_THRESHOLD,
                      max_objects: int = MAX_OBJECTS) -> list[dict[str, Any]]:
    """GroundingDINO boxes on ``image`` (RGB uint8, already fitted to the frame size).

    Each: ``box`` (x0, y0, x1, y1) in pixels, ``score``, ``prompt_box`` (the integer box the tracker gets).
    More than ``max_objects`` → the largest by area, in decreasing area; else the detector's order.
    """
    import torch
    from PIL import Image

    pil = Image.fromarray(image)
    model = detector.model
    with detector.lock, torch.no_grad():
        inputs = detector.processor(images=pil, text=query, return_tensors="pt")
        inputs = {k: (v.to(model.device, dtype=model.dtype) if v.is_floating_point() else v.to(model.device))
                  for k, v in inputs.items()}
        outputs = model(**inputs)
        results = detector.processor.post_process_grounded_object_detection(
            outputs, inputs["input_ids"], threshold=box_threshold, text_threshold=text_threshold,
            target_sizes=[pil.size[::-1]])
    boxes = results[0]["boxes"].float().cpu().numpy().tolist()
    scores = results[0]["scores"].float().cpu().numpy().tolist()
    found = [{"box": [float(v) for v in b], "score": float(s)} for b, s in zip(boxes, scores)]
    found = keep_largest(found, max_objects)
    for item in found:
        item["prompt_box"] = prompt_box(item["box"])
    return found


def keep_largest(found: list[dict[str, Any]], max_objects: int = MAX_OBJECTS) -> list[dict[str, Any]]:
    """``filt_bboxes``: more than ``max_objects`` detections → the largest by area, in decreasing area
    (a stable sort: equal areas keep the detector's order); otherwise all, in the detector's order."""
    if len(found) <= max_objects:
        return list(found)
    area = lambda d: (d["box"][2] - d["box"][0]) * (d["box"][3] - d["box"][1])  # noqa: E731
    return sorted(found, key=area, reverse=True)[:max_objects]


def prompt_box(box: Sequence[float]) -> list[int]:
    """The published box round trip: written as rounded x, y, w, h, read back as ints (x, y, x+w, y+h)."""
    x, y = round(box[0]), round(box[1])
    w, h = round(box[2] - box[0]), round(box[3] - box[1])
    return [int(x), int(y), int(x + w), int(y + h)]


# -- tracker -------------------------------------------------------------------------------------------
@dataclass
class Tracker:
    predictor: Any
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def image_size(self) -> int:
        return int(self.predictor.image_size)


def require_sam2() -> None:
    try:
        import sam2  # noqa: F401
    except ImportError as exc:
        from anibench.runtime.devices import MissingDependencyError

        raise MissingDependencyError(
            "anime_reward.character_consistency tracks characters with the sam2 package: "
            "pip install -c constraints/cpu.txt --build-constraint constraints/cpu.txt sam2==1.1.0") from exc


def connected_components(mask: Any) -> tuple[Any, Any]:
    """8-connected components of binary masks (N,1,H,W) → (labels, areas) of the same shape, int32: what
    sam2's CUDA extension ``get_connected_componnets`` returns (labels > 0 on foreground, each foreground
    pixel's component area, 0 on background), computed with scipy on the CPU."""
    import torch
    from scipy import ndimage

    array = mask.detach().to("cpu", torch.uint8).numpy()
    labels = np.zeros(array.shape, np.int32)
    areas = np.zeros(array.shape, np.int32)
    structure = np.ones((3, 3), dtype=bool)
    for n in range(array.shape[0]):
        lab, _ = ndimage.label(array[n, 0] > 0, structure=structure)
        counts = np.bincount(lab.ravel()).astype(np.int32)
        counts[0] = 0
        labels[n, 0] = lab
        areas[n, 0] = counts[lab]
    return torch.from_numpy(labels).to(mask.device), torch.from_numpy(areas).to(mask.device)


def ensure_hole_filling() -> bool:
    """Give sam2 its connected-components op when its compiled extension ``sam2._C`` is absent (every
    CPU install: the extension is CUDA-only and built only where CUDA is present at install time).

    Without it sam2 skips ``fill_hole_area=8`` — filling background holes of ≤ 8 low-resolution pixels in
    every predicted mask, which the published tracker does — with a warning. The stand-in module
    ``sam2._C`` provides only ``get_connected_componnets`` (sic), computed by :func:`connected_components`
    with the same 8-connectivity. Returns True when the stand-in was installed."""
    import sys
    import types

    require_sam2()
    try:
        import sam2._C  # noqa: F401
        return False
    except ImportError:
        pass
    module = types.ModuleType("sam2._C")
    module.__doc__ = "anibench's CPU stand-in for sam2's CUDA extension (connected components only)"

    def get_connected_componnets(mask):  # noqa: ANN001 - sam2's own name and signature
        return connected_components(mask)

    module.get_connected_componnets = get_connected_componnets
    sys.modules["sam2._C"] = module
    import sam2

    sam2._C = module
    return True


def _passthrough(iterable: Any, *args: Any, **kwargs: Any) -> Any:
    return iterable


def _quiet_progress() -> None:
    """sam2's ``propagate_in_video`` draws a tqdm bar per object and clip (no switch to turn it off); a
    scoring run of many clips would flood the log, so its module-level ``tqdm`` is made a pass-through."""
    import sam2.sam2_video_predictor as predictor_module

    predictor_module.tqdm = _passthrough


SAM2_CONFIG_FILE = "sam2_config.json"


def _merged(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def sam2_config(overrides: dict[str, Any] | None = None) -> Any:
    """The SAM2.1 base+ model config of the sam2 package, with the video predictor's settings
    (``build_sam2_video_predictor``) and optional ``overrides`` (a nested dict merged on top; tests use
    it for tiny models)."""
    from importlib.resources import files

    from omegaconf import OmegaConf

    require_sam2()
    cfg = OmegaConf.load(str(files("sam2") / SAM2_CONFIG))
    cfg = OmegaConf.merge(cfg, {"model": {"_target_": "sam2.sam2_video_predictor.SAM2VideoPredictor",
                                          **SAM2_VIDEO_OVERRIDES}})
    if overrides:
        cfg = OmegaConf.merge(cfg, {"model": overrides})
    OmegaConf.resolve(cfg)
    return cfg


def load_sam2_tracker(checkpoint: str | Path, device: Any = "cpu", *, overrides: dict[str, Any] | None = None,
                      entry: str = "", object_score_threshold: float = OBJECT_SCORE_THRESHOLD) -> Tracker:
    """The SAM2 video predictor from the published ``.pt`` (``{'model': state_dict}``), strictly loaded;
    ``object_score_threshold``: SAMURAI's ``min_obj_score_logits`` (-1 as published, 0 = upstream sam2).

    ``checkpoint`` may also be a folder holding one ``.pt`` of that layout and :data:`SAM2_CONFIG_FILE`, a JSON
    object merged over the base+ model config (as ``overrides``): another SAM2.1 size (tiny, small, large —
    or the tests' tiny random network) then stands in for the published one through a weights alias.
    """
    import json

    import torch
    from hydra.utils import instantiate

    from anibench.runtime.weights import load_state_dict

    checkpoint = Path(checkpoint)
    if checkpoint.is_dir():
        folder = checkpoint
        found = sorted(folder.glob("*.pt"))
        if len(found) != 1 or not (folder / SAM2_CONFIG_FILE).is_file():
            raise InputError(f"a SAM2 weights folder holds one .pt checkpoint and {SAM2_CONFIG_FILE}; found "
                             f"{[p.name for p in folder.iterdir()]}", path=folder)
        try:
            folder_overrides = json.loads((folder / SAM2_CONFIG_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"unreadable {SAM2_CONFIG_FILE}: {exc}", path=folder / SAM2_CONFIG_FILE) from exc
        checkpoint = found[0]
        overrides = _merged(folder_overrides, overrides or {})
    cfg = sam2_config(overrides)
    ensure_hole_filling()
    _quiet_progress()
    model = instantiate(cfg.model, _recursive_=True)
    label = f"weights entry {entry!r}" if entry else "SAM2 checkpoint"
    try:
        state = load_state_dict(checkpoint, "torch-state-dict", key="model")
    except InputError as exc:
        raise InputError(f"{label}: expected SAM2's checkpoint layout {{'model': state_dict}}: {exc}",
                         path=checkpoint) from exc
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(state) & set(expected) if tuple(state[k].shape) != tuple(expected[k].shape))
    if missing or unexpected or wrong:
        raise InputError(
            f"{label}: not a SAM2.1 hiera base+ checkpoint: {len(missing)} missing key(s) "
            f"{missing[:3]}, {len(unexpected)} unexpected {unexpected[:3]}, {len(wrong)} of another shape "
            f"{wrong[:3]}", path=checkpoint)
    model.load_state_dict(state, strict=True)
    model = model.to(torch.device(device)).eval()
    if object_score_threshold != 0.0:
        _shift_object_scores(model, -float(object_score_threshold))
    return Tracker(model)


def _shift_object_scores(model: Any, shift: float) -> None:
    """SAMURAI's fork keeps a frame's mask (and counts the object as present for its object pointer) when the
    object score logit is above ``min_obj_score_logits`` (-1 in its config, in SAMURAI mode or not); upstream
    sam2 uses 0. Reproduced without touching sam2's code: a forward hook adds ``shift`` (= 1) to the mask
    decoder's object score, so sam2's ``> 0`` test is the fork's ``> -1``, and the memory encoder — which
    tests ``> 0`` in both — gets the unshifted score back. Only box/point prompts reach these paths (mask
    prompts are never used here)."""
    import functools

    def hook(module: Any, inputs: Any, output: Any) -> Any:
        masks, ious, tokens, object_scores = output
        return masks, ious, tokens, object_scores + shift

    model.sam_mask_decoder.register_forward_hook(hook)
    encode = model._encode_new_memory

    @functools.wraps(encode)
    def encode_unshifted(*args: Any, **kwargs: Any) -> Any:
        if "object_score_logits" in kwargs:
            kwargs["object_score_logits"] = kwargs["object_score_logits"] - shift
        else:
            args = (*args[:3], args[3] - shift, *args[4:])
        return encode(*args, **kwargs)

    model._encode_new_memory = encode_unshifted


def tracker_images(frames: np.ndarray, image_size: int) -> Any:
    """Frames (T,H,W,3) uint8 → (T,3,S,S) float32: squashed to S×S (PIL bicubic, as sam2's frame loader),
    ÷255, ImageNet mean/std."""
    import torch
    from PIL import Image

    mean = np.asarray(SAM2_MEAN, dtype=np.float32)[:, None, None]
    std = np.asarray(SAM2_STD, dtype=np.float32)[:, None, None]
    out = np.empty((len(frames), 3, image_size, image_size), dtype=np.float32)
    for i, frame in enumerate(frames):
        resized = np.asarray(Image.fromarray(frame).resize((image_size, image_size), Image.BICUBIC), np.float32)
        out[i] = (resized.transpose(2, 0, 1) / np.float32(255.0) - mean) / std
    return torch.from_numpy(out)


def _inference_state(predictor: Any, images: Any, height: int, width: int) -> dict[str, Any]:
    """sam2 1.1.0's ``SAM2VideoPredictor.init_state`` for frames already in memory (its own loader reads
    only files); the fields are those of the pinned version."""
    from collections import OrderedDict

    device = predictor.device
    state: dict[str, Any] = {
        "images": images.to(device), "num_frames": len(images), "offload_video_to_cpu": False,
        "offload_state_to_cpu": False, "video_height": height, "video_width": width, "device": device,
        "storage_device": device, "point_inputs_per_obj": {}, "mask_inputs_per_obj": {}, "cached_features": {},
        "constants": {}, "obj_id_to_idx": OrderedDict(), "obj_idx_to_id": OrderedDict(), "obj_ids": [],
        "output_dict_per_obj": {}, "temp_output_dict_per_obj": {}, "frames_tracked_per_obj": {},
    }
    predictor._get_image_feature(state, frame_idx=0, batch_size=1)
    return state


def track_objects(tracker: Tracker, frames: np.ndarray, boxes: Sequence[Sequence[int]],
                  autocast_dtype: Any = None) -> tuple[np.ndarray, list[int]]:
    """Track each box from frame 0 through ``frames`` (T,H,W,3 uint8), one tracker state per box.

    Returns the uint16 id map (T,H,W) as the published ``mask.npy`` and the id each box received
    (1, then the map's maximum + 1, as ``demo.py``; a box whose track is empty everywhere leaves its id
    to the next box).
    """
    import torch

    frames = np.asarray(frames)
    t, h, w = frames.shape[:3]
    id_map = np.zeros((t, h, w), dtype=np.uint16)
    ids: list[int] = []
    if not len(boxes):
        return id_map, ids
    predictor = tracker.predictor
    images = tracker_images(frames, tracker.image_size)
    device_type = torch.device(predictor.device).type
    use_autocast = autocast_dtype is not None and autocast_dtype != torch.float32
    with tracker.lock, torch.inference_mode(), torch.autocast(device_type, dtype=autocast_dtype,
                                                              enabled=use_autocast):
        for number, box in enumerate(boxes):
            object_id = 1 if number == 0 else int(id_map.max()) + 1
            ids.append(object_id)
            for frame_idx, logits in _propagate(predictor, images, h, w, box, object_id):
                id_map[frame_idx][(logits > 0.0).cpu().numpy()] = object_id
    return id_map, ids


def _propagate(predictor: Any, images: Any, height: int, width: int, box: Sequence[float], object_id: int):
    """(frame index, mask logits (H, W) at the clip's size) of one box prompted on frame 0, as ``demo.py``."""
    state = _inference_state(predictor, images, height, width)
    predictor.add_new_points_or_box(state, frame_idx=0, obj_id=object_id, box=np.asarray(box, dtype=np.float32))
    for frame_idx, _, masks in predictor.propagate_in_video(state):
        yield frame_idx, masks[0, 0]


def track_logits(tracker: Tracker, frames: np.ndarray, box: Sequence[float]) -> np.ndarray:
    """One box's mask logits (T, H, W) float32 through ``frames`` (fp32; the parity tests compare these)."""
    import torch

    frames = np.asarray(frames)
    t, h, w = frames.shape[:3]
    out = np.zeros((t, h, w), np.float32)
    images = tracker_images(frames, tracker.image_size)
    with tracker.lock, torch.inference_mode():
        for frame_idx, logits in _propagate(tracker.predictor, images, h, w, box, 1):
            out[frame_idx] = logits.float().cpu().numpy()
    return out


# -- crops ---------------------------------------------------------------------------------------------
def jpeg_roundtrip_bgr(image_bgr: np.ndarray) -> np.ndarray:
    """cv2.imwrite + cv2.imread of a BGR image (JPEG, quality 95), in memory."""
    import cv2

    ok, encoded = cv2.imencode(".jpg", image_bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return cv2.imdecode(encoded, cv2.IMREAD_COLOR)


def _crop_pixels(image_rgb: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """PIL bilinear resize to size×size, ÷255, CLIP mean/std → (3,size,size) float32."""
    from PIL import Image

    resized = np.asarray(Image.fromarray(image_rgb).resize((size, size), Image.BILINEAR), dtype=np.float32)
    mean = np.asarray(CLIP_MEAN, dtype=np.float32)[:, None, None]
    std = np.asarray(CLIP_STD, dtype=np.float32)[:, None, None]
    return (resized.transpose(2, 0, 1) / np.float32(255.0) - mean) / std


def square_masked_crop(frame_rgb: np.ndarray, mask: np.ndarray, *, jpeg_roundtrip: bool = True) -> np.ndarray:
    """One crop as the published code makes it: the mask's bounding box of the frame, zero-padded to a
    centred square, background zeroed; with ``jpeg_roundtrip`` the frame is first JPEG-round-tripped (the
    extracted ``.jpg`` frame) and the crop too (the cached ``mask_crop/*.jpg`` read by PIL). RGB uint8."""
    from PIL import Image

    bgr = np.ascontiguousarray(frame_rgb[:, :, ::-1])
    if jpeg_roundtrip:
        bgr = jpeg_roundtrip_bgr(bgr)
    ys, xs = np.where(mask > 0)
    y0, y1, x0, x1 = ys.min(), ys.max(), xs.min(), xs.max()
    image = bgr[y0:y1 + 1, x0:x1 + 1]
    piece = mask[y0:y1 + 1, x0:x1 + 1].astype(np.uint8)
    h, w = piece.shape
    side = max(h, w)
    top, left = (side - h) // 2, (side - w) // 2
    square = np.zeros((side, side, 3), dtype=np.uint8)
    square[top:top + h, left:left + w] = image
    square_mask = np.zeros((side, side), dtype=np.uint8)
    square_mask[top:top + h, left:left + w] = piece
    masked = square[:, :, ::-1] * square_mask[..., None]  # RGB, background zeroed
    if not jpeg_roundtrip:
        return np.ascontiguousarray(masked)
    import cv2

    ok, encoded = cv2.imencode(".jpg", np.ascontiguousarray(masked[:, :, ::-1]),
                               [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return np.asarray(Image.open(io.BytesIO(encoded.tobytes())).convert("RGB"))


def crop_frame_positions(visible: Sequence[int], count: int = CROP_FRAMES) -> list[int] | None:
    """The published choice among an object's visible frames: ``visible[::n // count][:count]``, or None
    when it is visible in fewer than ``count`` frames (the published code drops the object)."""
    step = len(visible) // count
    if step == 0:
        return None
    return list(visible[::step][:count])


def object_crops(frames: np.ndarray, id_map: np.ndarray, object_id: int, *, count: int = CROP_FRAMES,
                 jpeg_roundtrip: bool = True) -> tuple[np.ndarray | None, dict[str, Any]]:
    """(count,3,224,224) float32 crops of one tracked object (or None, dropped) and a record of them."""
    visible = [t for t in range(len(id_map)) if (id_map[t] == object_id).any()]
    chosen = crop_frame_positions(visible, count)
    record: dict[str, Any] = {"object_id": int(object_id), "visible_frames": len(visible)}
    if chosen is None:
        record["dropped"] = f"visible in {len(visible)} frame(s); the published crops need at least {count}"
        return None, record
    pixels = []
    boxes = []
    for t in chosen:
        mask = id_map[t] == object_id
        ys, xs = np.where(mask)
        boxes.append([int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1])
        pixels.append(_crop_pixels(square_masked_crop(frames[t], mask, jpeg_roundtrip=jpeg_roundtrip)))
    record.update(crop_frames=[int(t) for t in chosen], crop_boxes=boxes)
    return np.stack(pixels), record
