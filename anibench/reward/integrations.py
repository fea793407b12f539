"""Adapters for RL frameworks: verl / verl-omni ``compute_score`` (client side), OpenRLHF (server side).

**verl-omni** (diffusion RL, e.g. Wan2.2 video with FlowGRPO/DanceGRPO) calls a reward function
by keyword, ``compute_score(data_source, solution_image, ground_truth, extra_info, **kwargs)``,
with a video as a ``torch.uint8`` tensor (T, C, H, W), and forwards every other key of its
config as a keyword (e.g. ``server_url``). Its stock HTTP scorer sends only frame 0 of a
video and pickles its payload; :func:`compute_score` sends **every frame** (raw uint8, the
binary container; nothing pickled) to ``anibench reward serve`` and returns
``{"score": reward, "<scorer>": value, ...}`` (floats only). A failed item raises, so
verl-omni scores it 0.0 unless the reward is ``required: true`` (then the step stops)::

    # single reward
    reward:
      custom_reward_function:
        path: pkg://anibench.reward.integrations
        name: compute_score
        server_url: http://reward-host:8000       # or $ANIBENCH_REWARD_URL
        fps: 16                                   # when extra_info carries no "fps"
    # or several rewards, weighted
    reward:
      reward_manager: {name: MultiVisualRewardManager}
      reward_functions:
        anime_reward:
          path: pkg://anibench.reward.integrations
          name: compute_score
          weight: 1.0
          required: false
          server_url: http://reward-host:8000

    # the server, on the reward machine (token shared through the environment):
    #   ANIBENCH_REWARD_TOKEN=... anibench reward serve --host 0.0.0.0 --port 8000 --device cuda --dtype bf16

Inputs read: the prompt from ``extra_info[prompt_key]`` (default ``"prompt"``) else
``ground_truth`` when it is a string (verl-omni's convention); the frame rate from the
``fps`` keyword, else ``extra_info["fps"]``, else 16; guide image(s) from
``extra_info[guide_key]`` (default ``"guide_image"``: an array/tensor (H, W, 3)/(3, H, W),
encoded bytes, a path on this machine, or a list of them). Float videos in [0, 1] are
converted to uint8 (``round(255·x)``). ``extra_info["frame_interval"]`` is **not** applied:
the server samples frames as each scorer defines (AnimeReward: 24 of the first 144).
The token is ``$ANIBENCH_REWARD_TOKEN`` (or ``token=`` / ``token_env=``). One client (a
connection pool) per server URL is kept in this module, as verl-omni asks of reward models.

**verl** (``custom_reward_function.path/name``, ``fn(data_source, solution_str, ground_truth,
extra_info)``) is text-only; use :func:`compute_score` where the rollout is a video.

**OpenRLHF**: ``--remote_rm_url http://reward-host:8000/get_reward`` posts JSON
``{"query", "prompts", "labels"}`` and reads ``rewards``; the server's ``/get_reward`` speaks
that contract and also needs ``"videos"`` (base64 blobs; OpenRLHF's text-only queries carry
no video, so a custom experience maker or ``--remote_rm_url reward_func.py`` that calls
:class:`~anibench.reward.client.RewardClient` supplies them). It answers
``{"rewards", "scores", "extra_logs"}`` (scores = rewards, in [0, 1]). OpenRLHF's stock client
(``remote_rm_utils``) sends no ``Authorization`` header: serve it on 127.0.0.1 without a token
(same machine, or through an SSH tunnel), or put a reverse proxy in front that adds the header —
never a token in the URL (URLs are logged)::

    # same machine
    anibench reward serve --port 8000 &
    openrlhf.cli.train_ppo_ray ... --remote_rm_url http://127.0.0.1:8000/get_reward
"""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any, Mapping

import numpy as np

DEFAULT_FPS = 16.0
_clients: dict[tuple[str, str | None, float], Any] = {}
_lock = threading.Lock()


def _client(url: str, token: str | None, timeout: float, retries: int) -> Any:
    from anibench.reward.client import RewardClient

    key = (url, token, timeout)
    with _lock:
        if key not in _clients:
            _clients[key] = RewardClient(url, token, timeout=timeout, retries=retries)
        return _clients[key]


def _uint8_video(video: Any) -> Any:
    """(T, C, H, W) / (T, H, W, C) uint8 as given; float in [0, 1] → uint8; (C, H, W) is not a video."""
    shape = tuple(getattr(video, "shape", ()))
    if len(shape) != 4:
        raise ValueError(f"compute_score needs a video (T, C, H, W); got shape {shape} "
                         "(a single image cannot be scored by a video reward)")
    if not type(video).__module__.startswith("torch"):
        video = np.asarray(video)
        if video.dtype.kind == "f" and not np.isfinite(video).all():
            raise ValueError("float video values must be finite and in [0, 1]")
    return _as_uint8(video)


def _as_uint8(value: Any) -> np.ndarray:
    """A torch tensor or array as numpy uint8; floats are read as [0, 1] (clamped, ×255, rounded)."""
    if type(value).__module__.startswith("torch"):
        value = value.detach().cpu()
        if value.dtype.is_floating_point:
            value = value.float().clamp(0, 1).mul(255).round().to(dtype=__import__("torch").uint8)
        return value.numpy()
    array = np.asarray(value)
    if array.dtype.kind == "f":
        array = np.round(np.clip(array, 0, 1) * 255).astype(np.uint8)
    return array


def compute_score(data_source: Any = None, solution_image: Any = None, ground_truth: Any = None,
                  extra_info: Mapping[str, Any] | None = None, *, server_url: str | None = None,
                  token: str | None = None, token_env: str = "ANIBENCH_REWARD_TOKEN", fps: float | None = None,
                  prompt_key: str = "prompt", guide_key: str = "guide_image", timeout: float = 120.0,
                  retries: int = 3, scorers: list[str] | None = None, **kwargs: Any) -> dict[str, float]:
    """verl-omni reward function: the whole video to ``anibench reward serve``; ``{"score": reward, scorer: value}``."""
    del data_source, kwargs  # other config keys verl-omni forwards are ignored
    extra_info = dict(extra_info or {})
    url = server_url or os.environ.get("ANIBENCH_REWARD_URL")
    if not url:
        raise ValueError("compute_score needs server_url (in the reward config) or $ANIBENCH_REWARD_URL")
    token = token if token is not None else os.environ.get(token_env)
    prompt = extra_info.get(prompt_key)
    if prompt is None and isinstance(ground_truth, str):
        prompt = ground_truth
    rate = fps if fps is not None else extra_info.get("fps", DEFAULT_FPS)
    item: dict[str, Any] = {"video": _uint8_video(solution_image), "fps": float(rate), "prompt": prompt or ""}
    guides = extra_info.get(guide_key)
    if guides is not None:
        guides = guides if isinstance(guides, (list, tuple)) else [guides]
        item["guides"] = [_guide(g) for g in guides]
    response = _client(url, token, timeout, retries).score([item], scorers=scorers)
    result = response["items"][0]
    if result.get("reward") is None:
        problem = result.get("error") or next(iter(result.get("errors", {}).values()), None) or {}
        raise RuntimeError(f"anibench reward: item not scored ({problem.get('type', 'error')}: "
                           f"{problem.get('message', 'no reward')}; request {response.get('request_id')})")
    out = {"score": float(result["reward"])}
    out.update({name: float(value) for name, value in result["scores"].items() if value is not None})
    return out


def close_clients() -> None:
    """Close the connection pools :func:`compute_score` keeps (end of training, tests)."""
    with _lock:
        for client in _clients.values():
            client.close()
        _clients.clear()


async def compute_score_async(*args: Any, **kwargs: Any) -> dict[str, float]:
    """The same as :func:`compute_score`, awaitable (runs it in a worker thread)."""
    return await asyncio.to_thread(compute_score, *args, **kwargs)


def _guide(guide: Any) -> Any:
    if isinstance(guide, (bytes, bytearray, str)) or hasattr(guide, "__fspath__"):
        return guide
    return _as_uint8(guide)
