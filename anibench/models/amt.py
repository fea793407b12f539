"""AMT-S frame interpolation (Li et al., CVPR 2023), as VBench's motion smoothness runs it.

No maintained package ships AMT, so the network is written here from its description and
VBench's copy of the reference code (Vchitect/VBench at 45e79ec,
``vbench/third_party/amt/``; paths below are relative to it). Module and parameter names
follow the keys of the published ``amt-s.pth`` (``networks/AMT-S.py`` with
``cfgs/AMT-S.yaml``: ``corr_radius 3, corr_lvls 4, num_flows 3``, pyramid channels
``[20, 32, 44, 56]``, skip channels 20), so the converter only unwraps, checks and
re-saves the tensors. 213 tensors, 2,990,543 parameters.

The network, for two frames ``I0, I1`` in [0, 1] and the time ``t = 1/2``:

1. both frames minus their joint mean (one value per pair, ``AMT-S.py`` L75-77);
2. a RAFT-style feature encoder (``blocks/feat_enc.py`` ``SmallEncoder``: 7x7 stem, three
   pairs of bottleneck blocks with instance norm, 84 channels at 1/8 resolution) and a
   bidirectional all-pairs correlation pyramid of 4 levels (``blocks/raft.py``
   ``BidirCorrBlock``: ``<f0, f1> / sqrt(84)``, average-pooled by 2 per level);
3. a 4-level convolutional pyramid per frame (``blocks/ifrnet.py`` ``Encoder``: stride-2
   3x3 conv + PReLU, then 3x3 conv + PReLU; 20, 32, 44, 56 channels);
4. coarse-to-fine decoders (``InitDecoder`` at 1/16 → 1/8, ``IntermediateDecoder`` 1/8 → 1/4
   → 1/2) that predict the flows ``t→0``, ``t→1`` and an intermediate feature; after each
   of the first three, an update block (``blocks/raft.py`` ``SmallUpdateBlock``) reads the
   correlation pyramid at ``x + F_{t→1}/t`` and ``x + F_{t→0}/(1−t)`` (radius 3, at 1/8
   resolution) and corrects flows and feature;
5. a multi-flow decoder (``blocks/multi_flow.py``) gives 3 flow pairs, occlusion masks and
   residuals at full resolution; each pair warps ``I0`` and ``I1`` (bilinear, border
   padding), blends them by the mask, adds mean and residual, and a small convolution over
   the 3 candidates corrects their average (``multi_flow_combine``); the result is clamped
   to [0, 1].

A ``scale_factor`` below 1 runs steps 2-5 on bilinearly downscaled frames and upsamples the
final flows, masks and residuals (``AMT-S.py`` L78-79 and L133-137): VBench's memory rule
for large frames on a GPU (see :func:`vbench_scale`).

Batches: VBench interpolates one pair per call; every step here is per sample (the mean,
instance norm, correlation), so a batch of pairs gives the same frames.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from anibench.errors import InputError, MissingWeightsError

WHAT = "AMT-S"
CONVERTER_VERSION = "1"
CONVERTED_FILE = "amt_s.safetensors"

# cfgs/AMT-S.yaml (network.params) and networks/AMT-S.py defaults.
CORR_RADIUS = 3
CORR_LEVELS = 4
NUM_FLOWS = 3
PYRAMID_CHANNELS = (20, 32, 44, 56)
SKIP_CHANNELS = 20
CORR_FEATURES = 84  # SmallEncoder(output_dim=84)
# SmallUpdateBlock(cdim, hidden_dim=76, flow_dim=20, corr_dim=64, fc_dim=68), AMT-S.py L54-57.
UPDATE_HIDDEN, UPDATE_FLOW, UPDATE_CORR, UPDATE_FC = 76, 20, 64, 68
LEAKY_SLOPE = 0.1
# VBench interpolates the frame halfway between its inputs (motion_smoothness.py L107: embt = 1/2).
MIDDLE = 0.5


# --- building blocks -----------------------------------------------------------------------


def resize(x: torch.Tensor, scale_factor: float) -> torch.Tensor:
    """Bilinear resize by a factor, ``align_corners=False`` (the factor itself maps coordinates)."""
    return F.interpolate(x, scale_factor=scale_factor, mode="bilinear", align_corners=False)


def warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Backward warp: ``out(q) = image(q + flow(q))``, bilinear, border replicated (utils/flow_utils.py L8-16).

    The sampling grid is built in normalised coordinates exactly as AMT does
    (``linspace(-1, 1)`` plus the flow divided by ``(size − 1)/2``, ``align_corners=True``).
    """
    batch, _, height, width = flow.shape
    xs = torch.linspace(-1.0, 1.0, width).view(1, 1, 1, width).expand(batch, -1, height, -1)
    ys = torch.linspace(-1.0, 1.0, height).view(1, 1, height, 1).expand(batch, -1, -1, width)
    grid = torch.cat([xs, ys], 1).to(image)
    normalised_flow = torch.cat([flow[:, 0:1] / ((width - 1.0) / 2.0), flow[:, 1:2] / ((height - 1.0) / 2.0)], 1)
    return F.grid_sample(image, (grid + normalised_flow).permute(0, 2, 3, 1), mode="bilinear",
                         padding_mode="border", align_corners=True)


def pixel_grid(batch: int, height: int, width: int, device: torch.device) -> torch.Tensor:
    """(batch, 2, height, width) float pixel coordinates, channel 0 = x (column), 1 = y (row)."""
    rows, cols = torch.meshgrid(torch.arange(height, device=device), torch.arange(width, device=device), indexing="ij")
    return torch.stack([cols, rows], dim=0).float()[None].repeat(batch, 1, 1, 1)


def conv_prelu(in_channels: int, out_channels: int, kernel: int = 3, stride: int = 1,
               padding: int = 1) -> nn.Sequential:
    """Convolution followed by a per-channel PReLU (``convrelu`` in blocks/ifrnet.py)."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel, stride, padding), nn.PReLU(out_channels))


class SideResidualBlock(nn.Module):
    """Residual block whose last ``side`` channels get extra convolutions (``ResBlock``, blocks/ifrnet.py)."""

    def __init__(self, channels: int, side: int):
        super().__init__()
        self.side = side
        self.conv1 = conv_prelu(channels, channels)
        self.conv2 = conv_prelu(side, side)
        self.conv3 = conv_prelu(channels, channels)
        self.conv4 = conv_prelu(side, side)
        self.conv5 = nn.Conv2d(channels, channels, 3, 1, 1)
        self.prelu = nn.PReLU(channels)

    def _refine_side(self, x: torch.Tensor, side_conv: nn.Module) -> torch.Tensor:
        return torch.cat([x[:, : -self.side], side_conv(x[:, -self.side :])], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv3(self._refine_side(self.conv1(x), self.conv2))
        out = self.conv5(self._refine_side(out, self.conv4))
        return self.prelu(x + out)


class PyramidEncoder(nn.Module):
    """Four stride-2 stages (``Encoder``, blocks/ifrnet.py): features at 1/2, 1/4, 1/8, 1/16."""

    def __init__(self, channels: tuple[int, ...] = PYRAMID_CHANNELS):
        super().__init__()
        previous = 3
        for level, width in enumerate(channels, 1):
            stage = nn.Sequential(conv_prelu(previous, width, 3, 2, 1), conv_prelu(width, width))
            self.add_module(f"pyramid{level}", stage)
            previous = width
        self.levels = len(channels)

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for level in range(1, self.levels + 1):
            image = getattr(self, f"pyramid{level}")(image)
            features.append(image)
        return features


class BottleneckBlock(nn.Module):
    """1x1 → 3x3 (stride) → 1x1 with instance norm and ReLU, plus a shortcut (blocks/feat_enc.py)."""

    def __init__(self, in_channels: int, channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels // 4, 1, padding=0)
        self.conv2 = nn.Conv2d(channels // 4, channels // 4, 3, padding=1, stride=stride)
        self.conv3 = nn.Conv2d(channels // 4, channels, 1, padding=0)
        self.norm1 = nn.InstanceNorm2d(channels // 4)
        self.norm2 = nn.InstanceNorm2d(channels // 4)
        self.norm3 = nn.InstanceNorm2d(channels)
        self.relu = nn.ReLU()
        self.downsample = None
        if stride != 1:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, channels, 1, stride=stride),
                                            nn.InstanceNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.norm1(self.conv1(x)))
        y = self.relu(self.norm2(self.conv2(y)))
        y = self.relu(self.norm3(self.conv3(y)))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(shortcut + y)


class CorrelationEncoder(nn.Module):
    """Features for the correlation volume at 1/8 resolution (``SmallEncoder``, instance norm, blocks/feat_enc.py)."""

    def __init__(self, output_dim: int = CORR_FEATURES):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, kernel_size=7, stride=2, padding=3)
        self.norm1 = nn.InstanceNorm2d(32)
        self.relu1 = nn.ReLU()
        self.layer1 = nn.Sequential(BottleneckBlock(32, 32, 1), BottleneckBlock(32, 32, 1))
        self.layer2 = nn.Sequential(BottleneckBlock(32, 64, 2), BottleneckBlock(64, 64, 1))
        self.layer3 = nn.Sequential(BottleneckBlock(64, 96, 2), BottleneckBlock(96, 96, 1))
        self.conv2 = nn.Conv2d(96, output_dim, kernel_size=1)

    def forward(self, image0: torch.Tensor, image1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([image0, image1], dim=0)  # one pass for both frames; instance norm keeps them apart
        x = self.relu1(self.norm1(self.conv1(x)))
        x = self.conv2(self.layer3(self.layer2(self.layer1(x))))
        return x[: image0.shape[0]], x[image0.shape[0] :]


class CorrelationPyramid:
    """All-pairs correlation of two feature maps, both ways, average-pooled into ``levels`` levels.

    ``BidirCorrBlock`` (blocks/raft.py L142-207): ``C[p, q] = <f0(p), f1(q)> / sqrt(D)``; for each
    pixel ``p`` of map 0 a 2-D map over map 1 (and the transpose for map 1's pixels), pooled by 2
    per level. :meth:`lookup` samples a (2r+1)² window around given points at every level.
    """

    def __init__(self, features0: torch.Tensor, features1: torch.Tensor, levels: int, radius: int):
        self.levels, self.radius = levels, radius
        batch, dim, height, width = features0.shape
        corr = torch.matmul(features0.view(batch, dim, height * width).transpose(1, 2),
                            features1.view(batch, dim, height * width))
        corr = corr.view(batch, height, width, 1, height, width) / torch.sqrt(torch.tensor(dim).float())
        forward_maps = corr.reshape(batch * height * width, 1, height, width)
        backward_maps = corr.permute(0, 4, 5, 3, 1, 2).reshape(batch * height * width, 1, height, width)
        self.forward_pyramid, self.backward_pyramid = [forward_maps], [backward_maps]
        for _ in range(levels - 1):
            forward_maps = F.avg_pool2d(forward_maps, 2, stride=2)
            backward_maps = F.avg_pool2d(backward_maps, 2, stride=2)
            self.forward_pyramid.append(forward_maps)
            self.backward_pyramid.append(backward_maps)

    @staticmethod
    def _sample(maps: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """``grid_sample`` at pixel coordinates (x, y), ``align_corners=True``, zeros outside (raft.py L10-24)."""
        height, width = maps.shape[-2:]
        x, y = points.split([1, 1], dim=-1)
        grid = torch.cat([2 * x / (width - 1) - 1, 2 * y / (height - 1) - 1], dim=-1)
        return F.grid_sample(maps, grid, align_corners=True)

    def lookup(self, points0: torch.Tensor, points1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Windows around ``points0`` (B, 2, H, W) in the forward maps and ``points1`` in the backward maps.

        Returns two (B, levels·(2r+1)², H, W) tensors. As in the reference, the window offset
        along its first axis is added to x and along its second to y.
        """
        r = self.radius
        points0 = points0.permute(0, 2, 3, 1)
        points1 = points1.permute(0, 2, 3, 1)
        batch, height, width, _ = points0.shape
        offsets = torch.linspace(-r, r, 2 * r + 1, device=points0.device)
        window = torch.stack(torch.meshgrid(offsets, offsets, indexing="ij"), dim=-1).view(1, 2 * r + 1, 2 * r + 1, 2)
        forward_out, backward_out = [], []
        for level in range(self.levels):
            centre0 = points0.reshape(batch * height * width, 1, 1, 2) / 2**level
            centre1 = points1.reshape(batch * height * width, 1, 1, 2) / 2**level
            forward_windows = self._sample(self.forward_pyramid[level], centre0 + window)
            backward_windows = self._sample(self.backward_pyramid[level], centre1 + window)
            forward_out.append(forward_windows.view(batch, height, width, -1))
            backward_out.append(backward_windows.view(batch, height, width, -1))
        return (torch.cat(forward_out, dim=-1).permute(0, 3, 1, 2).contiguous().float(),
                torch.cat(backward_out, dim=-1).permute(0, 3, 1, 2).contiguous().float())


class UpdateBlock(nn.Module):
    """Flow and feature correction from correlation windows (``SmallUpdateBlock``, blocks/raft.py L35-85).

    With ``scale_factor`` s, the feature is read at 1/s of its resolution (the correlation's)
    and the corrections are upsampled by s (flows also multiplied by s).
    """

    def __init__(self, feature_channels: int, scale_factor: int | None = None,
                 levels: int = CORR_LEVELS, radius: int = CORR_RADIUS):
        super().__init__()
        corr_planes = levels * (2 * radius + 1) ** 2
        self.scale_factor = scale_factor
        self.convc1 = nn.Conv2d(2 * corr_planes, UPDATE_CORR, 1, padding=0)
        self.convf1 = nn.Conv2d(4, UPDATE_FLOW * 2, 7, padding=3)
        self.convf2 = nn.Conv2d(UPDATE_FLOW * 2, UPDATE_FLOW, 3, padding=1)
        self.conv = nn.Conv2d(UPDATE_CORR + UPDATE_FLOW, UPDATE_FC, 3, padding=1)
        self.gru = self._two_convs(UPDATE_FC + 4 + feature_channels, UPDATE_HIDDEN)
        self.feat_head = self._two_convs(UPDATE_HIDDEN, feature_channels)
        self.flow_head = self._two_convs(UPDATE_HIDDEN, 4)
        self.lrelu = nn.LeakyReLU(negative_slope=LEAKY_SLOPE)

    @staticmethod
    def _two_convs(in_channels: int, out_channels: int) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(in_channels, UPDATE_HIDDEN, 3, padding=1),
                             nn.LeakyReLU(negative_slope=LEAKY_SLOPE),
                             nn.Conv2d(UPDATE_HIDDEN, out_channels, 3, padding=1))

    def forward(self, feature: torch.Tensor, flow: torch.Tensor,
                corr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.scale_factor is not None:
            feature = resize(feature, 1 / self.scale_factor)
        corr_code = self.lrelu(self.convc1(corr))
        flow_code = self.lrelu(self.convf2(self.lrelu(self.convf1(flow))))
        motion = self.lrelu(self.conv(torch.cat([corr_code, flow_code], dim=1)))
        hidden = self.gru(torch.cat([motion, flow, feature], dim=1))
        delta_feature, delta_flow = self.feat_head(hidden), self.flow_head(hidden)
        if self.scale_factor is not None:
            delta_feature = resize(delta_feature, scale_factor=self.scale_factor)
            delta_flow = self.scale_factor * resize(delta_flow, scale_factor=self.scale_factor)
        return delta_feature, delta_flow


class InitDecoder(nn.Module):
    """1/16 → 1/8: flows t→0, t→1 and the intermediate feature from both frames' coarsest features and t."""

    def __init__(self, in_channels: int, out_channels: int, skip_channels: int):
        super().__init__()
        self.convblock = nn.Sequential(
            conv_prelu(in_channels * 2 + 1, in_channels * 2),
            SideResidualBlock(in_channels * 2, skip_channels),
            nn.ConvTranspose2d(in_channels * 2, out_channels + 4, 4, 2, 1),
        )

    def forward(self, f0: torch.Tensor, f1: torch.Tensor, embt: torch.Tensor):
        time = embt.repeat(1, 1, *f0.shape[2:])
        out = self.convblock(torch.cat([f0, f1, time], 1))
        flow0, flow1 = torch.chunk(out[:, :4], 2, 1)
        return flow0, flow1, out[:, 4:]


class IntermediateDecoder(nn.Module):
    """One level finer: warp both frames' features by the current flows, predict residual flows and feature."""

    def __init__(self, in_channels: int, out_channels: int, skip_channels: int):
        super().__init__()
        self.convblock = nn.Sequential(
            conv_prelu(in_channels * 3 + 4, in_channels * 3),
            SideResidualBlock(in_channels * 3, skip_channels),
            nn.ConvTranspose2d(in_channels * 3, out_channels + 4, 4, 2, 1),
        )

    def forward(self, feature, f0, f1, flow0, flow1):
        out = self.convblock(torch.cat([feature, warp(f0, flow0), warp(f1, flow1), flow0, flow1], 1))
        delta0, delta1 = torch.chunk(out[:, :4], 2, 1)
        flow0 = delta0 + 2.0 * resize(flow0, scale_factor=2.0)
        flow1 = delta1 + 2.0 * resize(flow1, scale_factor=2.0)
        return flow0, flow1, out[:, 4:]


class MultiFlowDecoder(nn.Module):
    """1/2 → 1: ``num_flows`` flow pairs, blending masks (sigmoid) and RGB residuals (blocks/multi_flow.py)."""

    def __init__(self, in_channels: int, skip_channels: int, num_flows: int = NUM_FLOWS):
        super().__init__()
        self.num_flows = num_flows
        self.convblock = nn.Sequential(
            conv_prelu(in_channels * 3 + 4, in_channels * 3),
            SideResidualBlock(in_channels * 3, skip_channels),
            nn.ConvTranspose2d(in_channels * 3, 8 * num_flows, 4, 2, 1),
        )

    def forward(self, feature, f0, f1, flow0, flow1):
        n = self.num_flows
        out = self.convblock(torch.cat([feature, warp(f0, flow0), warp(f1, flow1), flow0, flow1], 1))
        delta0, delta1, mask, residual = torch.split(out, [2 * n, 2 * n, n, 3 * n], 1)
        flow0 = delta0 + 2.0 * resize(flow0, scale_factor=2.0).repeat(1, n, 1, 1)
        flow1 = delta1 + 2.0 * resize(flow1, scale_factor=2.0).repeat(1, n, 1, 1)
        return flow0, flow1, torch.sigmoid(mask), residual


def combine_candidates(comb_block: nn.Module, image0, image1, flow0, flow1, mask, residual, mean) -> torch.Tensor:
    """``multi_flow_combine`` (blocks/multi_flow.py L8-42): per flow pair, ``m·warp(I0) + (1−m)·warp(I1) + mean +
    residual``; the frame is the candidates' average plus ``comb_block`` of all candidates."""
    batch, channels, height, width = flow0.shape
    n = channels // 2
    flow0 = flow0.reshape(batch, n, 2, height, width).reshape(-1, 2, height, width)
    flow1 = flow1.reshape(batch, n, 2, height, width).reshape(-1, 2, height, width)
    mask = mask.reshape(batch, n, 1, height, width).reshape(-1, 1, height, width)
    residual = residual.reshape(batch, n, 3, height, width).reshape(-1, 3, height, width)
    image0 = torch.stack([image0] * n, 1).reshape(-1, 3, height, width)
    image1 = torch.stack([image1] * n, 1).reshape(-1, 3, height, width)
    mean = torch.stack([mean] * n, 1).reshape(-1, 1, 1, 1)
    candidates = mask * warp(image0, flow0) + (1 - mask) * warp(image1, flow1) + mean + residual
    candidates = candidates.reshape(batch, n, 3, height, width)
    return candidates.mean(1) + comb_block(candidates.view(batch, -1, height, width))


class AMTS(nn.Module):
    """AMT-S (``networks/AMT-S.py`` ``Model`` with ``cfgs/AMT-S.yaml``); :meth:`forward` returns the middle frame."""

    def __init__(self, corr_radius: int = CORR_RADIUS, corr_levels: int = CORR_LEVELS, num_flows: int = NUM_FLOWS,
                 channels: tuple[int, ...] = PYRAMID_CHANNELS, skip_channels: int = SKIP_CHANNELS):
        super().__init__()
        self.radius, self.corr_levels = corr_radius, corr_levels
        self.feat_encoder = CorrelationEncoder(CORR_FEATURES)
        self.encoder = PyramidEncoder(channels)
        self.decoder4 = InitDecoder(channels[3], channels[2], skip_channels)
        self.decoder3 = IntermediateDecoder(channels[2], channels[1], skip_channels)
        self.decoder2 = IntermediateDecoder(channels[1], channels[0], skip_channels)
        self.decoder1 = MultiFlowDecoder(channels[0], skip_channels, num_flows)
        self.update4 = UpdateBlock(channels[2], None, corr_levels, corr_radius)
        self.update3 = UpdateBlock(channels[1], 2, corr_levels, corr_radius)
        self.update2 = UpdateBlock(channels[0], 4, corr_levels, corr_radius)
        self.comb_block = nn.Sequential(nn.Conv2d(3 * num_flows, 6 * num_flows, 3, 1, 1), nn.PReLU(6 * num_flows),
                                        nn.Conv2d(6 * num_flows, 3, 3, 1, 1))

    @staticmethod
    def _correlation_at_flows(pyramid: CorrelationPyramid, grid, flow0, flow1, embt, downsample: int):
        """Correlation windows where the flows t→1 and t→0, rescaled to 0→1 and 1→0 (linear motion), point."""
        to_one, to_zero = 1.0 / embt, 1.0 / (1.0 - embt)
        if downsample != 1:
            inverse = 1 / downsample
            flow0 = inverse * resize(flow0, scale_factor=inverse)
            flow1 = inverse * resize(flow1, scale_factor=inverse)
        corr0, corr1 = pyramid.lookup(grid + flow1 * to_one, grid + flow0 * to_zero)
        return torch.cat([corr0, corr1], dim=1), torch.cat([flow0, flow1], dim=1)

    @staticmethod
    def _update_step(update: UpdateBlock, feature, flow0, flow1, corr, flows):
        delta_feature, delta_flow = update(feature, flows, corr)
        delta0, delta1 = torch.chunk(delta_flow, 2, 1)
        return feature + delta_feature, flow0 + delta0, flow1 + delta1

    def forward(self, image0: torch.Tensor, image1: torch.Tensor, embt: torch.Tensor | float = MIDDLE,
                scale_factor: float = 1.0) -> torch.Tensor:
        """The frame at time ``embt`` between ``image0`` and ``image1``: (B, 3, H, W) in [0, 1], H and W multiples
        of 16/scale."""
        batch = image0.shape[0]
        if not torch.is_tensor(embt):
            embt = torch.full((batch, 1, 1, 1), float(embt), dtype=image0.dtype, device=image0.device)
        mean = torch.cat([image0, image1], 2).mean(1, keepdim=True).mean(2, keepdim=True).mean(3, keepdim=True)
        image0, image1 = image0 - mean, image1 - mean
        small0 = resize(image0, scale_factor) if scale_factor != 1.0 else image0
        small1 = resize(image1, scale_factor) if scale_factor != 1.0 else image1
        height, width = small0.shape[-2:]
        grid = pixel_grid(batch, height // 8, width // 8, image0.device)

        pyramid = CorrelationPyramid(*self.feat_encoder(small0, small1), levels=self.corr_levels, radius=self.radius)
        f0_1, f0_2, f0_3, f0_4 = self.encoder(small0)
        f1_1, f1_2, f1_3, f1_4 = self.encoder(small1)

        flow0, flow1, feature = self.decoder4(f0_4, f1_4, embt)
        corr, flows = self._correlation_at_flows(pyramid, grid, flow0, flow1, embt, 1)
        feature, flow0, flow1 = self._update_step(self.update4, feature, flow0, flow1, corr, flows)

        flow0, flow1, feature = self.decoder3(feature, f0_3, f1_3, flow0, flow1)
        corr, flows = self._correlation_at_flows(pyramid, grid, flow0, flow1, embt, 2)
        feature, flow0, flow1 = self._update_step(self.update3, feature, flow0, flow1, corr, flows)

        flow0, flow1, feature = self.decoder2(feature, f0_2, f1_2, flow0, flow1)
        corr, flows = self._correlation_at_flows(pyramid, grid, flow0, flow1, embt, 4)
        feature, flow0, flow1 = self._update_step(self.update2, feature, flow0, flow1, corr, flows)

        flow0, flow1, mask, residual = self.decoder1(feature, f0_1, f1_1, flow0, flow1)
        if scale_factor != 1.0:
            flow0 = resize(flow0, scale_factor=(1.0 / scale_factor)) * (1.0 / scale_factor)
            flow1 = resize(flow1, scale_factor=(1.0 / scale_factor)) * (1.0 / scale_factor)
            mask = resize(mask, scale_factor=(1.0 / scale_factor))
            residual = resize(residual, scale_factor=(1.0 / scale_factor))
        middle = combine_candidates(self.comb_block, image0, image1, flow0, flow1, mask, residual, mean)
        return torch.clamp(middle, 0, 1)


# --- VBench's input handling ----------------------------------------------------------------


@dataclass(frozen=True)
class Geometry:
    """How VBench feeds frames of ``height`` x ``width`` to AMT-S (motion_smoothness.py L124-133).

    ``scale``: the network's internal scale factor; ``divisor = int(16 / scale)``; frames are
    replicate-padded to multiples of it, ``pad = (left, right, top, bottom)`` (``InputPadder``,
    utils/utils.py L54-77).
    """

    height: int
    width: int
    scale: float
    divisor: int
    pad: tuple[int, int, int, int]

    @property
    def padded_size(self) -> tuple[int, int]:
        return self.height + self.pad[2] + self.pad[3], self.width + self.pad[0] + self.pad[1]

    @property
    def network_size(self) -> tuple[int, int]:
        """The size the network's pyramids work at: the padded frame times ``scale``."""
        height, width = self.padded_size
        return int(math.floor(height * self.scale)), int(math.floor(width * self.scale))

    def check(self) -> None:
        """Refuse frames whose coarsest correlation level would be 1 pixel: below 128 px (network size) the
        reference lookup divides by ``width − 1 = 0`` and AMT-S returns NaN, which VBench turns into a
        meaningless number (``NaN.astype(uint8)``); anibench raises instead."""
        if min(self.network_size) < MIN_NETWORK_SIDE:
            raise InputError(
                f"frames of {self.width}x{self.height} are too small for AMT-S: after VBench's padding the network "
                f"sees {self.network_size[1]}x{self.network_size[0]}, and below {MIN_NETWORK_SIDE} px a side its "
                "coarsest correlation level is 1 px (the reference divides by zero and interpolates NaN)")


# 128 / 8 (correlation features) / 2**3 (three pooled levels) = 2 px at the coarsest level.
MIN_NETWORK_SIDE = 128
# motion_smoothness.py L94-105: the anchors of the VRAM rule on CUDA.
CUDA_ANCHOR_RESOLUTION = 1024 * 512
CUDA_ANCHOR_MEMORY = 1500 * 1024**2
CUDA_ANCHOR_MEMORY_BIAS = 2500 * 1024**2


def vbench_scale(height: int, width: int, vram_bytes: int | None = None) -> float:
    """AMT-S's internal scale as VBench computes it (motion_smoothness.py L93-128).

    ``vram_bytes=None`` is VBench's CPU rule (anchor 8192², memory terms 1): the scale is 1 for
    every frame up to 67 megapixels. With a GPU's *total* memory in bytes (VBench reads
    ``torch.cuda.get_device_properties().total_memory``), the CUDA rule:
    ``s = 1024·512/(H·W) · sqrt((vram − 2500 MiB)/1500 MiB)``, capped at 1, then
    ``scale = 16 / floor(16/sqrt(s))`` — 1 unless ``s ≤ (16/17)²``.
    """
    if vram_bytes is None:
        anchor_resolution, anchor_memory, bias, vram = 8192 * 8192, 1, 0, 1
    else:
        anchor_resolution, anchor_memory, bias, vram = (CUDA_ANCHOR_RESOLUTION, CUDA_ANCHOR_MEMORY,
                                                        CUDA_ANCHOR_MEMORY_BIAS, int(vram_bytes))
        if vram <= bias:
            raise InputError(f"vram_bytes {vram} is not above VBench's 2500 MiB bias")
    scale = anchor_resolution / (height * width) * np.sqrt((vram - bias) / anchor_memory)
    scale = 1 if scale > 1 else scale
    return float(1 / np.floor(1 / np.sqrt(scale) * 16) * 16)


def vbench_geometry(height: int, width: int, vram_bytes: int | None = None) -> Geometry:
    """Scale, padding divisor and padding for frames of ``height`` x ``width`` (see :class:`Geometry`)."""
    scale = vbench_scale(height, width, vram_bytes)
    divisor = int(16 / scale)
    pad_height = (((height // divisor) + 1) * divisor - height) % divisor
    pad_width = (((width // divisor) + 1) * divisor - width) % divisor
    pad = (pad_width // 2, pad_width - pad_width // 2, pad_height // 2, pad_height - pad_height // 2)
    return Geometry(height, width, scale, divisor, pad)


def frames_to_input(frames: np.ndarray | torch.Tensor, geometry: Geometry, device=None,
                    dtype=torch.float32) -> torch.Tensor:
    """(N, H, W, 3) uint8 RGB → (N, 3, H', W') in [0, 1], replicate-padded (``img2tensor``, ``InputPadder.pad``)."""
    tensor = torch.as_tensor(np.asarray(frames) if not torch.is_tensor(frames) else frames)
    if tensor.ndim != 4 or tensor.shape[-1] != 3 or tensor.dtype != torch.uint8:
        raise InputError(f"AMT-S needs (N, H, W, 3) uint8 RGB frames, got {tuple(tensor.shape)} {tensor.dtype}")
    images = tensor.to(device).permute(0, 3, 1, 2) / 255.0
    if any(geometry.pad):
        images = F.pad(images, list(geometry.pad), mode="replicate")
    return images.to(dtype)


def output_to_uint8(images: torch.Tensor, geometry: Geometry) -> torch.Tensor:
    """Unpad, then ``(x·255).clip(0, 255).astype(uint8)``: truncation, not rounding (``tensor2img``, utils.py L86-89).

    Returns (N, H, W, 3) uint8 on the CPU.
    """
    left, right, top, bottom = geometry.pad
    height, width = images.shape[-2:]
    images = images[..., top : height - bottom, left : width - right]
    return (images.float() * 255.0).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu()


def mean_abs_diff(originals: torch.Tensor, predicted: torch.Tensor) -> list[float]:
    """Per frame ``mean |original − predicted|`` over pixels and channels, float64 (``cv2.absdiff`` + ``np.mean``)."""
    diff = (originals.to(torch.int16) - predicted.to(torch.int16)).abs()
    return [float(row) for row in diff.reshape(diff.shape[0], -1).double().mean(dim=1)]


def interpolation_errors(model: AMTS, before: np.ndarray, after: np.ndarray, middle: np.ndarray,
                         geometry: Geometry | None = None, device=None, dtype=torch.float32) -> list[float]:
    """For pairs of frames around an odd frame: ``mean |middle − AMT-S(before, after)|`` per pair.

    ``before``, ``after``, ``middle``: (N, H, W, 3) uint8 RGB (frames 2k, 2k+2 and 2k+1).
    """
    geometry = geometry or vbench_geometry(before.shape[1], before.shape[2])
    device = device or next(model.parameters()).device
    with torch.inference_mode():
        image0 = frames_to_input(before, geometry, device, dtype)
        image1 = frames_to_input(after, geometry, device, dtype)
        predicted = model(image0, image1, MIDDLE, scale_factor=geometry.scale)
    return mean_abs_diff(torch.as_tensor(np.asarray(middle)), output_to_uint8(predicted, geometry))


# --- the formula ------------------------------------------------------------------------------


def motion_smoothness_value(errors: list[float] | np.ndarray) -> float:
    """VBench's per-video value ``(255 − mean_k e_k)/255`` over the interpolated frames
    (motion_smoothness.py L151-162)."""
    errors = np.asarray(errors, dtype=np.float64)
    if errors.size == 0:
        raise ValueError("no interpolated frame: motion smoothness needs at least 3 frames")
    return float((255.0 - np.mean(errors)) / 255.0)


# --- the published checkpoint ------------------------------------------------------------------


def _checkpoint_tools():
    """The shared checkpoint checks (:mod:`anibench.models.checkpoints`, which imports transformers and
    through it torchvision: made importable on CPU torch first)."""
    from anibench.runtime.torchvision_compat import ensure_torchvision

    ensure_torchvision()
    from anibench.models import checkpoints

    return checkpoints


def expected_layout() -> dict[str, tuple[int, ...]]:
    """Keys and shapes of AMT-S's state dict (= ``amt-s.pth['state_dict']``)."""
    with torch.device("meta"):
        model = AMTS()
    return {key: tuple(value.shape) for key, value in model.state_dict().items()}


def read_published(path: Path) -> dict[str, torch.Tensor]:
    """The AMT-S tensors of a published ``amt-s.pth``, read with ``torch.load(weights_only=True)``.

    The file is AMT's training checkpoint: a dict whose ``state_dict`` holds the network
    (trainers/base_trainer.py L219-227 also writes ``epoch`` and ``optim``; the published file,
    12 MB for 3.0 M float32 parameters, keeps only what VBench reads). Plain containers, ints and
    tensors need no allow-listing for ``weights_only=True``. Anything else — no ``state_dict``,
    other keys or shapes (AMT-L, AMT-G, IFRNet) — is an :class:`InputError` naming the file.
    """
    tools = _checkpoint_tools()
    path = Path(path)
    loaded = tools.read_torch_state_dict(path, WHAT)
    if "state_dict" not in loaded or not isinstance(loaded["state_dict"], Mapping):
        keys = ", ".join(sorted(map(str, loaded))[:5])
        raise InputError(f"not an AMT checkpoint: no 'state_dict' entry (top-level keys: {keys})", path=path)
    state = tools.tensors_only(loaded["state_dict"], path, WHAT)
    tools.check_layout(state, expected_layout(), path, WHAT)
    return state


def convert_published(source: Path, target_dir: Path) -> None:
    """Manifest converter for ``amt_s``: ``amt-s.pth`` → ``<target_dir>/amt_s.safetensors`` (float32)."""
    from safetensors.torch import save_file

    state = read_published(source)
    target_dir = Path(target_dir)
    target_dir.mkdir(parents=True, exist_ok=True)
    save_file({key: value.detach().to(torch.float32).contiguous() for key, value in state.items()},
              str(target_dir / CONVERTED_FILE),
              metadata={"format": "pt", "model": "AMT-S", "source": Path(source).name})


def load_amt(path: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> AMTS:
    """AMT-S in eval mode from a converted folder (``amt_s.safetensors``) or a published ``amt-s.pth``."""
    from safetensors.torch import load_file

    path = Path(path)
    if path.is_dir():
        file = path / CONVERTED_FILE
        if not file.is_file():
            raise MissingWeightsError(f"no {CONVERTED_FILE} in the converted AMT-S folder; re-import the weights with "
                                      "`anibench weights import amt_s amt-s.pth`", path=path)
        state = load_file(str(file))
        _checkpoint_tools().check_layout(state, expected_layout(), file, WHAT)
    else:
        state = read_published(path)
    model = AMTS()
    model.load_state_dict(state, strict=True)
    return model.to(device=device, dtype=dtype).eval()


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


__all__ = ["AMTS", "Geometry", "convert_published", "interpolation_errors", "load_amt", "motion_smoothness_value",
           "read_published", "vbench_geometry", "vbench_scale"]
