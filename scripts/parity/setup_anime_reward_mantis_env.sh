#!/usr/bin/env bash
# Builds the reference venv for the AnimeReward Mantis heads (visual smoothness / visual appeal):
# python3.11 venv at $PARITY_HOME/venv-mantis with transformers 4.45.1 (what the vendored Mantis
# Idefics2ForSequenceClassification was trained and written against) and the local CPU torch 2.13.0.
# The reference code itself is read from the published AnimeReward tree extracted at commit 171fe63
# ($ANISORA_REWARD, default $PARITY_HOME/anisora/reward; only reward/mantis/models/idefics2 is imported).
#
#   scripts/parity/setup_anime_reward_mantis_env.sh
#   $PARITY_HOME/venv-mantis/bin/python scripts/parity/anime_reward_mantis_reference.py   # -> fixture
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
PARITY_HOME="${PARITY_HOME:-/work/parity-work}"
ANISORA_COMMIT="${ANISORA_COMMIT:-171fe63}"
ANISORA_GIT="${ANISORA_GIT:-/work/.mirror/bilibili+Index-anisora/repo}"
python="${PYTHON:-python3.11}"
venv="$PARITY_HOME/venv-mantis"
requirements="$here/requirements-anime_reward_mantis.txt"

if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip)
"${pip[@]}" install --quiet --upgrade "pip>=25.3"
# Every requirement is an exact pin; the file is also the constraint for sdist builds.
"${pip[@]}" install --quiet -c "$requirements" --build-constraint "$requirements" -r "$requirements"
"${pip[@]}" freeze > "$venv/pip-freeze.txt"

# The published reward/ tree at the pinned commit (only reward/mantis is imported by the reference).
dest="$PARITY_HOME/anisora"
if [[ ! -f "$dest/reward/mantis/models/idefics2/modeling_idefics2.py" ]]; then
    mkdir -p "$dest"
    git -C "$ANISORA_GIT" archive -o "$dest/reward-mantis.tar" "$ANISORA_COMMIT" reward/mantis/models
    tar -x -C "$dest" -f "$dest/reward-mantis.tar" && rm "$dest/reward-mantis.tar"
fi
echo "mantis reference environment ready: $venv (transformers 4.45.1, AnimeReward@$ANISORA_COMMIT)"
