"""Model weights: the manifest, the weights folder, and import / fetch / verify / resolve / load.

**Offline by default.** Nothing here downloads unless :meth:`WeightStore.fetch` (``anibench
weights fetch``) is called. A scorer asks :meth:`WeightStore.resolve` for its weights; when
they are absent it gets a :class:`~anibench.errors.MissingWeightsError` naming the file, the
manifest entry, the folder searched and the commands that provide it — never a silent
download, never random weights.

**The manifest** (``datasets/weights.yaml``, plus the files listed in
``$ANIBENCH_WEIGHTS_MANIFEST`` separated by ``os.pathsep``, plus ``manifest.local.yaml``
in the weights folder) is a list of entries::

    weights:
      - name: dino_vitb16                       # [a-z0-9][a-z0-9_.-]*
        description: DINO ViT-B/16 self-supervised backbone
        file: dino_vitbase16_pretrain.pth      # the published file name
        source: {url: https://…}               # or {hub: org/repo, file: f, revision: r}; null = local only
                                               # (+ archive_member: path/in.zip when the URL is a zip)
        sha256: null                           # when published; else recorded on first import
        sha256_prefix: null                    # derived from torch-hub names such as musiq-358bb6af.pth
        size: null                             # bytes, when known
        licence: Apache-2.0
        format: torch-state-dict               # torch-state-dict | torchscript | safetensors | zip
        converter: anibench.models.dino:convert_published   # convert(source: Path, target_dir: Path) -> None
        used_by: [vbench.subject_consistency]
        hub_id: facebook/dino-vitb16           # a maintained HF-format port (information only)
        reference: where these facts come from
        notes: anything else

**The weights folder** (``$ANIBENCH_WEIGHTS``, default ``~/.cache/anibench/weights``)::

    <root>/manifest.local.yaml      entries added with WeightStore.add_local (trained heads)
    <root>/<name>/<file>            the published file, byte for byte
    <root>/<name>/record.json       sha256, size, imported_at, origin, converter and versions
    <root>/<name>/converted/        the converter's output (an HF-format folder), if any
    <root>/.downloads/<name>/       partial downloads (``fetch`` resumes them)

An import is staged in a temporary folder beside ``<root>/<name>`` and renamed into place
only after the hash checks and the converter succeed, so a failure leaves nothing behind.

**For scorers**::

    store = WeightStore()                          # or WeightStore(root) in tests
    weight = store.resolve("dino_vitb16")          # MissingWeightsError if absent
    model = Model.from_pretrained(weight.path)     # converted folder (or the file without converter)
    weight.provenance()                            # name, file, sha256, source, converter, versions
    weight.identity()                              # what changes values: hash into score keys

Files are loaded with :func:`load_state_dict`: safetensors, ``torch.load(weights_only=True)``,
or TorchScript archives (OpenAI's CLIP files) through ``torch.jit.load`` (see its docstring).
"""

from anibench.runtime.weights.download import FetchError
from anibench.runtime.weights.files import WeightFileError, check_structure, detect_format, load_state_dict
from anibench.runtime.weights.manifest import (
    CONVERTED_DIR, LOCAL_MANIFEST, MANIFEST_ENV, RECORD_FILE, ROOT_ENV, ManifestError, WeightEntry, WeightsError,
    WeightSource, default_root, hash_prefix_from_name,
)
from anibench.runtime.weights.store import (
    ResolvedWeight, VerifyResult, WeightConversionError, WeightIntegrityError, WeightStatus, WeightStore,
)

__all__ = [
    "CONVERTED_DIR", "LOCAL_MANIFEST", "MANIFEST_ENV", "RECORD_FILE", "ROOT_ENV", "FetchError", "ManifestError",
    "ResolvedWeight", "VerifyResult", "WeightConversionError", "WeightEntry", "WeightFileError",
    "WeightIntegrityError", "WeightSource", "WeightStatus", "WeightStore", "WeightsError", "check_structure",
    "default_root", "detect_format", "hash_prefix_from_name", "load_state_dict",
]
