#!/usr/bin/env bash
# Builds the VBench reference environment used to produce tests/parity/fixtures/vbench_*.json.
# It lives OUTSIDE the project: a separate venv and VBench's own source tree at a pinned commit.
# Nothing in the anibench package imports VBench; only scripts/parity/*.py do, run with this venv.
#
#   scripts/parity/setup_vbench_env.sh                # -> $PARITY_HOME (default /work/parity-work)
#
# Steps (each documented below):
#   1. venv with Python 3.11 at $PARITY_HOME/venv, pip upgraded first (pip >= 25.3 has --build-constraint)
#   2. packages from scripts/parity/constraints.txt, applied as -c and --build-constraint:
#      torch 2.13.0 (the local CPU build), torchvision 0.28.0 (only a CUDA wheel exists: imported through
#      scripts/parity/torchvision_shim.py), numpy, Pillow, PyAV as in anibench's venv, and what VBench's
#      subject_consistency / background_consistency / vbench2_beta_i2v.i2v_subject modules import:
#      decord (VBench's load_video), openai-clip (`import clip`, VBench's requirements.txt), opencv
#      (`import cv2` at the top of both DINO modules; the headless build, same `cv2` module), tqdm.
#      Deliberately NOT installed from VBench's requirements.txt (not imported by these three modules,
#      several fight the CPU torch or numpy 2): timm, transformers==4.33.2, pyiqa, detectron2, lvis,
#      fairscale, fvcore, pycocoevalcap, tensorboard, scikit-*, boto3, omegaconf, easydict, matplotlib.
#      numpy<2.0.0 from VBench's requirements is not followed: the three modules run on numpy 2.4.6 (the
#      anibench venv's version, which the weight recipe must share).
#   3. VBench source (packages vbench/ and vbench2_beta_i2v/) extracted with `git archive` at commit
#      $VBENCH_COMMIT (not the PyPI wheel, which differs from HEAD) into $PARITY_HOME/VBench; the scripts
#      put it on sys.path.
#   4. facebookresearch/dino extracted at $DINO_COMMIT into $PARITY_HOME/dino (the torch.hub repo that
#      VBench's `torch.hub.load(..., source='local')` reads; copied into the run's cache by the runner).
#
# Git sources: $VBENCH_GIT / $DINO_GIT name a git directory (bare or not) that contains the commit;
# when unset and the default mirror is absent, the public repository is cloned.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
PARITY_HOME="${PARITY_HOME:-/work/parity-work}"
VBENCH_COMMIT="${VBENCH_COMMIT:-45e79ec14e69a2187202c675d2dbce1a71843d53}"
DINO_COMMIT="${DINO_COMMIT:-7c446df5b9f45747937fb0d72314eb9f7b66930a}"
VBENCH_GIT="${VBENCH_GIT:-/work/.mirror/Vchitect+VBench/repo}"
DINO_GIT="${DINO_GIT:-/work/.mirror/facebookresearch+dino/repo}"
COTRACKER_COMMIT="${COTRACKER_COMMIT:-82e02e8029753ad4ef13cf06be7f4fc5facdda4d}"
COTRACKER_GIT="${COTRACKER_GIT:-/work/.mirror/facebookresearch+co-tracker/repo}"
python="${PYTHON:-python3.11}"
mkdir -p "$PARITY_HOME"

# 1. venv
if [[ ! -x "$PARITY_HOME/venv/bin/python" ]]; then
    "$python" -m venv "$PARITY_HOME/venv"
fi
pip=("$PARITY_HOME/venv/bin/python" -m pip)
"${pip[@]}" install --quiet --upgrade "pip>=25.3"

# 2. packages (exact pins; the constraint also reaches sdist build environments)
constraints="$here/constraints.txt"
"${pip[@]}" install --quiet -c "$constraints" --build-constraint "$constraints" \
    torch torchvision numpy pillow av decord openai-clip opencv-python-headless setuptools packaging tqdm
# What VBench's code for the other VBench-I2V dimensions imports, one pinned file per dimension
# (scripts/parity/requirements-<dimension>.txt says why each package is there). pyiqa goes in
# without its declared dependencies: they would replace the headless OpenCV with the GUI build and
# pull ~40 packages MUSIQ never imports.
for requirements in "$here"/requirements-*.txt; do
    no_deps=()
    [[ "$requirements" == *imaging_quality* ]] && no_deps=(--no-deps)
    "${pip[@]}" install --quiet -c "$constraints" --build-constraint "$constraints" "${no_deps[@]}" -r "$requirements"
done
"${pip[@]}" freeze > "$PARITY_HOME/pip-freeze.txt"

# 3./4. sources at pinned commits
extract() {  # extract GIT_DIR COMMIT URL DEST [PATH...]: only PATHs when given
    local git_dir="$1" commit="$2" url="$3" dest="$4"
    shift 4
    if [[ -f "$dest/.commit" && "$(cat "$dest/.commit")" == "$commit" ]]; then
        return
    fi
    if ! git -C "$git_dir" cat-file -e "$commit^{commit}" 2>/dev/null; then
        git_dir="$PARITY_HOME/clones/$(basename "$dest")"
        [[ -d "$git_dir" ]] || git clone --quiet --bare "$url" "$git_dir"
    fi
    rm -rf "$dest" && mkdir -p "$dest"
    git -C "$git_dir" archive -o "$dest.tar" "$commit" "$@"
    tar -x -C "$dest" -f "$dest.tar" && rm "$dest.tar"
    echo "$commit" > "$dest/.commit"
}
# Only the packages the three dimensions need (the mirror lacks some large VBench-2.0 data blobs).
extract "$VBENCH_GIT" "$VBENCH_COMMIT" https://github.com/Vchitect/VBench "$PARITY_HOME/VBench" \
    vbench vbench2_beta_i2v LICENSE requirements.txt setup.py
extract "$DINO_GIT" "$DINO_COMMIT" https://github.com/facebookresearch/dino "$PARITY_HOME/dino" \
    hubconf.py vision_transformer.py utils.py LICENSE
# 5. co-tracker at the commit whose hub entry VBench-I2V's camera motion loads (cotracker2), for
#    scripts/parity/vbench_camera_motion_reference.py (torch.hub.load(..., source='local')).
extract "$COTRACKER_GIT" "$COTRACKER_COMMIT" https://github.com/facebookresearch/co-tracker "$PARITY_HOME/co-tracker" \
    hubconf.py cotracker

echo "parity environment ready: $PARITY_HOME (venv, VBench@${VBENCH_COMMIT:0:7}, dino@${DINO_COMMIT:0:7}, co-tracker@${COTRACKER_COMMIT:0:7})"
