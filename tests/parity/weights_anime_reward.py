"""Seeded random weights for all six AnimeReward heads at once, in their published formats (tests, benchmarks).

Each head's own recipe writes its files (tests/parity/weights_{actionclip,blip_reward,mantis,character}.py);
this module imports them into one weights folder and returns the ``weight_aliases`` that make the published
entries load them. **Random weights: plumbing and timing only, never scores.**
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from parity import weights_actionclip, weights_blip_reward, weights_character, weights_mantis

CHARACTER_SUFFIX = "seeded"


def install_all(root: str | Path, size: str = "tiny") -> dict[str, str]:
    """Install every head's random weights into the weights folder ``root``; returns {published entry: stand-in}.

    ``tiny``: every network at its smallest test size. ``full``: ActionCLIP and the three BLIP networks at their
    published sizes (the Mantis-8B and SAM2/GroundingDINO stand-ins stay tiny: they do not fit a CPU benchmark).
    """
    from anibench.runtime.weights import WeightStore

    root = Path(root)
    full = size == "full"
    motion = weights_actionclip.install_random_actionclip(root, "full" if full else "micro")
    aliases = {} if motion == weights_actionclip.ENTRY else {weights_actionclip.ENTRY: motion}
    aliases.update(weights_blip_reward.install_random_blip(root, "full" if full else "small"))
    aliases.update(weights_mantis.install_tiny_weights(root))
    character = {e: f"{e}_{CHARACTER_SUFFIX}" for e in weights_character.ENTRIES.values()}
    if full:  # the recogniser at full size is the published entry itself
        character.pop(weights_character.ENTRIES["recognizer"])
    if not all(name in WeightStore(root).entries() for name in character.values()):
        with tempfile.TemporaryDirectory() as scratch:
            files = weights_character.write_weights_folder(scratch)
            installed = weights_character.install(root, files, suffix=CHARACTER_SUFFIX)
        character = {k: v for k, v in installed.items() if k in character}
    aliases.update(character)
    return aliases
