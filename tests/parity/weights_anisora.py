"""Tiny random AniSora generator weights in their published formats, imported into one weights folder.

The diffusers bases are written with ``save_pretrained`` (tests/parity/tiny_wan.py, tiny_cogvideox.py); the
AniSora transformers in their ORIGINAL layouts (Wan shards + config.json, a SAT ``mp_rank_00_model_states.pt``),
so importing them runs the real converters. :func:`install_tiny` returns the ``weight_aliases`` that make every
published entry load its stand-in. **Random weights: plumbing and timing only, never outputs to judge.**
"""

from __future__ import annotations

import tempfile
from pathlib import Path

STAND_INS = {
    "wan21_i2v_14b_480p_diffusers": "tiny_wan21_i2v_diffusers",
    "wan22_i2v_a14b_diffusers": "tiny_wan22_i2v_diffusers",
    "anisora_v2_dit": "tiny_anisora_wan21_dit",
    "anisora_v3_dit": "tiny_anisora_wan21_dit",
    "anisora_v3_1_dit": "tiny_anisora_wan21_dit",
    "anisora_anymask_dit": "tiny_anisora_wan21_dit",
    "anisora_v3_2_high_noise_dit": "tiny_anisora_wan22_high_dit",
    "anisora_v3_2_low_noise_dit": "tiny_anisora_wan22_low_dit",
    "cogvideox_5b_i2v_diffusers": "tiny_cogvideox_i2v_diffusers",
    "anisora_v1_5b_sat": "tiny_anisora_v1_sat",
    "anisora_v1_5b_rl_sat": "tiny_anisora_v1_sat",
}
WAN_CONVERTER = "anibench.models.wan_convert:convert_transformer"
SAT_CONVERTER = "anibench.models.cogvideox_anisora:convert_transformer"


def install_tiny(root: str | Path) -> dict[str, str]:
    """Write and import every stand-in into the weights folder ``root`` (skipping installed ones)."""
    from parity.tiny_cogvideox import write_tiny_cogvideox_base, write_tiny_sat_checkpoint
    from parity.tiny_wan import write_tiny_wan_base
    from parity.tiny_wan_original import write_tiny_anisora_dit

    from anibench.runtime.weights import WeightStore

    store = WeightStore(Path(root))
    recipes = {
        "tiny_wan21_i2v_diffusers": (lambda d: write_tiny_wan_base(d / "base"), "hf-folder", None),
        "tiny_wan22_i2v_diffusers": (lambda d: write_tiny_wan_base(d / "base", wan22=True), "hf-folder", None),
        "tiny_anisora_wan21_dit": (lambda d: write_tiny_anisora_dit(d / "dit", seed=11), "hf-folder", WAN_CONVERTER),
        "tiny_anisora_wan22_high_dit": (lambda d: write_tiny_anisora_dit(d / "dit", wan22=True, seed=12), "hf-folder",
                                        WAN_CONVERTER),
        "tiny_anisora_wan22_low_dit": (lambda d: write_tiny_anisora_dit(d / "dit", wan22=True, seed=13), "hf-folder",
                                       WAN_CONVERTER),
        "tiny_cogvideox_i2v_diffusers": (lambda d: write_tiny_cogvideox_base(d / "base"), "hf-folder", None),
        "tiny_anisora_v1_sat": (lambda d: write_tiny_sat_checkpoint(d / "mp_rank_00_model_states.pt", seed=14,
                                                                    config_beside=False), "torch-state-dict",
                                SAT_CONVERTER),
    }
    installed = store.entries()
    for name, (write, fmt, converter) in recipes.items():
        if name in installed:
            continue
        with tempfile.TemporaryDirectory() as scratch:
            source = write(Path(scratch))
            store.add_local(name, source, format=fmt, converter=converter, description="tiny random stand-in",
                            licence="test weights")
    return dict(STAND_INS)


def aliases_text(aliases: dict[str, str]) -> str:
    """The ``$ANIBENCH_WEIGHT_ALIASES`` value for ``aliases``."""
    return ",".join(f"{k}={v}" for k, v in aliases.items())
