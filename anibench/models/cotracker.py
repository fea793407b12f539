"""CoTracker2 point tracking (Karaev et al. 2023), written for anibench from the published architecture.

No maintained package ships it: ``cotracker`` / ``co-tracker`` are not on PyPI (checked with
``pip install --dry-run`` against constraints/cpu.txt: "no matching distribution"); the code is
installed from its git repository or, as VBench does, fetched by ``torch.hub``. VBench-I2V's camera
motion (``vbench2_beta_i2v/camera_motion.py`` at 45e79ec) calls
``torch.hub.load("facebookresearch/co-tracker", "cotracker2")``: the repository's *main* branch at
run time (checked at 82e02e8, where ``hubconf.cotracker2`` builds ``CoTrackerPredictor(window_len=8,
v2=True)`` and loads ``cotracker2.pth``). The copy vendored in VBench (``third_party/cotracker``,
version 2.0.0) is only used for its visualiser; its CoTracker2 computes the same as main's
(the differences are formatting, an unused flag and an unused correlation block).

Architecture (the published ``cotracker2.pth``, 45.5 M parameters, 321 tensors):

* a convolutional feature encoder applied to every frame (7x7 stride-2 convolution, four pairs
  of residual blocks at strides 1, 2, 2, 2, instance normalisation without affine parameters,
  the four outputs resized bilinearly (``align_corners=True``) to 1/4 of the input, concatenated,
  3x3 and 1x1 convolutions): 128 channels at 96x128 for the 384x512 model resolution;
* a sliding window of 8 frames (step 4); in each window 6 refinement iterations: the track
  feature is correlated with a 4-level average-pooled pyramid of the feature maps, 7x7
  correlation patches are sampled around every track point, and a transformer (6 time-attention
  blocks, each followed by a space step through 64 learned virtual tracks, 8 heads of 48) reads
  [flow embedding (130), correlations (196), track feature (128), track mask and visibility (2)] +
  sampled 2-D sin-cos position embedding + time embedding (the ``pos_emb``/``time_emb`` buffers,
  loaded from the checkpoint) and returns coordinate deltas and feature updates;
* visibility logits from the last track features (not used by VBench).

Only first-frame queries are supported (VBench queries a regular grid on frame 0). For them every
attention mask of the original is all true and its additive bias is ``-0.0``, so masks are
omitted here; the track mask (false for the frames a window shares with the previous one) is an
input feature and is kept.

The predictor step (co-tracker ``predictor.py`` ``CoTrackerPredictor._compute_sparse_tracks``):
frames are resized bilinearly (``align_corners=True``) to the model resolution, grid points come
from ``get_points_on_a_grid`` (margin W/64 on both axes), the first frame's predictions are
overwritten with the query points, and tracks are scaled back by ((W-1)/(512-1), (H-1)/(384-1)).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from anibench.errors import InputError, MissingWeightsError
from anibench.models.checkpoints import read_converted, read_torch_state_dict, tensors_only, write_converted

WHAT = "CoTracker2"
CONVERTER_VERSION = "1"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
# hubconf.py / predictor.py at 82e02e8: iterations per window and the query grid's margin divisor.
ITERATIONS = 6
GRID_MARGIN_DIVISOR = 64
# Instance normalisation (nn.InstanceNorm2d) and the context LayerNorm (nn.LayerNorm) use torch's default eps;
# the blocks' own LayerNorms are built with eps 1e-6 and no affine parameters.
INSTANCE_NORM_EPS = 1e-5
BLOCK_NORM_EPS = 1e-6


@dataclass(frozen=True)
class CoTracker2Config:
    """Sizes of a CoTracker2 network; the defaults are the published ``cotracker2.pth``."""

    window_len: int = 8
    stride: int = 4
    model_resolution: tuple[int, int] = (384, 512)
    latent_dim: int = 128
    hidden_size: int = 384
    time_depth: int = 6
    space_depth: int = 6
    num_virtual_tracks: int = 64
    head_dim: int = 48
    corr_levels: int = 4
    corr_radius: int = 3
    flow_embed_dim: int = 64
    mlp_ratio: float = 4.0

    @property
    def num_heads(self) -> int:
        return self.hidden_size // self.head_dim

    @property
    def input_dim(self) -> int:
        """Transformer input: flow embedding + correlations + track feature + (track mask, visibility)."""
        flow = 2 * self.flow_embed_dim + 2
        corr = self.corr_levels * (2 * self.corr_radius + 1) ** 2
        return flow + corr + self.latent_dim + 2

    @property
    def feature_size(self) -> tuple[int, int]:
        return self.model_resolution[0] // self.stride, self.model_resolution[1] // self.stride

    def to_dict(self) -> dict:
        return {**asdict(self), "model_resolution": list(self.model_resolution)}

    @classmethod
    def from_dict(cls, raw: Mapping) -> "CoTracker2Config":
        values = dict(raw)
        values["model_resolution"] = tuple(values["model_resolution"])
        return cls(**values)


# --- building blocks --------------------------------------------------------------------------


class _ResidualBlock(nn.Module):
    """Two 3x3 convolutions with instance norm and ReLU, plus a (strided 1x1 conv + norm) shortcut."""

    def __init__(self, in_channels: int, channels: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, padding=1, stride=stride)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.downsample = None
        if stride != 1:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, channels, 1, stride=stride),
                                            nn.InstanceNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(F.instance_norm(self.conv1(x), eps=INSTANCE_NORM_EPS))
        y = F.relu(F.instance_norm(self.conv2(y), eps=INSTANCE_NORM_EPS))
        if self.downsample is not None:
            x = self.downsample(x)
        return F.relu(x + y)


def _stage(in_channels: int, channels: int, stride: int) -> nn.Sequential:
    return nn.Sequential(_ResidualBlock(in_channels, channels, stride), _ResidualBlock(channels, channels, 1))


class FeatureEncoder(nn.Module):
    """Per-frame feature maps at 1/``stride`` of the input, ``latent_dim`` channels."""

    def __init__(self, latent_dim: int, stride: int):
        super().__init__()
        self.stride = stride
        half, three_quarters = latent_dim // 2, latent_dim // 4 * 3
        self.conv1 = nn.Conv2d(3, half, 7, stride=2, padding=3)
        self.layer1 = _stage(half, half, 1)
        self.layer2 = _stage(half, three_quarters, 2)
        self.layer3 = _stage(three_quarters, latent_dim, 2)
        self.layer4 = _stage(latent_dim, latent_dim, 2)
        self.conv2 = nn.Conv2d(half + three_quarters + 2 * latent_dim, 2 * latent_dim, 3, padding=1)
        self.conv3 = nn.Conv2d(2 * latent_dim, latent_dim, 1)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        height, width = frames.shape[-2:]
        x = F.relu(F.instance_norm(self.conv1(frames), eps=INSTANCE_NORM_EPS))
        scales = []
        for stage in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = stage(x)
            scales.append(x)
        size = (height // self.stride, width // self.stride)
        resized = [F.interpolate(s, size, mode="bilinear", align_corners=True) for s in scales]
        x = F.relu(F.instance_norm(self.conv2(torch.cat(resized, dim=1)), eps=INSTANCE_NORM_EPS))
        return self.conv3(x)


class _Attention(nn.Module):
    """Multi-head attention with separate query and key/value projections (``to_q``, ``to_kv``)."""

    def __init__(self, dim: int, num_heads: int, head_dim: int):
        super().__init__()
        inner = num_heads * head_dim
        self.num_heads = num_heads
        self.scale = head_dim**-0.5
        self.to_q = nn.Linear(dim, inner)
        self.to_kv = nn.Linear(dim, 2 * inner)
        self.to_out = nn.Linear(inner, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        context = x if context is None else context
        batch, queries, channels = x.shape
        heads = self.num_heads
        q = self.to_q(x).reshape(batch, queries, heads, channels // heads).permute(0, 2, 1, 3)
        k, v = self.to_kv(context).chunk(2, dim=-1)
        keys = context.shape[1]
        k = k.reshape(batch, keys, heads, channels // heads).permute(0, 2, 1, 3)
        v = v.reshape(batch, keys, heads, channels // heads).permute(0, 2, 1, 3)
        weights = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        return self.to_out((weights @ v).transpose(1, 2).reshape(batch, queries, channels))


class _Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


def _block_norm(x: torch.Tensor) -> torch.Tensor:
    return F.layer_norm(x, x.shape[-1:], eps=BLOCK_NORM_EPS)


class _SelfAttentionBlock(nn.Module):
    def __init__(self, config: CoTracker2Config):
        super().__init__()
        self.attn = _Attention(config.hidden_size, config.num_heads, config.head_dim)
        self.mlp = _Mlp(config.hidden_size, int(config.hidden_size * config.mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(_block_norm(x))
        return x + self.mlp(_block_norm(x))


class _CrossAttentionBlock(nn.Module):
    def __init__(self, config: CoTracker2Config):
        super().__init__()
        self.norm_context = nn.LayerNorm(config.hidden_size)
        self.cross_attn = _Attention(config.hidden_size, config.num_heads, config.head_dim)
        self.mlp = _Mlp(config.hidden_size, int(config.hidden_size * config.mlp_ratio))

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        x = x + self.cross_attn(_block_norm(x), context=self.norm_context(context))
        return x + self.mlp(_block_norm(x))


class UpdateTransformer(nn.Module):
    """Tokens (B, N, S, input_dim) → (B, N, S, 2 + latent_dim): coordinate deltas and feature updates.

    Each time block attends along the window for every track (and virtual track); after block
    ``i`` with ``i % (time_depth // space_depth) == 0`` the virtual tracks attend to the points,
    to each other, and the points attend to the virtual tracks, frame by frame.
    """

    def __init__(self, config: CoTracker2Config):
        super().__init__()
        self.num_virtual_tracks = config.num_virtual_tracks
        self.input_transform = nn.Linear(config.input_dim, config.hidden_size)
        self.flow_head = nn.Linear(config.hidden_size, config.latent_dim + 2)
        self.virual_tracks = nn.Parameter(torch.zeros(1, config.num_virtual_tracks, 1, config.hidden_size))
        self.time_blocks = nn.ModuleList(_SelfAttentionBlock(config) for _ in range(config.time_depth))
        self.space_virtual_blocks = nn.ModuleList(_SelfAttentionBlock(config) for _ in range(config.space_depth))
        self.space_point2virtual_blocks = nn.ModuleList(_CrossAttentionBlock(config) for _ in range(config.space_depth))
        self.space_virtual2point_blocks = nn.ModuleList(_CrossAttentionBlock(config) for _ in range(config.space_depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.input_transform(x)
        batch, _, frames, _ = tokens.shape
        tokens = torch.cat([tokens, self.virual_tracks.repeat(batch, 1, frames, 1)], dim=1)
        count = tokens.shape[1]
        points = count - self.num_virtual_tracks
        every = len(self.time_blocks) // len(self.space_virtual_blocks)
        space_step = 0
        for i, time_block in enumerate(self.time_blocks):
            tokens = time_block(tokens.reshape(batch * count, frames, -1)).view(batch, count, frames, -1)
            if i % every:
                continue
            space = tokens.permute(0, 2, 1, 3).reshape(batch * frames, count, -1)
            point_tokens, virtual_tokens = space[:, :points], space[:, points:]
            virtual_tokens = self.space_virtual2point_blocks[space_step](virtual_tokens, point_tokens)
            virtual_tokens = self.space_virtual_blocks[space_step](virtual_tokens)
            point_tokens = self.space_point2virtual_blocks[space_step](point_tokens, virtual_tokens)
            space = torch.cat([point_tokens, virtual_tokens], dim=1)
            tokens = space.view(batch, frames, count, -1).permute(0, 2, 1, 3)
            space_step += 1
        return self.flow_head(tokens[:, :points])


# --- sampling and embeddings --------------------------------------------------------------------


def sample_bilinear(values: torch.Tensor, xy: torch.Tensor) -> torch.Tensor:
    """``grid_sample`` of (B, C, H, W) ``values`` at pixel coordinates ``xy`` (B, ..., 2), pixel centres
    at integers (``align_corners=True``), border padding: co-tracker's ``bilinear_sampler``."""
    height, width = values.shape[-2:]
    scale = torch.tensor([2 / max(width - 1, 1), 2 / max(height - 1, 1)], device=xy.device)
    grid = xy * scale
    grid -= 1
    return F.grid_sample(values, grid, align_corners=True, padding_mode="border")


def sample_trilinear(values: torch.Tensor, txy: torch.Tensor) -> torch.Tensor:
    """``grid_sample`` of (B, C, T, H, W) ``values`` at (t, x, y) points ``txy`` (B, ..., 3), same conventions
    (co-tracker ``bilinear_sampler`` on 5-D input). Sampling frame 0 this way is bitwise what the original
    computes; a 4-D sample of frame 0 differs in the last bit."""
    frames, height, width = values.shape[-3:]
    xyt = txy[..., [1, 2, 0]]
    scale = torch.tensor([2 / max(width - 1, 1), 2 / max(height - 1, 1), 2 / max(frames - 1, 1)], device=txy.device)
    grid = xyt * scale
    grid -= 1
    return F.grid_sample(values, grid, align_corners=True, padding_mode="border")


def flow_embedding(flows: torch.Tensor, channels: int) -> torch.Tensor:
    """(M, S, 2) displacements → (M, S, 2 + 2·channels): [dx, dy, sin/cos(dx·f_k) interleaved, same for dy],
    frequencies f_k = 2k·1000/channels (co-tracker ``get_2d_embedding``)."""
    frequencies = torch.arange(0, channels, 2, device=flows.device, dtype=torch.float32) * (1000.0 / channels)
    parts = [flows]
    for axis in (0, 1):
        angles = flows[..., axis : axis + 1] * frequencies
        parts.append(torch.stack([torch.sin(angles), torch.cos(angles)], dim=-1).flatten(-2))
    return torch.cat(parts, dim=-1)


def correlation_offsets(radius: int, device: torch.device) -> torch.Tensor:
    """(2r+1, 2r+1, 2) offsets; entry [i, j] = (d_i, d_j) added to (x, y) (co-tracker ``CorrBlock.sample``)."""
    steps = torch.linspace(-radius, radius, 2 * radius + 1)
    return torch.stack(torch.meshgrid(steps, steps, indexing="ij"), dim=-1).to(device)


def grid_points(size: int, model_resolution: tuple[int, int]) -> torch.Tensor:
    """(size², 2) first-frame query points (x, y) in model pixels, row-major, margin W/64 on both axes
    (co-tracker ``get_points_on_a_grid``)."""
    height, width = model_resolution
    margin = width / GRID_MARGIN_DIVISOR
    ys = torch.linspace(margin, height - margin, size)
    xs = torch.linspace(margin, width - margin, size)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([grid_x, grid_y], dim=-1).reshape(-1, 2)


# --- the tracker -----------------------------------------------------------------------------------


class CoTracker2(nn.Module):
    """CoTracker2 with the published parameter names (``fnet``, ``updateformer``, ``norm``, ...)."""

    def __init__(self, config: CoTracker2Config = CoTracker2Config()):
        super().__init__()
        self.config = config
        latent = config.latent_dim
        self.fnet = FeatureEncoder(latent, config.stride)
        self.updateformer = UpdateTransformer(config)
        feature_h, feature_w = config.feature_size
        self.register_buffer("time_emb", torch.zeros(1, config.window_len, config.input_dim))
        self.register_buffer("pos_emb", torch.zeros(1, config.input_dim, feature_h, feature_w))
        self.norm = nn.GroupNorm(1, latent)
        self.track_feat_updater = nn.Sequential(nn.Linear(latent, latent), nn.GELU())
        self.vis_predictor = nn.Sequential(nn.Linear(latent, 1))

    @property
    def min_frames(self) -> int:
        """Fewer frames run no window at all (``num_windows`` is 0) and every track stays at 0."""
        return self.config.window_len - self.config.window_len // 2 + 1

    def encode(self, video: torch.Tensor) -> torch.Tensor:
        """(T, 3, H, W) frames on the 0-255 scale → (T, C, H/stride, W/stride) feature maps."""
        return self.fnet(2 * (video / 255.0) - 1.0)

    def track(self, video: torch.Tensor, points: torch.Tensor,
              iters: int = ITERATIONS) -> tuple[torch.Tensor, torch.Tensor]:
        """Track first-frame ``points`` (N, 2, model pixels) through ``video`` (T, 3, h, w; 0-255, model resolution).

        Returns (T, N, 2) coordinates in model pixels and (T, N) visibility probabilities, as
        ``CoTracker2.forward`` (cotracker.py at 82e02e8) for queries at frame 0 and batch 1.

        The original pads the video with copies of its last frame to a whole number of windows and
        encodes every frame at once; the encoder works frame by frame, so here each window's new frames
        are encoded when the window needs them (a copy's maps are the last frame's) and maps leave
        once no later window reads them: feature maps of at most one window are held, not the clip's.
        """
        cfg = self.config
        window, step, stride = cfg.window_len, cfg.window_len // 2, cfg.stride
        frames = video.shape[0]
        count = points.shape[0]
        device = video.device
        if frames < self.min_frames:
            raise ValueError(f"{WHAT} tracks clips of at least {self.min_frames} frames, got {frames}")
        maps = _WindowMaps(self, video, window)
        start = points[None] / stride  # (1, N, 2)
        track_feat = _first_frame_features(maps.window(0), start).repeat(1, window, 1, 1)
        coords_predicted = torch.zeros(1, frames, count, 2, device=device)
        vis_predicted = torch.zeros(1, frames, count, device=device)
        coords_init = start.reshape(1, 1, count, 2).expand(1, window, count, 2).float()
        vis_init = torch.ones(1, window, count, 1, device=device) * 10
        num_windows = (frames - window + step - 1) // step + 1
        overlap = window - step
        for ind in range(0, step * num_windows, step):
            track_mask = torch.ones(1, window, count, 1, dtype=torch.bool, device=device)
            if ind > 0:
                coords_init = _extend(coords_predicted[:, ind : ind + overlap] / stride, step)
                vis_init = _extend(vis_predicted[:, ind : ind + overlap, :, None], step)
                track_mask[:, :overlap] = False
            coords, vis = self._window(maps.window(ind), coords_init, track_feat, vis_init, track_mask, iters)
            kept = min(frames - ind, window)
            coords_predicted[:, ind : ind + window] = coords[:, :kept]
            vis_predicted[:, ind : ind + window] = vis[:, :kept]
        return coords_predicted[0], torch.sigmoid(vis_predicted)[0]

    def _window(self, fmaps, coords, track_feat, vis, track_mask, iters):
        """One window: ``iters`` refinements of (1, S, N, 2) ``coords`` (feature-map units)
        → (coords·stride, visibility logits)."""
        cfg = self.config
        _, window, count, _ = coords.shape
        latent = cfg.latent_dim
        mask_and_vis = torch.cat([track_mask, vis], dim=-1).permute(0, 2, 1, 3).reshape(count, window, 2)
        pyramid = _pyramid(fmaps[0], cfg.corr_levels)
        position = sample_bilinear(self.pos_emb, coords[:, 0][:, :, None])  # (1, D, N, 1)
        position = position.permute(0, 2, 1, 3).reshape(count, cfg.input_dim).unsqueeze(1)
        offsets = correlation_offsets(cfg.corr_radius, coords.device)
        for _ in range(iters):
            coords = coords.detach()
            correlations = _sample_correlations(pyramid, track_feat[0], coords[0], offsets)  # (N, S, L·(2r+1)²)
            flows = (coords - coords[:, 0:1]).permute(0, 2, 1, 3).reshape(count, window, 2)
            features = track_feat.permute(0, 2, 1, 3).reshape(count, window, latent)
            tokens = torch.cat([flow_embedding(flows, cfg.flow_embed_dim), correlations, features, mask_and_vis], dim=2)
            tokens = tokens + position + self.time_emb
            delta = self.updateformer(tokens.view(1, count, window, -1))
            coords = coords + delta[..., :2].permute(0, 2, 1, 3)
            feature_delta = delta[..., 2:].reshape(count * window, latent)
            features = track_feat.permute(0, 2, 1, 3).reshape(count * window, latent)
            features = self.track_feat_updater(self.norm(feature_delta)) + features
            track_feat = features.reshape(1, count, window, latent).permute(0, 2, 1, 3)
        vis = self.vis_predictor(track_feat).reshape(1, window, count)
        return coords * cfg.stride, vis


class _WindowMaps:
    """Feature maps of the frames one window reads, encoded on first use; frames past the end read the
    last frame (the original's replicate padding); maps before the current window are dropped."""

    def __init__(self, model: CoTracker2, video: torch.Tensor, window: int):
        self.model, self.video, self.window_len = model, video, window
        self.maps: dict[int, torch.Tensor] = {}

    def window(self, start: int) -> torch.Tensor:
        """(1, S, C, h, w) maps of frames ``start .. start + S - 1``."""
        last = self.video.shape[0] - 1
        indices = [min(i, last) for i in range(start, start + self.window_len)]
        new = sorted(set(indices) - set(self.maps))
        if new:
            self.maps.update(zip(new, self.model.encode(self.video[new])))
        for index in [i for i in self.maps if i < start]:
            del self.maps[index]
        return torch.stack([self.maps[i] for i in indices])[None]


def _first_frame_features(fmaps: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
    """(1, 1, N, C) features of (1, T, C, h, w) ``fmaps`` at frame 0 and ``start`` (1, N, 2) (``get_track_feat``).
    The time coordinate 0 normalises to exactly -1 whatever T, so the first window's maps give the same bits
    as the original's whole padded clip."""
    count = start.shape[1]
    txy = torch.cat([torch.zeros_like(start[..., :1]), start], dim=-1)[:, None, :, None]  # (1, 1, N, 1, 3)
    sampled = sample_trilinear(fmaps.permute(0, 2, 1, 3, 4), txy)  # (1, C, 1, N, 1)
    return sampled.permute(0, 2, 3, 1, 4).reshape(1, 1, count, -1)


def _extend(values: torch.Tensor, count: int) -> torch.Tensor:
    """``values`` (1, F, ...) followed by ``count`` copies of its last frame (replicate padding in time)."""
    return torch.cat([values, values[:, -1:].expand(-1, count, *values.shape[2:])], dim=1)


def _pyramid(fmaps: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """(S, C, h, w) maps and ``levels - 1`` successive 2x2 average poolings."""
    pyramid = [fmaps]
    for _ in range(levels - 1):
        pyramid.append(F.avg_pool2d(pyramid[-1], 2, stride=2))
    return pyramid


def _sample_correlations(pyramid: list[torch.Tensor], track_feat: torch.Tensor, coords: torch.Tensor,
                         offsets: torch.Tensor) -> torch.Tensor:
    """Correlation of each track feature (S, N, C) with every map, sampled in a (2r+1)² patch around
    ``coords`` (S, N, 2) at every level (coordinates halved per level) → (N, S, levels·(2r+1)²)."""
    window, count, channels = track_feat.shape
    norm = torch.sqrt(torch.tensor(channels).float())
    side = offsets.shape[0]
    out = []
    for level, maps in enumerate(pyramid):
        height, width = maps.shape[-2:]
        correlation = torch.matmul(track_feat, maps.view(window, channels, height * width)) / norm
        centres = coords.reshape(window * count, 1, 1, 2) / 2**level
        patches = sample_bilinear(correlation.reshape(window * count, 1, height, width), centres + offsets[None])
        out.append(patches.view(window, count, side * side))
    return torch.cat(out, dim=-1).permute(1, 0, 2).contiguous().float()


# --- the predictor step VBench calls ------------------------------------------------------------------


def resize_frames(frames: torch.Tensor, model_resolution: tuple[int, int]) -> torch.Tensor:
    """(T, 3, H, W) float frames (0-255) → model resolution, bilinear, ``align_corners=True`` (no antialias)."""
    return F.interpolate(frames, tuple(model_resolution), mode="bilinear", align_corners=True)


@torch.no_grad()
def track_grid(model: CoTracker2, resized: torch.Tensor, grid_size: int, height: int, width: int) -> torch.Tensor:
    """Tracks of a ``grid_size``² first-frame grid through ``resized`` (T, 3, h, w) model-resolution frames
    (0-255) of a ``height`` x ``width`` clip → (T, grid_size², 2) float32 (x, y) in the clip's pixels.

    ``CoTrackerPredictor.forward(video, grid_size=...)`` (predictor.py at 82e02e8): no support grid,
    6 iterations, frame 0 set to the query points, coordinates scaled by (W-1)/(w-1), (H-1)/(h-1).
    """
    model_h, model_w = model.config.model_resolution
    points = grid_points(grid_size, (model_h, model_w)).to(resized.device)
    tracks, _ = model.track(resized, points)
    tracks[0] = points
    tracks = tracks * tracks.new_tensor([(width - 1) / (model_w - 1), (height - 1) / (model_h - 1)])
    return tracks.float()


# --- the published checkpoint --------------------------------------------------------------------------


def config_from_state(state: Mapping[str, torch.Tensor]) -> CoTracker2Config:
    """The sizes a CoTracker2 state dict was built with (``KeyError``/``ValueError`` when it is not one)."""
    time_emb, pos_emb = state["time_emb"], state["pos_emb"]
    hidden = state["updateformer.input_transform.weight"].shape[0]
    stride = CoTracker2Config.stride
    config = CoTracker2Config(
        window_len=int(time_emb.shape[1]),
        stride=stride,
        model_resolution=(int(pos_emb.shape[2]) * stride, int(pos_emb.shape[3]) * stride),
        latent_dim=int(state["fnet.conv3.weight"].shape[0]),
        hidden_size=int(hidden),
        time_depth=_count_blocks(state, "updateformer.time_blocks."),
        space_depth=_count_blocks(state, "updateformer.space_virtual_blocks."),
        num_virtual_tracks=int(state["updateformer.virual_tracks"].shape[1]),
        mlp_ratio=state["updateformer.time_blocks.0.mlp.fc1.weight"].shape[0] / hidden,
    )
    if config.hidden_size % config.head_dim or config.space_depth == 0:
        raise ValueError(f"hidden size {config.hidden_size} / {config.space_depth} space blocks")
    return config


def _count_blocks(state: Mapping[str, torch.Tensor], prefix: str) -> int:
    return len({key[len(prefix):].split(".")[0] for key in state if key.startswith(prefix)})


def expected_layout(config: CoTracker2Config) -> dict[str, tuple[int, ...]]:
    """Every tensor name and shape of a CoTracker2 of ``config`` (the published file's ``state_dict``)."""
    with torch.device("meta"):
        model = CoTracker2(config)
    return {key: tuple(value.shape) for key, value in model.state_dict().items()}


def read_published(path: Path) -> tuple[CoTracker2Config, dict[str, torch.Tensor]]:
    """Read and check a published ``cotracker2.pth`` (a plain state dict, or one under ``"model"``)."""
    state = read_torch_state_dict(path, WHAT)
    if "model" in state and isinstance(state["model"], Mapping):  # training checkpoints (build_cotracker.py)
        state = dict(state["model"])
    state = tensors_only(state, Path(path), WHAT)
    try:
        config = config_from_state(state)
    except (KeyError, ValueError, IndexError, ZeroDivisionError) as exc:
        raise InputError(f"not a {WHAT} checkpoint (no CoTracker2 layout: {type(exc).__name__} {exc}); "
                         "CoTracker3 and other trackers are different networks", path=path) from exc
    expected = expected_layout(config)
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [k for k in expected if k in state and tuple(state[k].shape) != expected[k]]
    if missing or unexpected or wrong:
        problems = [f"{name} {_listed(keys)}" for name, keys in
                    (("missing", missing), ("unexpected", unexpected), ("wrong shapes", wrong)) if keys]
        raise InputError(f"not a {WHAT} checkpoint: " + "; ".join(problems), path=path)
    return config, {key: state[key].float().contiguous() for key in expected}


def _listed(keys: list[str], shown: int = 5) -> str:
    return ", ".join(keys[:shown]) + (f" and {len(keys) - shown} more" if len(keys) > shown else "")


def convert_published(source: Path, target_dir: Path) -> None:
    """Manifest converter of ``cotracker2``: the checked state dict as ``model.safetensors`` + ``config.json``."""
    config, state = read_published(Path(source))
    write_converted(target_dir, state, {"architecture": WHAT, **config.to_dict()})


convert_published.version = CONVERTER_VERSION


def load_cotracker2(folder: Path, device: str | torch.device = "cpu") -> CoTracker2:
    """The converted model (``convert_published``'s folder) in float32, eval mode, on ``device``.

    CoTracker2 always runs in float32, as VBench runs it (no autocast in camera_motion.py):
    coordinates of hundreds of pixels refined by small deltas do not survive bfloat16.
    """
    folder = Path(folder)
    raw, state = read_converted(folder, WHAT, "cotracker2")
    try:
        config = CoTracker2Config.from_dict({k: v for k, v in raw.items() if k != "architecture"})
    except (ValueError, TypeError, KeyError) as exc:
        raise MissingWeightsError(f"{folder / CONFIG_FILE} describes no {WHAT} ({type(exc).__name__}: {exc}); "
                                  "re-import the published file with `anibench weights import cotracker2 "
                                  "cotracker2.pth`", path=folder) from exc
    model = CoTracker2(config)
    model.load_state_dict(state, strict=True)
    return model.to(device).eval()
