"""``anibench reward`` commands (service); registered on the ``reward`` sub-app by :func:`register`."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``anibench reward``."""

    @app.command("serve")
    def serve_command(
        host: str = typer.Option("127.0.0.1", help="address to bind; a non-loopback one needs $ANIBENCH_REWARD_TOKEN"),
        port: int = typer.Option(8000, help="TCP port"),
        scorer: Optional[List[str]] = typer.Option(
            None, "--scorer", "--scorers", "-s",
            help="scorer names or groups (name:key=value, comma lists); default: the anime-reward group"),
        reward: str = typer.Option("auto", help="the reward: auto (anime_reward.combined when served, else the mean "
                                                "of the normalised heads), a scorer name, or scorer=weight,..."),
        device: str = typer.Option("auto", help="models run on: auto, cpu, cuda[:N], npu[:N], mps"),
        dtype: str = typer.Option("auto", help="model precision: auto, fp32, bf16, fp16"),
        batch_size: int = typer.Option(16, help="inputs per model batch (never changes a score)"),
        workers: int = typer.Option(2, help="threads decoding clips and computing features"),
        max_body_mb: float = typer.Option(512.0, help="largest request body, MiB"),
        max_batch: int = typer.Option(64, help="most items per request (and per scoring batch)"),
        max_frames: int = typer.Option(1024, help="most frames per clip"),
        max_pixels: int = typer.Option(4096 * 4096, help="most pixels per frame (H*W)"),
        max_pending: int = typer.Option(64, help="requests waiting beyond this get 429"),
        allow_path: Optional[List[Path]] = typer.Option(
            None, "--allow-path", help="let JSON requests name files under this folder (repeatable; default: none)"),
        failed_reward: float = typer.Option(0.0, help="/get_reward's reward for an item that cannot be scored"),
        log_level: str = typer.Option("info", help="uvicorn log level"),
    ) -> None:
        """Serve rewards over HTTP to RL trainers (token from $ANIBENCH_REWARD_TOKEN; see anibench.reward.server)."""
        from anibench.cli.app import _runtime, _scorer_list, err
        from anibench.reward.payload import Limits
        from anibench.reward.server import ServerConfig, serve, token_from_env
        from anibench.reward.service import RewardService

        config = ServerConfig(
            host=host, port=port, token=token_from_env(),
            limits=Limits(max_body_bytes=int(max_body_mb * 1024 * 1024), max_batch=max_batch, max_frames=max_frames,
                          max_pixels=max_pixels),
            max_pending=max_pending, allowed_roots=tuple(p.resolve() for p in allow_path or ()),
            failed_reward=failed_reward,
        )
        config.check()  # before loading any model
        service = RewardService(_scorer_list(scorer), runtime=_runtime(device, dtype, batch_size), workers=workers,
                                reward=_reward_option(reward), limits=config.limits)
        for name, reason in service.skipped.items():
            err.print(f"[yellow]skipped {name}:[/yellow] {reason}", markup=True, highlight=False)
        try:
            loaded = service.warmup()  # models load now: a missing weight stops the server here, not per request
        except BaseException:
            service.close()
            raise
        if loaded:
            err.print(f"loaded model families: {', '.join(loaded)}")
        err.print(f"serving {', '.join(service.scorer_names)} on http://{host}:{port} "
                  f"({'bearer token required' if config.token else 'NO authentication: loopback only'})")
        try:
            serve(service, config, log_level=log_level)
        finally:
            service.close()


def _reward_option(value: str):
    """``auto``, a scorer name, or ``name=weight,name=weight``."""
    if "=" not in value:
        return value
    weights = {}
    for pair in value.split(","):
        name, _, weight = pair.partition("=")
        try:
            weights[name.strip()] = float(weight)
        except ValueError:
            raise typer.BadParameter(f"--reward: expected scorer=weight, got {pair!r}") from None
    return weights
