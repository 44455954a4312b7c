"""The three towers of the joint space: video, audio and text.

Every tower ends in a linear projection to `dim` and an L2 normalisation, inside the module, so
the exported ONNX graph already returns unit vectors (the service compares by dot product).
Each tower is split into a fixed front end and a trainable part (`head`/`net`): training runs
on cached front-end outputs (frozen backbone features, log-mels), export runs the whole thing.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import Config


def l2norm(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    # written out (not F.normalize) so the exported op sequence is plain and the same everywhere
    return x / torch.sqrt((x * x).sum(dim=-1, keepdim=True) + eps)


class AttentionPool(nn.Module):
    """A learned query attends over a sequence: (B, N, W) -> (B, W)."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.query = nn.Parameter(torch.randn(1, 1, width) * 0.02)
        self.kv = nn.Linear(width, 2 * width)
        self.out = nn.Linear(width, width)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        b, n, w = x.shape
        k, v = self.kv(x).chunk(2, dim=-1)  # (B, N, W) each
        hd = w // self.heads
        q = self.query.expand(b, 1, w).reshape(b, 1, self.heads, hd).transpose(1, 2)  # (B, H, 1, hd)
        k = k.reshape(b, n, self.heads, hd).transpose(1, 2)  # (B, H, N, hd)
        v = v.reshape(b, n, self.heads, hd).transpose(1, 2)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(hd)  # (B, H, 1, N)
        if mask is not None:
            att = att + (1.0 - mask[:, None, None, :]) * -1e4
        pooled = (att.softmax(dim=-1) @ v).transpose(1, 2).reshape(b, w)
        return self.out(pooled)


# ---------------------------------------------------------------- video
class VideoHead(nn.Module):
    """Backbone feature maps of T frames -> one unit vector per segment.

    A strided conv keeps the spatial layout (global average pooling would forget where the
    object is, and motion is a change of where), then each frame becomes a token with a learned
    temporal position; a per-token MLP mixes "what/where" with "when" before attention pooling,
    so the pooled vector can tell left-to-right from right-to-left.
    """

    def __init__(self, cfg: Config, in_channels: int, grid: int):
        super().__init__()
        c = cfg.video_head_channels
        self.frames = cfg.frames_per_segment
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, c, 3, stride=2, padding=1), nn.BatchNorm2d(c), nn.ReLU())
        g = (grid + 1) // 2
        self.flat = nn.Linear(c * g * g, cfg.video_width)
        self.pos = nn.Parameter(torch.randn(1, cfg.frames_per_segment, cfg.video_width) * 0.02)
        self.norm1 = nn.LayerNorm(cfg.video_width)
        self.mlp = nn.Sequential(nn.Linear(cfg.video_width, cfg.video_width), nn.GELU(),
                                 nn.Dropout(cfg.dropout), nn.Linear(cfg.video_width, cfg.video_width))
        self.pool = AttentionPool(cfg.video_width, cfg.video_heads)
        self.norm2 = nn.LayerNorm(cfg.video_width)
        self.proj = nn.Linear(cfg.video_width, cfg.dim)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        # feats: (B*T, C, h, w) backbone maps, frames of a segment consecutive
        x = self.conv(feats).flatten(1)
        x = self.flat(x).reshape(-1, self.frames, self.flat.out_features) + self.pos  # (B, T, W)
        x = x + self.mlp(self.norm1(x))
        return l2norm(self.proj(self.norm2(self.pool(x))))


class FrozenBackbone(nn.Module):
    """Wraps the ImageNet part so that .train() never unfreezes its BatchNorm statistics."""

    def __init__(self, module: nn.Module, trainable: bool = False):
        super().__init__()
        self.module = module
        self.trainable = trainable
        for p in self.module.parameters():
            p.requires_grad_(trainable)

    def train(self, mode: bool = True):
        super().train(mode)
        if not self.trainable:
            self.module.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x)


class VideoTower(nn.Module):
    """frames (B, T, 3, S, S), normalised with the backbone's mean/std -> (B, D)."""

    def __init__(self, cfg: Config, backbone: nn.Module, channels: int, trainable_backbone=False):
        super().__init__()
        self.frames = cfg.frames_per_segment
        self.size = cfg.frame_size
        self.backbone = FrozenBackbone(backbone, trainable_backbone)
        self.head = VideoHead(cfg, channels, grid=math.ceil(cfg.frame_size / 16))

    def features(self, frames: torch.Tensor) -> torch.Tensor:
        return self.backbone(frames.reshape(-1, 3, self.size, self.size))  # (B*T, C, h, w)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(frames))


# ---------------------------------------------------------------- audio
def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, f_min: float, f_max: float) -> np.ndarray:
    """HTK-style triangular mel filters, (n_fft//2+1, n_mels)."""
    def hz_to_mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    def mel_to_hz(m):
        return 700.0 * (10.0 ** (np.asarray(m) / 2595.0) - 1.0)

    freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2))
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    up = (freqs[:, None] - lower[None]) / (centre - lower)[None]
    down = (upper[None] - freqs[:, None]) / (upper - centre)[None]
    return np.maximum(0.0, np.minimum(up, down)).astype(np.float32)


class LogMel(nn.Module):
    """waveform (B, samples) -> log-mel (B, n_mels, frames), with no torch.stft.

    The STFT is a fixed conv1d whose kernels are Hann-windowed cos and sin, so the graph exports
    on any opset and runs the same in every runtime.
    """

    def __init__(self, cfg: Config):
        super().__init__()
        n_bins = cfg.n_fft // 2 + 1
        n = np.arange(cfg.n_fft)
        window = 0.5 - 0.5 * np.cos(2 * np.pi * n / cfg.n_fft)  # periodic Hann
        k = np.arange(n_bins)[:, None]
        cos = np.cos(2 * np.pi * k * n[None] / cfg.n_fft) * window
        sin = -np.sin(2 * np.pi * k * n[None] / cfg.n_fft) * window
        kernels = np.concatenate([cos, sin])[:, None, :].astype(np.float32)  # (2*bins, 1, n_fft)
        self.register_buffer("kernels", torch.from_numpy(kernels))
        fb = mel_filterbank(cfg.sample_rate, cfg.n_fft, cfg.n_mels, cfg.f_min, cfg.f_max)
        self.register_buffer("fbank", torch.from_numpy(fb))
        self.hop, self.pad, self.bins = cfg.hop, cfg.n_fft // 2, n_bins

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        x = F.pad(wave[:, None, :], (self.pad, self.pad))  # centred frames, zero padded
        spec = F.conv1d(x, self.kernels, stride=self.hop)  # (B, 2*bins, frames)
        power = spec[:, : self.bins] ** 2 + spec[:, self.bins:] ** 2
        mel = torch.matmul(power.transpose(1, 2), self.fbank).transpose(1, 2)  # (B, mels, frames)
        return torch.log(mel + 1e-6)


def _conv1d(cin: int, cout: int, k: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    pad = 0 if k == stride else dilation * (k - 1) // 2  # k == stride: non-overlapping patches
    return nn.Sequential(nn.Conv1d(cin, cout, k, stride, pad, dilation), nn.BatchNorm1d(cout), nn.GELU())


class AudioNet(nn.Module):
    """log-mel (B, mels, frames) -> (B, D). Mels are channels: 1-D convs over time are cheap.

    A patchifying conv turns 4 mel frames (40 ms) into one step, a stride-2 conv brings that to
    80 ms, and two dilated residual convs then see about a second, which is what a rhythm needs.
    Mean and max over time keep both the level and the peaks (beeps).
    """

    def __init__(self, cfg: Config):
        super().__init__()
        w = cfg.audio_width
        self.inorm = nn.BatchNorm1d(cfg.n_mels)
        self.stem = nn.Sequential(_conv1d(cfg.n_mels, w, 4, 4), _conv1d(w, w, 3, 2))
        self.res1 = _conv1d(w, w, 3, dilation=2)
        self.res2 = _conv1d(w, w, 3, dilation=4)
        self.norm = nn.LayerNorm(2 * w)
        self.proj = nn.Linear(2 * w, cfg.dim)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.stem(self.inorm(mel))
        x = x + self.res1(x)
        x = x + self.res2(x)  # (B, W, frames/8)
        pooled = torch.cat([x.mean(dim=-1), x.amax(dim=-1)], dim=-1)  # level and peaks
        return l2norm(self.proj(self.norm(pooled)))


class AudioTower(nn.Module):
    """waveform (B, samples) -> (B, D)."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.frontend = LogMel(cfg)
        self.net = AudioNet(cfg)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.net(self.frontend(wave))


# ---------------------------------------------------------------- text
class Block(nn.Module):
    """Pre-norm Transformer block, attention written out so it exports plainly."""

    def __init__(self, width: int, heads: int, ffn: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)
        self.ffn = nn.Sequential(nn.Linear(width, ffn), nn.GELU(), nn.Linear(ffn, width))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, n, w = x.shape
        hd = w // self.heads
        q, k, v = self.qkv(self.ln1(x)).reshape(b, n, 3, self.heads, hd).permute(2, 0, 3, 1, 4)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(hd) + bias  # (B, H, N, N)
        y = (att.softmax(dim=-1) @ v).transpose(1, 2).reshape(b, n, w)
        x = x + self.drop(self.out(y))
        return x + self.drop(self.ffn(self.ln2(x)))


class TextTower(nn.Module):
    """input_ids, attention_mask (B, L) int64 -> (B, D); masked mean pool over tokens."""

    def __init__(self, cfg: Config, vocab_size: int):
        super().__init__()
        self.tok = nn.Embedding(vocab_size, cfg.text_width)
        self.pos = nn.Parameter(torch.randn(1, cfg.max_length, cfg.text_width) * 0.02)
        self.blocks = nn.ModuleList(
            Block(cfg.text_width, cfg.text_heads, cfg.text_ffn, cfg.dropout) for _ in range(cfg.text_layers))
        self.norm = nn.LayerNorm(cfg.text_width)
        self.proj = nn.Linear(cfg.text_width, cfg.dim)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        n = input_ids.shape[1]
        mask = attention_mask.to(torch.float32)  # (B, L)
        x = self.tok(input_ids) + self.pos[:, :n]
        bias = (1.0 - mask)[:, None, None, :] * -1e4  # padded keys get no attention
        for block in self.blocks:
            x = block(x, bias)
        x = self.norm(x)
        pooled = (x * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1.0)
        return l2norm(self.proj(pooled))


class OpenTextTower(nn.Module):
    """Open-vocabulary text tower: input_ids, attention_mask (B, L) int64 -> (B, D).

    Each token's 100-d word vector comes from a frozen table stored as int8 with one scale per
    row and dequantised inside the graph after the lookup (Gather int8 -> Cast -> Mul), so the
    ONNX file carries ~1 byte per number. Frozen on purpose: a word the captions never use keeps
    its place among its neighbours, so a synonym learnt in training ("scarlet") pulls the unseen
    ones near it ("crimson") along. A linear map lifts the vectors to the Transformer width;
    the pooled Transformer output plus a residual projection of the mean (centred) word vector
    go to D, so general phrases keep the word-vector geometry (see train.guard_loss).
    """

    def __init__(self, cfg: Config, table_q: torch.Tensor, table_scale: torch.Tensor, centre: torch.Tensor):
        super().__init__()
        self.register_buffer("table_q", table_q.to(torch.int8))  # (V, d)
        self.register_buffer("table_scale", table_scale.reshape(-1, 1).to(torch.float32))  # (V, 1)
        self.register_buffer("centre", centre.reshape(1, -1).to(torch.float32))  # (1, d)
        d = table_q.shape[1]
        self.inp = nn.Linear(d, cfg.text_width)
        self.pos = nn.Parameter(torch.randn(1, cfg.max_length, cfg.text_width) * 0.02)
        self.blocks = nn.ModuleList(
            Block(cfg.text_width, cfg.text_heads, cfg.text_ffn, cfg.dropout) for _ in range(cfg.text_layers))
        self.norm = nn.LayerNorm(cfg.text_width)
        self.proj = nn.Linear(cfg.text_width, cfg.dim)
        self.skip = nn.Linear(d, cfg.dim)

    @property
    def vocab_size(self) -> int:
        return int(self.table_q.shape[0])

    def word_vectors(self, input_ids: torch.Tensor) -> torch.Tensor:
        # gather first, then dequantise: only B*L rows are ever turned into floats
        return self.table_q[input_ids].to(torch.float32) * self.table_scale[input_ids]  # (B, L, d)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        n = input_ids.shape[1]
        mask = attention_mask.to(torch.float32)  # (B, L)
        words = self.word_vectors(input_ids)
        x = self.inp(words) + self.pos[:, :n]
        bias = (1.0 - mask)[:, None, None, :] * -1e4
        for block in self.blocks:
            x = block(x, bias)
        x = self.norm(x)
        count = mask.sum(1, keepdim=True).clamp(min=1.0)
        pooled = (x * mask[..., None]).sum(1) / count  # (B, W)
        mean_word = (words * mask[..., None]).sum(1) / count - self.centre  # (B, d)
        return l2norm(self.proj(pooled) + self.skip(mean_word))
