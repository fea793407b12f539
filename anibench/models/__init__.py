"""Neural backbones loaded from their published checkpoints into maintained implementations.

Each family has a converter from the file its authors publish to a Hugging Face folder
(``config.json`` + ``model.safetensors``, loadable with ``from_pretrained``), a loader and a
batched feature function:

- :mod:`anibench.models.dino`: DINO ViT (Caron et al. 2021) as ``transformers.ViTModel``.
- :mod:`anibench.models.clip`: OpenAI CLIP ViT image tower as
  ``transformers.CLIPVisionModelWithProjection``.
- :mod:`anibench.models.vbench_consistency`: VBench's preprocessing and formulas for
  subject consistency, background consistency and I2V subject.
- :mod:`anibench.models.checkpoints`: the steps the converters share (safe reading,
  layout checks, writing the folder).

Importing these modules needs torch and transformers (the neural extra).
"""

from anibench.runtime.torchvision_compat import ensure_torchvision

ensure_torchvision()  # transformers, open_clip and timm import torchvision; on CPU torch it needs the shim first
