"""Tiny random weights of AnimeReward's character head, in the published formats (tests and benchmarks only).

- GroundingDINO: a Hugging Face checkpoint folder (``config.json`` + ``model.safetensors`` + processor and BERT
  tokenizer files), as the published ``character/IP_checkpoints/grouding-dino-base``; tiny config per shared
  reference dependencies.md §5.5 (Swin embed 16, depths [1,1,1,1], BERT hidden 32, d_model 32, 2 decoder
  layers, images resized to 128–192 px).
- SAM2: ``torch.save({'model': state_dict})`` as ``sam2.1_hiera_base_plus.pt``, of the sam2 package's model
  built from the SAM2.1 base+ config with :data:`SAM2_TINY` merged over it (load it with
  ``load_sam2_tracker(path, overrides=SAM2_TINY)``, or from a folder with ``sam2_config.json``: :func:`install`).
- The recogniser: helper blip's ``weights_blip_reward.write_checkpoint(path, "recognizer", SMALL)``.
- The gallery: a ``gallerys.json`` list and a ``videos.tar.gz`` of crops at the published relative paths.

Random weights check plumbing and timing only; their outputs are never scores.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

GDINO_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "character", ".", "a", "the", "person"]

# Merged over the sam2 package's configs/sam2.1/sam2.1_hiera_b+.yaml (model section): ~60 k parameters.
SAM2_TINY: dict[str, Any] = {
    "image_size": 128,
    "image_encoder": {
        "trunk": {"embed_dim": 8, "num_heads": 1, "stages": [1, 1, 2, 1], "global_att_blocks": [3],
                  "window_pos_embed_bkg_spatial_size": [4, 4], "window_spec": [4, 4, 4, 2]},
        "neck": {"d_model": 32, "backbone_channel_list": [64, 32, 16, 8], "position_encoding": {"num_pos_feats": 32}},
    },
    "memory_attention": {"d_model": 32, "num_layers": 1, "layer": {
        "d_model": 32, "dim_feedforward": 32,
        "self_attention": {"embedding_dim": 32, "feat_sizes": [8, 8]},
        "cross_attention": {"embedding_dim": 32, "feat_sizes": [8, 8], "kv_in_dim": 16}}},
    "memory_encoder": {"out_dim": 16, "in_dim": 32, "position_encoding": {"num_pos_feats": 16},
                       "mask_downsampler": {"embed_dim": 32}, "fuser": {"layer": {"dim": 32}, "num_layers": 1}},
}

PUBLISHED = {
    "gdino": "reward/IP_checkpoints/grouding-dino-base",
    "sam2": "reward/IP_checkpoints/sam2_checkpoints/sam2.1_hiera_base_plus.pt",
    "recognizer": "reward/IP_checkpoints/blip_checkpoints/animate_recoginzer.pth",
    "gallery_list": "reward/character/BLIP/data/gallerys.json",
    "gallery_images": "reward/videos.tar.gz",
}
ENTRIES = {
    "gdino": "anime_reward_character_gdino",
    "sam2": "anime_reward_character_sam2",
    "recognizer": "anime_reward_character_recognizer",
    "gallery_list": "anime_reward_character_gallery_list",
    "gallery_images": "anime_reward_character_gallery_images",
}


def write_grounding_dino(folder: str | Path, seed: int = 0, *, detects: bool = True) -> Path:
    """A tiny GroundingDINO checkpoint folder. ``detects=False`` zeroes the decoder's final LayerNorm, so every
    query's logit is 0 (probability 0.5, not above the 0.5 threshold): no box is ever kept."""
    from anibench.runtime.torchvision_compat import ensure_torchvision

    ensure_torchvision()
    from transformers import (BertConfig, BertTokenizer, GroundingDinoConfig, GroundingDinoForObjectDetection,
                              GroundingDinoImageProcessor, GroundingDinoProcessor, SwinConfig)
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(GDINO_VOCAB) + "\n", encoding="utf-8")
    processor = GroundingDinoProcessor(
        image_processor=GroundingDinoImageProcessor(size={"shortest_edge": 128, "longest_edge": 192}),
        tokenizer=BertTokenizer(str(folder / "vocab.txt")))
    config = GroundingDinoConfig(
        backbone_config=SwinConfig(embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1], window_size=4,
                                   out_features=["stage2", "stage3", "stage4"]),
        text_config=BertConfig(vocab_size=len(GDINO_VOCAB), hidden_size=32, num_hidden_layers=1,
                               num_attention_heads=2, intermediate_size=32),
        d_model=32, encoder_layers=1, decoder_layers=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
        encoder_attention_heads=2, decoder_attention_heads=2, num_queries=10, max_text_len=16)
    torch.manual_seed(seed)
    model = GroundingDinoForObjectDetection(config).eval()
    if not detects:
        with torch.no_grad():
            model.model.decoder.layer_norm.weight.zero_()
            model.model.decoder.layer_norm.bias.zero_()
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def sam2_state_dict(seed: int = 0, *, full_masks: bool = False) -> dict[str, torch.Tensor]:
    """The tiny SAM2's state dict (the sam2 package's own key names). ``full_masks=True`` sets the mask
    decoder so every pixel's logit is positive and the object score high: each track covers whole frames
    (deterministic crops for plumbing tests)."""
    from hydra.utils import instantiate

    from anibench.models.character_tracking import sam2_config

    torch.manual_seed(seed)
    model = instantiate(sam2_config(SAM2_TINY).model, _recursive_=True).eval()
    if full_masks:
        decoder = model.sam_mask_decoder
        with torch.no_grad():
            for mlp in decoder.output_hypernetworks_mlps:
                mlp.layers[-1].weight.zero_()
                mlp.layers[-1].bias.fill_(1.0)
            upscale = decoder.output_upscaling[-2]  # the last ConvTranspose2d before the activation
            upscale.weight.zero_()
            upscale.bias.fill_(5.0)
            if decoder.pred_obj_score_head is not None:
                last = decoder.pred_obj_score_head.layers[-1] if hasattr(decoder.pred_obj_score_head, "layers") \
                    else decoder.pred_obj_score_head
                last.weight.zero_()
                last.bias.fill_(10.0)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def write_sam2_checkpoint(path: str | Path, seed: int = 0, *, full_masks: bool = False) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": sam2_state_dict(seed, full_masks=full_masks)}, path)
    return path


def gallery_crop(seed: int, size: int = 40) -> np.ndarray:
    """A synthetic masked character crop (RGB uint8): a coloured blob on black."""
    rng = np.random.default_rng(seed)
    image = np.zeros((size, size, 3), np.uint8)
    yy, xx = np.mgrid[:size, :size]
    cy, cx, r = rng.integers(size // 3, 2 * size // 3, 2).tolist() + [int(rng.integers(size // 5, size // 3))]
    inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
    image[inside] = rng.integers(30, 255, 3, dtype=np.uint8)
    return image


GALLERY_CAPTIONS = ["Alice", "alice", "Bob", "carol", "Carol", "dave"]  # 6 crops, 4 identities once lower-cased


def write_gallery(folder: str | Path, captions: list[str] | None = None) -> tuple[Path, Path]:
    """(gallerys.json, videos.tar.gz) of synthetic crops: paths ``<clip>/mask_crop/object<k>_img<i>.jpg`` as
    published, the archive holding them under ``videos/``."""
    from PIL import Image

    folder = Path(folder)
    captions = GALLERY_CAPTIONS if captions is None else captions
    images = folder / "videos"
    listing = []
    for i, caption in enumerate(captions):
        relative = f"clip_{i // 2}/mask_crop/object{i % 2 + 1}_img{i}.jpg"
        (images / relative).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(gallery_crop(100 + i)).save(images / relative, quality=95)
        listing.append({"image": relative, "caption": caption})
    json_path = folder / "gallerys.json"
    json_path.write_text(json.dumps(listing), encoding="utf-8")
    tar_path = folder / "videos.tar.gz"
    with tarfile.open(tar_path, "w:gz") as archive:
        archive.add(images, arcname="videos")
    return json_path, tar_path


def write_weights_folder(folder: str | Path, seed: int = 0, *, full_masks: bool = True,
                         detects: bool = True) -> dict[str, Path]:
    """Tiny random published-format files at their published relative paths under ``folder`` (benchmarks).

    Returns ``{weights entry: path}``. Import them as local entries with :func:`install`, or one by one with
    ``anibench weights import ENTRY PATH`` (the published entries expect the full-size networks). Random weights: plumbing and timing only, never scores.
    """
    from parity import weights_blip_reward as blip

    folder = Path(folder)
    out = {ENTRIES["gdino"]: write_grounding_dino(folder / PUBLISHED["gdino"], seed, detects=detects),
           ENTRIES["sam2"]: write_sam2_checkpoint(folder / PUBLISHED["sam2"], seed, full_masks=full_masks),
           ENTRIES["recognizer"]: blip.write_checkpoint(folder / PUBLISHED["recognizer"], "recognizer", blip.SMALL,
                                                        seed)}
    gallery_dir = folder / "gallery-build"
    gallery_dir.mkdir(parents=True, exist_ok=True)
    json_path, tar_path = write_gallery(gallery_dir)
    list_dir = folder / Path(PUBLISHED["gallery_list"]).parent
    list_dir.mkdir(parents=True, exist_ok=True)
    out[ENTRIES["gallery_list"]] = Path(json_path.replace(list_dir / "gallerys.json"))
    target_tar = folder / PUBLISHED["gallery_images"]
    out[ENTRIES["gallery_images"]] = Path(tar_path.replace(target_tar))
    return out


def install(store_root: str | Path, files: dict[str, Path], suffix: str = "tiny") -> dict[str, str]:
    """Register ``files`` (from :func:`write_weights_folder`) as local entries of the weights folder
    ``store_root`` and return the runtime's ``weight_aliases`` {published entry: local entry}.

    The tiny SAM2 goes in as a folder holding its ``.pt`` and ``sam2_config.json`` (:data:`SAM2_TINY`), the
    form ``load_sam2_tracker`` reads for another SAM2.1 size, so an alias alone makes the family load it — in
    this process or in a subprocess (``$ANIBENCH_WEIGHT_ALIASES``)."""
    import shutil

    from anibench.runtime.weights import WeightStore

    store = WeightStore(Path(store_root))
    aliases = {}
    specs = {"gdino": ("hf-folder", None), "sam2": ("hf-folder", None),
             "recognizer": ("torch-state-dict", "anibench.models.blip_reward:convert_recognizer_any_size"),
             "gallery_list": ("json", None),
             "gallery_images": ("tar", "anibench.models.character_gallery:convert_gallery_archive")}
    for key, (fmt, converter) in specs.items():
        entry = ENTRIES[key]
        path = Path(files[entry])
        if key == "sam2":
            holder = path.parent / "sam2-tiny"
            holder.mkdir(exist_ok=True)
            shutil.copy(path, holder / path.name)
            (holder / "sam2_config.json").write_text(json.dumps(SAM2_TINY))
            path = holder
        local = f"{entry}_{suffix}"
        store.add_local(local, path, format=fmt, converter=converter)
        aliases[entry] = local
    return aliases


# -- parity inputs (shared by scripts/parity/anime_reward_character_reference.py and the tests) ----------
PARITY_SEED = 7
PARITY_T, PARITY_H, PARITY_W = 20, 48, 64


def parity_frames(seed: int = PARITY_SEED) -> np.ndarray:
    """(T,H,W,3) uint8 frames: smooth colour gradients that drift, plus seeded noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:PARITY_H, :PARITY_W].astype(np.float32)
    frames = np.empty((PARITY_T, PARITY_H, PARITY_W, 3), np.uint8)
    for t in range(PARITY_T):
        base = np.stack([128 + 100 * np.sin((xx + 2 * t) / 9.0), 128 + 100 * np.cos((yy - t) / 7.0),
                         128 + 80 * np.sin((xx + yy + 3 * t) / 11.0)], axis=-1)
        frames[t] = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
    return frames


def parity_id_map() -> np.ndarray:
    """(T,H,W) uint16 mask ids as the published ``mask.npy``: object 1 a drifting ellipse in every frame;
    object 2 a rectangle in frames 3–16 that overlaps (and overwrites) object 1; object 3 visible in 5
    frames only (the published crops drop it); object 4 a thin diagonal line in 9 frames (step 1)."""
    yy, xx = np.mgrid[:PARITY_H, :PARITY_W]
    ids = np.zeros((PARITY_T, PARITY_H, PARITY_W), np.uint16)
    for t in range(PARITY_T):
        ellipse = ((yy - 20) / 12.0) ** 2 + ((xx - 14 - t) / 9.0) ** 2 <= 1.0
        ids[t][ellipse] = 1
        if 3 <= t <= 16:
            ids[t, 24 + t // 4:40, 30:50 + t // 3] = 2
        if 10 <= t <= 14:
            ids[t, 2:7, 55:62] = 3
        if 5 <= t <= 13:
            ids[t][(np.abs(yy - xx + 10) <= 1) & (yy < 45)] = 4
    return ids


def parity_reference_images(seed: int = PARITY_SEED) -> dict[str, np.ndarray]:
    """Reference images of several aspects for the published fit-to-frame (resize + centre crop)."""
    rng = np.random.default_rng(seed + 1)
    out = {}
    for name, (h, w) in {"wide_60x150": (60, 150), "tall_130x70": (130, 70), "same_aspect_96x128": (96, 128),
                         "small_30x41": (30, 41)}.items():
        yy, xx = np.mgrid[:h, :w].astype(np.float32)
        base = np.stack([255 * xx / w, 255 * yy / h, 128 + 120 * np.sin((xx * yy) / 50.0)], axis=-1)
        out[name] = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
    return out


class StubRecognizer(torch.nn.Module):
    """A deterministic stand-in with the published recogniser's interface (``visual_encoder`` → tokens with
    the CLS first, ``vision_proj``): 16×16 average-pooled patches → Linear(3, 16) tokens, CLS = their mean.
    Used to check the crops and the gallery maths against the published code (the network itself is helper
    blip's parity)."""

    def __init__(self, seed: int = PARITY_SEED, width: int = 16, proj: int = 8):
        super().__init__()
        rng = np.random.default_rng(seed + 2)
        self.embed = torch.nn.Linear(3, width)
        self.vision_proj = torch.nn.Linear(width, proj)
        with torch.no_grad():
            self.embed.weight.copy_(torch.from_numpy(rng.normal(0, 1.0, (width, 3)).astype(np.float32)))
            self.embed.bias.copy_(torch.from_numpy(rng.normal(0, 0.2, width).astype(np.float32)))
            self.vision_proj.weight.copy_(torch.from_numpy(rng.normal(0, 1.0, (proj, width)).astype(np.float32)))
            self.vision_proj.bias.copy_(torch.from_numpy(rng.normal(0, 0.2, proj).astype(np.float32)))

    def visual_encoder(self, x: torch.Tensor) -> torch.Tensor:
        patches = torch.nn.functional.avg_pool2d(x, 16).flatten(2).transpose(1, 2)  # (N, 196, 3)
        tokens = torch.tanh(self.embed(patches))
        return torch.cat([tokens.mean(dim=1, keepdim=True), tokens], dim=1)

    def embed_crops(self, crops: torch.Tensor) -> torch.Tensor:
        return self.vision_proj(self.visual_encoder(crops)[:, 0, :])


def sam2_seeded_state(template: dict[str, torch.Tensor], seed: int = PARITY_SEED) -> dict[str, torch.Tensor]:
    """Seeded values for every floating tensor of a SAM2 state dict, by name (independent of module creation
    order, so the sam2 package and SAMURAI's fork get identical weights): normal(0, 1/sqrt(fan_in)) for
    matrices and kernels, 1 + normal(0, 0.1) for norm weights, normal(0, 0.02) for other vectors."""
    import zlib

    out = {}
    for name in sorted(template):
        value = template[name]
        if not value.is_floating_point():
            out[name] = value.clone()
            continue
        rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
        shape = tuple(value.shape)
        if len(shape) >= 2:
            fan_in = int(np.prod(shape[1:])) or 1
            array = rng.normal(0.0, 1.0 / np.sqrt(fan_in), shape)
        elif "norm" in name and name.endswith("weight"):
            array = 1.0 + rng.normal(0.0, 0.1, shape)
        else:
            array = rng.normal(0.0, 0.02, shape)
        out[name] = torch.from_numpy(array.astype(np.float32))
    return out


def sam2_hydra_overrides(tree: dict[str, Any] | None = None, prefix: str = "model") -> list[str]:
    """:data:`SAM2_TINY` as hydra ``++key=value`` overrides (for SAMURAI's ``build_sam2_video_predictor``)."""
    tree = SAM2_TINY if tree is None else tree
    out = []
    for key, value in tree.items():
        if isinstance(value, dict):
            out += sam2_hydra_overrides(value, f"{prefix}.{key}")
        else:
            text = json.dumps(value).replace(" ", "")
            out.append(f"++{prefix}.{key}={text}")
    return out


PARITY_TRACK_BOX = [10, 8, 40, 36]


def parity_tracking_frames_jpeg(frames: np.ndarray) -> list[bytes]:
    """The frames as ``extract_frames`` writes them (cv2.imwrite of BGR, quality 95)."""
    import cv2

    return [cv2.imencode(".jpg", np.ascontiguousarray(f[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
            for f in frames]
