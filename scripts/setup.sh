#!/usr/bin/env bash
# Creates .venv and installs anibench into it (editable) for this machine.
#   scripts/setup.sh            runtime only (the weight-free core: no torch)
#   scripts/setup.sh neural     runtime + the neural extra (torch, transformers, safetensors, huggingface-hub)
#   scripts/setup.sh serve      runtime + the reward server (fastapi, uvicorn)
#   scripts/setup.sh dev        runtime + neural + serve extras + test tools, and Debian's Chromium for the HTML report tests
#   scripts/setup.sh a,b        any list of extras, as given
# Exact pins for the project's CPU machines come from constraints/cpu.txt, also
# applied to build environments, so nothing here pulls CUDA wheels of torch.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
[[ "$extras" == dev ]] && extras="dev,neural,serve"   # CI runs the model and reward-server tests too
python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null 2>&1 || python=python3
if [[ ! -x .venv/bin/python ]]; then
    "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade "pip>=25.3"
spec="."
[[ -n "$extras" ]] && spec=".[${extras}]"
.venv/bin/python -m pip install --quiet \
    -c constraints/cpu.txt --build-constraint constraints/cpu.txt \
    -e "$spec"
.venv/bin/python -m pip check

# The HTML report tests drive the system Chromium through Playwright (never a downloaded browser).
if [[ "$extras" == *dev* ]] && ! command -v chromium >/dev/null 2>&1 && [[ -z "${ANIBENCH_CHROMIUM:-}" ]]; then
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
    else
        echo "setup: install Chromium (Debian: sudo apt-get install chromium) or set ANIBENCH_CHROMIUM" >&2
    fi
fi
