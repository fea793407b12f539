"""AnimeReward's character head (bilibili/Index-anisora 171fe63, ``reward/character/``) on seeded inputs →
the parity fixture ``tests/parity/fixtures/anime_reward_character.json``.

Run in the parity venv (never imported by anibench)::

    /work/parity-work/venv/bin/python scripts/parity/anime_reward_character_reference.py [--work DIR]

The published ``reward/character`` files used are extracted with ``git show`` from ``$ANISORA_MIRROR`` (default
/work/.mirror/bilibili+Index-anisora/repo) at the pinned commit into the work folder and imported as the
package ``character``. What runs is the published code itself:

- ``samurai/samurai_with_gdino_t2v.py``: ``resize_for_rectangle_crop(..., reshape_mode="center")`` on seeded
  reference images of four aspects, as ``infer_groundino`` calls it (cv2 BGR→RGB is not needed: the images
  are RGB already); ``filt_bboxes`` on 7 boxes; the box text the function writes (its own f-string, run on
  the same values) read back by ``samurai/scripts/demo.py``'s ``load_txt``.
- ``BLIP/data/pretrain_IP_dataset.py`` (``RetrievalVideoDataset`` in its infer mode, through
  ``create_dataset('query')``, i.e. ``load_rgb_frames``, the masked crops written as ``.jpg`` and read back)
  on seeded frames written as ``frames/%05d.jpg`` with ``cv2.imwrite`` (what ``extract_frames`` does) and a
  seeded ``masks/mask.npy``; ``create_dataset('gallery')`` on a synthetic gallery (json + crops).
- ``BLIP/infer_retrieval_pretrain_v2.py``: ``create_gallery``, ``create_query``, ``compute_gallery_embeds``
  and ``evaluation`` (per-identity mean, softmax, frame mean, top-1, object mean) with a deterministic stub
  recogniser (``tests/parity/weights_character.py:StubRecognizer``; the BLIP ViT-L network is helper blip's
  parity).

- ``samurai/sam2`` (SAMURAI's sam2 fork, imported as ``sam2`` exactly as demo.py does):
  ``build_sam2_video_predictor("configs/samurai/sam2.1_hiera_b+.yaml", ...)`` with tiny sizes given as hydra
  overrides (``weights_character.SAM2_TINY``), ``device="cpu"`` (demo.py hard-wires ``cuda:0`` and
  ``torch.autocast("cuda")``; its ``main`` is therefore not called, its steps are: ``init_state`` on the JPEG
  frame folder, ``add_new_points_or_box`` with the box on frame 0, ``propagate_in_video``), seeded weights by
  tensor name (``sam2_seeded_state``) loaded by the fork's own ``_load_checkpoint`` (which refuses missing or
  unexpected keys). Run twice: ``samurai_mode=false`` (what anibench's upstream-sam2 tracker must match) and
  ``samurai_mode=true`` (the published mode; recorded as per-frame IoU against the first). Hole filling
  (``fill_hole_area``) is off on both sides: it needs the fork's CUDA extension.

Stubbed (imports only, nothing they compute is used): ``character.BLIP.blip_models.blip_pretrain`` (the BLIP
model, not needed with the stub) and ``pycocotools.coco``/``pycocoevalcap.eval`` (imported at module level by
``BLIP/data/utils.py`` for captioning helpers that are never called). Extra packages in the parity venv:
scripts/parity/requirements-anime_reward_character.txt. GroundingDINO is transformers' class on both sides (the
published code calls ``AutoModelForZeroShotObjectDetection``), so only its box post-processing is compared.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "scripts" / "parity"))
import torchvision_shim  # noqa: E402,F401  (before anything imports torchvision)
import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from parity import weights_character as W  # noqa: E402

MIRROR = Path(os.environ.get("ANISORA_MIRROR", "/work/.mirror/bilibili+Index-anisora/repo"))
COMMIT = "171fe63409792bf7f0bd9d825f83c20fe8ec5477"
FIXTURE = REPO / "tests" / "parity" / "fixtures" / "anime_reward_character.json"
TOLERANCE = 1e-4
SAMPLE_POSITIONS = 64


PUBLISHED_PATHS = ("reward/character/BLIP", "reward/character/samurai/__init__.py",
                   "reward/character/samurai/samurai_with_gdino_t2v.py", "reward/character/samurai/scripts/demo.py",
                   "reward/character/samurai/sam2/sam2")


def extract(work: Path) -> Path:
    """The published files at the pinned commit (``git archive`` of the whole folder fails on the mirror's
    missing large blobs under samurai/sam2, which is not needed)."""
    listing = subprocess.run(["git", "-C", str(MIRROR), "ls-tree", "-r", "--name-only", COMMIT, *PUBLISHED_PATHS],
                             check=True, capture_output=True, text=True).stdout.split()
    for name in listing:
        blob = subprocess.run(["git", "-C", str(MIRROR), "show", f"{COMMIT}:{name}"], check=True,
                              capture_output=True).stdout
        target = work / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(blob)
    return work / "reward"


def import_published(reward: Path) -> dict[str, types.ModuleType]:
    sys.path.insert(0, str(reward))
    blip_pretrain = types.ModuleType("character.BLIP.blip_models.blip_pretrain")
    blip_pretrain.blip_pretrain = None  # the BLIP network is not used: a stub recogniser embeds
    sys.modules["character.BLIP.blip_models.blip_pretrain"] = blip_pretrain
    sys.path.insert(0, str(reward / "character" / "samurai" / "sam2"))  # SAMURAI's sam2 fork, as demo.py imports it
    # data/utils.py imports the COCO caption tools at module level for its captioning helpers (unused here)
    for name, attr in (("pycocotools.coco", "COCO"), ("pycocoevalcap.eval", "COCOEvalCap")):
        parent = name.split(".")[0]
        sys.modules.setdefault(parent, types.ModuleType(parent))
        module = types.ModuleType(name)
        setattr(module, attr, None)
        sys.modules[name] = module
    import importlib

    modules = {
        "retrieval": importlib.import_module("character.BLIP.infer_retrieval_pretrain_v2"),
        "dataset": importlib.import_module("character.BLIP.data.pretrain_IP_dataset"),
        "gdino": importlib.import_module("character.samurai.samurai_with_gdino_t2v"),
    }
    spec = importlib.util.spec_from_file_location("published_demo", reward / "character/samurai/scripts/demo.py")
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    modules["demo"] = demo
    return modules


def sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def sample_positions(shape: tuple[int, ...], seed: int = W.PARITY_SEED) -> np.ndarray:
    return np.random.default_rng(seed + 3).integers(0, int(np.prod(shape)), SAMPLE_POSITIONS)


def summary(tensor: torch.Tensor) -> dict:
    flat = tensor.detach().double().reshape(-1)
    return {"shape": list(tensor.shape), "sum": float(flat.sum()), "sum_abs": float(flat.abs().sum()),
            "samples": [float(flat[i]) for i in sample_positions(tuple(tensor.shape))]}


def reference_fits(mods) -> list[dict]:
    out = []
    for name, image in W.parity_reference_images().items():
        tensor = torch.tensor(image).unsqueeze(0).permute(0, 3, 1, 2)  # as infer_groundino
        fitted = mods["gdino"].resize_for_rectangle_crop(tensor, (W.PARITY_H, W.PARITY_W), reshape_mode="center")
        fitted = np.array(fitted.permute(1, 2, 0))
        out.append({"name": name, "shape": list(fitted.shape), "sha256": sha256(fitted),
                    "mean": float(fitted.astype(np.float64).mean())})
    return out


def boxes(mods, work: Path) -> dict:
    rng = np.random.default_rng(W.PARITY_SEED + 4)
    raw = []
    for _ in range(7):
        x0, y0 = rng.uniform(-2, 40, 2)
        raw.append([float(x0), float(y0), float(x0 + rng.uniform(2.4, 20)), float(y0 + rng.uniform(1.5, 20))])
    raw[1] = [10.5, 2.5, 20.5, 13.5]  # halves: Python's round() rounds them to even
    kept, count = mods["gdino"].filt_bboxes(raw, len(raw))
    prompts = []
    for index, box in enumerate(kept):
        path = work / f"00000_{index:03d}.txt"
        with open(path, "w") as fh:  # the line infer_groundino writes
            fh.writelines(f'{round(box[0])},{round(box[1])},{round(box[2]-box[0])},{round(box[3]-box[1])}')
        prompts.append(list(mods["demo"].load_txt(str(path))[0][0]))
    return {"detected": raw, "kept": kept, "count": count, "prompt_boxes": prompts}


def query_and_gallery(mods, work: Path) -> dict:
    video = work / "character_save" / "parity_clip"
    (video / "frames").mkdir(parents=True)
    (video / "masks").mkdir()
    frames = W.parity_frames()
    for t, frame in enumerate(frames):  # extract_frames: cv2.imwrite of the BGR frame
        cv2.imwrite(str(video / "frames" / f"{t:05d}.jpg"), frame[:, :, ::-1])
    id_map = W.parity_id_map()
    np.save(video / "masks" / "mask.npy", id_map)  # demo.py: uint16 ids (fix_imports is gone in numpy 2.4)

    gallery_dir = work / "gallery"
    gallery_dir.mkdir()
    json_path, _ = W.write_gallery(gallery_dir)
    config = {"gallery": str(json_path), "query": str(video), "batch_size": 500, "image_size": 224}
    gallery_loader = mods["retrieval"].create_gallery(config, 8, str(gallery_dir / "videos"))
    query_loader = mods["retrieval"].create_query(config, 8)

    model = W.StubRecognizer().eval()
    gallery_embeds = mods["retrieval"].compute_gallery_embeds(model, gallery_loader, "cpu")
    value = mods["retrieval"].evaluation(model, gallery_loader, gallery_embeds, query_loader, 8, "cpu")

    dataset = query_loader.dataset
    objects = []
    for index in range(len(dataset)):
        crops, paths = dataset[index]
        object_id = int(Path(paths[0]).name.split("_")[0][len("object"):])
        objects.append({"object_id": object_id, "crops": summary(crops), "crop_files": [Path(p).name for p in paths],
                        "embeddings": model.embed_crops(crops).tolist()})
    grouped, names = mods["retrieval"].group_gallery_according_to_names(
        torch.stack([torch.tensor(o["embeddings"]) for o in objects]) @ gallery_embeds.t(),
        gallery_loader.dataset.names)
    probs = torch.softmax(grouped, dim=-1).mean(dim=1)
    gallery_pixels = torch.stack([gallery_loader.dataset[i][0] for i in range(len(gallery_loader.dataset))])
    return {
        "frames_sha256": sha256(frames), "id_map_sha256": sha256(id_map),
        "gallery": {"captions": gallery_loader.dataset.names, "identities": names, "pixels": summary(gallery_pixels),
                    "embeddings": gallery_embeds.tolist()},
        "objects": objects, "per_object_top1": probs.max(dim=-1).values.tolist(),
        "per_object_probabilities": probs.tolist(), "value": float(value),
    }


def _logit_summary(logits: np.ndarray) -> dict:
    flat = logits.astype(np.float64).reshape(len(logits), -1)
    positions = np.random.default_rng(W.PARITY_SEED + 5).integers(0, flat.shape[1], 16)
    return {"mean": flat.mean(axis=1).tolist(), "positive": (flat > 0).sum(axis=1).tolist(),
            "samples": flat[:, positions].tolist()}


def tracking(work: Path) -> dict:
    """SAMURAI's own predictor (its sam2 fork, ``build_sam2_video_predictor`` with its samurai config), tiny
    seeded weights, on a JPEG frame folder as ``extract_frames`` writes it; once with ``samurai_mode=false``
    (plain SAM2 memory: anibench's tracker must match it) and once as published (``samurai_mode=true``)."""
    from sam2.build_sam import build_sam2_video_predictor

    frames = W.parity_frames()
    folder = work / "tracking_frames"
    folder.mkdir()
    for t, data in enumerate(W.parity_tracking_frames_jpeg(frames)):
        (folder / f"{t:05d}.jpg").write_bytes(data)
    post = ["++model.sam_mask_decoder_extra_args.dynamic_multimask_via_stability=true",
            "++model.sam_mask_decoder_extra_args.dynamic_multimask_stability_delta=0.05",
            "++model.sam_mask_decoder_extra_args.dynamic_multimask_stability_thresh=0.98",
            "++model.binarize_mask_from_pts_for_mem_enc=true",
            "++model.fill_hole_area=0"]  # hole filling needs sam2's CUDA extension: off on both sides

    def build(samurai: bool, checkpoint: str | None):
        return build_sam2_video_predictor(
            "configs/samurai/sam2.1_hiera_b+.yaml", checkpoint, device="cpu", apply_postprocessing=False,
            hydra_overrides_extra=W.sam2_hydra_overrides() + post + [f"++model.samurai_mode={str(samurai).lower()}"])

    state = W.sam2_seeded_state(build(False, None).state_dict())
    checkpoint = work / "sam2_tiny_seeded.pt"
    torch.save({"model": state}, checkpoint)
    out = {"box": W.PARITY_TRACK_BOX, "state_keys": len(state),
           "state_sha256": hashlib.sha256(b"".join(k.encode() + state[k].numpy().tobytes()
                                                   for k in sorted(state))).hexdigest()}
    logits = {}
    for samurai in (False, True):
        predictor = build(samurai, str(checkpoint))  # SAMURAI's _load_checkpoint: errors on any key mismatch
        result = np.zeros(frames.shape[:3], np.float32)
        with torch.inference_mode():
            st = predictor.init_state(str(folder), offload_video_to_cpu=True, start_frame_idx=0)
            predictor.add_new_points_or_box(st, box=tuple(W.PARITY_TRACK_BOX), frame_idx=0, obj_id=1)
            for frame_idx, _, masks in predictor.propagate_in_video(st):
                result[frame_idx] = masks[0, 0].float().numpy()
        logits[samurai] = result
        out["samurai" if samurai else "sam2_memory"] = _logit_summary(result)
    plain, samurai = logits[False] > 0, logits[True] > 0
    union = (plain | samurai).sum(axis=(1, 2))
    out["samurai_vs_sam2_iou"] = [float(i) for i in np.where(union > 0, (plain & samurai).sum(axis=(1, 2))
                                                             / np.maximum(union, 1), 1.0)]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, help="keep the work folder here")
    args = parser.parse_args()
    started = time.perf_counter()
    work = args.work or Path(tempfile.mkdtemp(prefix="anime-reward-character-"))
    work.mkdir(parents=True, exist_ok=True)
    reward = extract(work)
    mods = import_published(reward)
    torch.manual_seed(0)
    fixture = {
        "recipe": {
            "reference": f"bilibili/Index-anisora@{COMMIT} reward/character/",
            "commit": COMMIT, "tolerance": TOLERANCE, "seed": W.PARITY_SEED,
            "command": "/work/parity-work/venv/bin/python scripts/parity/anime_reward_character_reference.py",
            "inputs": "tests/parity/weights_character.py: parity_frames, parity_id_map, parity_reference_images, "
                      "write_gallery, StubRecognizer",
            "packages": {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
                         "opencv": cv2.__version__, "pillow": __import__("PIL").__version__},
            "not_run": "demo.py main (hard-wired to device='cuda:0' and torch.autocast('cuda')): its steps run on "
                       "the CPU instead; sam2 hole filling (CUDA extension only) is off on both sides; "
                       "GroundingDINO is transformers' class on both sides",
        },
        "reference_fit": reference_fits(mods),
        "boxes": boxes(mods, work),
        "retrieval": query_and_gallery(mods, work),
        "tracking": tracking(work),
    }
    fixture["recipe"]["seconds"] = round(time.perf_counter() - started, 2)
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    FIXTURE.write_text(json.dumps(fixture, indent=1) + "\n")
    print(f"wrote {FIXTURE} in {fixture['recipe']['seconds']} s; value {fixture['retrieval']['value']:.6f}")


if __name__ == "__main__":
    main()
