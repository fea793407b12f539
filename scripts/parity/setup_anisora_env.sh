#!/usr/bin/env bash
# Builds the reference venv for the AniSora Wan parity fixtures (tests/parity/fixtures/anisora_wan/):
# python3.11 venv at $PARITY_HOME/anisora-venv with the local CPU torch 2.13.0, numpy, einops and the
# diffusers base classes that AniSora's WanModel subclasses. AniSora's own code is read, never copied,
# from a checkout of bilibili/Index-anisora at 171fe63 ($ANISORA_SRC, default $PARITY_HOME/anisora-full;
# only anisoraV3/wan/modules/{model_infer,attention,vae}.py are imported, by file path).
#
#   scripts/parity/setup_anisora_env.sh
#   $PARITY_HOME/anisora-venv/bin/python tests/parity/reference_anisora_wan.py   # -> fixtures
set -euo pipefail
PARITY_HOME="${PARITY_HOME:-/work/parity-work}"
ANISORA_COMMIT="${ANISORA_COMMIT:-171fe63}"
ANISORA_GIT="${ANISORA_GIT:-/work/.mirror/bilibili+Index-anisora/repo}"
ANISORA_SRC="${ANISORA_SRC:-$PARITY_HOME/anisora-full}"
python="${PYTHON:-python3.11}"
venv="$PARITY_HOME/anisora-venv"
requirements="$(mktemp)"
trap 'rm -f "$requirements"' EXIT
# Exact pins; the file is also the constraint for sdist builds. torch==2.13.0 selects the local CPU build
# (2.13.0+cpu), numpy as anibench's venv; einops for anisoraV3/wan/modules/vae.py; AniSora's WanModel
# subclasses diffusers' ModelMixin/ConfigMixin (AniSora asks diffusers>=0.31.0): only those base classes
# are used, the forward math is AniSora's own.
cat > "$requirements" <<'PINS'
torch==2.13.0
numpy==2.4.6
einops==0.8.2
diffusers==0.42.1
huggingface_hub==2.4.0
safetensors==0.8.0
PINS

if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip)
"${pip[@]}" install --quiet --upgrade "pip>=25.3"
"${pip[@]}" install --quiet -c "$requirements" --build-constraint "$requirements" -r "$requirements"
"${pip[@]}" freeze > "$venv/pip-freeze.txt"

if [[ ! -f "$ANISORA_SRC/anisoraV3/wan/modules/model_infer.py" ]]; then
    mkdir -p "$ANISORA_SRC"
    git -C "$ANISORA_GIT" archive -o "$ANISORA_SRC/anisoraV3.tar" "$ANISORA_COMMIT" anisoraV3/wan
    tar -x -C "$ANISORA_SRC" -f "$ANISORA_SRC/anisoraV3.tar" && rm "$ANISORA_SRC/anisoraV3.tar"
fi
echo "AniSora Wan reference environment ready: $venv (AniSora@$ANISORA_COMMIT at $ANISORA_SRC)"
