"""Pretrained frame backbone: the Keras MobileNetV2 that ships inside the nsfwjs npm package.

nsfwjs (MIT) carries a tfjs MobileNetV2 (alpha 1.0, 224 px) whose layers up to `block_10` are
the frozen Keras ImageNet weights (Apache-2.0; `trainable: false` in the topology) and whose
later blocks and head were fine-tuned for a 5-class classifier. `scripts/extract-nsfwjs.ts`
writes it as a plain tfjs folder (default `.cache/nsfwjs`); this module rebuilds the network
in PyTorch with Keras's exact semantics (explicit ZeroPadding before 'valid' stride-2 convs,
'same' 3x3 stride-1 depthwise convs, BatchNorm eps from the config, ReLU6) and loads every
weight by its Keras layer name.

Input normalisation: RGB scaled to [0,1], no mean/std (BACKBONE_MEAN 0, BACKBONE_STD 1), which
is what nsfwjs's infer() feeds. Keras's ImageNet recipe would be [-1,1], but the BatchNorm moving
statistics shipped in the bundle (even in the frozen part) were estimated on [0,1] inputs: on the
darknet sample photos the first BN layer's input means sit 0.15 running-std from its
moving_mean with [0,1] input, against 1.28 with [-1,1] (tests/test_backbone.py checks this).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .tfjs import TfjsModel, read_tfjs

BACKBONE_MEAN: tuple[float, float, float] = (0.0, 0.0, 0.0)
BACKBONE_STD: tuple[float, float, float] = (1.0, 1.0, 1.0)
NSFWJS_CLASSES = ("Drawing", "Hentai", "Neutral", "Porn", "Sexy")
PRETRAINED_UP_TO = "block_10"  # the last block whose weights are the frozen ImageNet ones

# Keras MobileNetV2, alpha 1.0: (expansion, output channels, stride) for blocks 0..16.
_BLOCKS = [(1, 16, 1), (6, 24, 2), (6, 24, 1), (6, 32, 2), (6, 32, 1), (6, 32, 1), (6, 64, 2),
           (6, 64, 1), (6, 64, 1), (6, 64, 1), (6, 96, 1), (6, 96, 1), (6, 96, 1), (6, 160, 2),
           (6, 160, 1), (6, 160, 1), (6, 320, 1)]
_DEFAULT_PAD = ((0, 1), (0, 1))  # Keras correct_pad() for even input sizes: ((top, bottom), (left, right))
_KERAS_EPS, _KERAS_MOMENTUM = 1e-3, 0.999


def default_weights_dir() -> str:
    """<repo>/.cache/nsfwjs, where `npx node scripts/extract-nsfwjs.ts` writes the model."""
    return os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", ".cache", "nsfwjs"))


def _prefix(index: int) -> str:
    return "expanded_conv" if index == 0 else f"block_{index}"


def _block_index(up_to: str) -> int:
    """Index of the last inverted-residual block kept (16 for 'Conv_1' and 'full')."""
    if up_to in ("Conv_1", "full"):
        return len(_BLOCKS) - 1
    if up_to == "expanded_conv":
        return 0
    if up_to.startswith("block_") and up_to[6:].isdigit() and int(up_to[6:]) < len(_BLOCKS):
        return int(up_to[6:])
    raise ValueError(f"up_to must be block_0..block_16, 'Conv_1' or 'full', got {up_to!r}")


def backbone_channels(up_to: str = "block_10") -> int:
    """Channels of the feature map that load_mobilenet_v2(up_to=...) returns."""
    if up_to == "Conv_1":
        return 1280
    if up_to == "full":
        return len(NSFWJS_CLASSES)
    return _BLOCKS[_block_index(up_to)][1]


def backbone_stride(up_to: str = "block_10") -> int:
    """Spatial downsampling factor of that feature map (16 for block_10)."""
    stride = 2  # Conv1
    for _, _, s in _BLOCKS[: _block_index(up_to) + 1]:
        stride *= s
    return stride


@dataclass(frozen=True)
class _LayerConfig:
    """The few Keras config values that change numerics; read from the topology when present."""
    eps: dict[str, float]
    momentum: dict[str, float]
    pads: dict[str, tuple[tuple[int, int], tuple[int, int]]]
    relu_max: dict[str, float]

    @staticmethod
    def from_topology(model: TfjsModel | None) -> "_LayerConfig":
        eps, momentum, pads, relu_max = {}, {}, {}, {}
        for layer in model.layers if model else []:
            cfg, kind = layer["config"], layer["class_name"]
            if kind == "BatchNormalization":
                eps[layer["name"]], momentum[layer["name"]] = float(cfg["epsilon"]), float(cfg["momentum"])
            elif kind == "ZeroPadding2D":
                pads[layer["name"]] = tuple(tuple(int(v) for v in p) for p in cfg["padding"])
            elif kind == "ReLU":
                if cfg.get("negative_slope", 0) or cfg.get("threshold", 0):
                    raise ValueError(f"{layer['name']}: leaky/thresholded ReLU not supported")
                relu_max[layer["name"]] = float(cfg["max_value"]) if cfg.get("max_value") is not None else float("inf")
        return _LayerConfig(eps, momentum, pads, relu_max)


class MobileNetV2(nn.Module):
    """Keras MobileNetV2 (alpha 1.0), layers named as in Keras, truncated after `up_to`.

    Input (N, 3, H, W) normalised as the caller chooses (BACKBONE_MEAN/STD for ImageNet
    features). Output (N, C, H/16, W/16) for block_10; (N, 5) probabilities for 'full'.
    """

    def __init__(self, up_to: str = "block_10", config: _LayerConfig | None = None):
        super().__init__()
        self.up_to = up_to
        self.cfg = config or _LayerConfig.from_topology(None)
        self.layers = nn.ModuleDict()
        self.frozen: set[str] = set()
        self.loaded_weights: set[str] = set()  # tfjs weight names copied in (empty: random init)
        self._conv("Conv1", 3, 32, 3, stride=2)
        self._bn("bn_Conv1", 32)
        channels = 32
        for i in range(_block_index(up_to) + 1):
            expansion, out, stride = _BLOCKS[i]
            p, hidden = _prefix(i), channels * expansion
            if expansion != 1:
                self._conv(f"{p}_expand", channels, hidden, 1)
                self._bn(f"{p}_expand_BN", hidden)
            self._conv(f"{p}_depthwise", hidden, hidden, 3, stride=stride, groups=hidden)
            self._bn(f"{p}_depthwise_BN", hidden)
            self._conv(f"{p}_project", hidden, out, 1)
            self._bn(f"{p}_project_BN", out)
            channels = out
        if up_to in ("Conv_1", "full"):
            self._conv("Conv_1", channels, 1280, 1)
            self._bn("Conv_1_bn", 1280)
        if up_to == "full":
            self.layers["dense_1"] = nn.Linear(1280, 256)
            self.layers["dense_2"] = nn.Linear(256, 128)
            self.layers["dense_3"] = nn.Linear(128, len(NSFWJS_CLASSES))
        self._init_random()

    # ------------------------------------------------------------------ construction
    def _conv(self, name: str, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> None:
        # Stride-2 convs are 'valid' after an explicit ZeroPadding2D; 3x3 stride-1 are 'same'.
        padding = 1 if (k == 3 and stride == 1) else 0
        self.layers[name] = nn.Conv2d(cin, cout, k, stride=stride, padding=padding, groups=groups, bias=False)

    def _bn(self, name: str, channels: int) -> None:
        eps = self.cfg.eps.get(name, _KERAS_EPS)
        momentum = 1.0 - self.cfg.momentum.get(name, _KERAS_MOMENTUM)  # torch counts the other way
        self.layers[name] = nn.BatchNorm2d(channels, eps=eps, momentum=momentum)

    def _init_random(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    # ------------------------------------------------------------------ forward
    def _relu(self, x: torch.Tensor, name: str) -> torch.Tensor:
        return torch.clamp(x, 0.0, self.cfg.relu_max.get(name, 6.0))

    def _pad(self, x: torch.Tensor, name: str) -> torch.Tensor:
        (top, bottom), (left, right) = self.cfg.pads.get(name, _DEFAULT_PAD)
        return F.pad(x, (left, right, top, bottom))

    def _conv_bn(self, x: torch.Tensor, conv: str, bn: str) -> torch.Tensor:
        return self.layers[bn](self.layers[conv](x))

    def _block(self, x: torch.Tensor, i: int) -> torch.Tensor:
        expansion, out, stride = _BLOCKS[i]
        p, h = _prefix(i), x
        if expansion != 1:
            h = self._relu(self._conv_bn(h, f"{p}_expand", f"{p}_expand_BN"), f"{p}_expand_relu")
        if stride == 2:
            h = self._pad(h, f"{p}_pad")
        h = self._relu(self._conv_bn(h, f"{p}_depthwise", f"{p}_depthwise_BN"), f"{p}_depthwise_relu")
        h = self._conv_bn(h, f"{p}_project", f"{p}_project_BN")
        return x + h if (stride == 1 and x.shape[1] == out) else h  # Keras adds `{p}_add` exactly then

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._pad(x, "Conv1_pad")
        x = self._relu(self._conv_bn(x, "Conv1", "bn_Conv1"), "Conv1_relu")
        for i in range(_block_index(self.up_to) + 1):
            x = self._block(x, i)
        if self.up_to in ("Conv_1", "full"):
            x = self._relu(self._conv_bn(x, "Conv_1", "Conv_1_bn"), "out_relu")
        if self.up_to != "full":
            return x  # (N, C, H/stride, W/stride)
        x = F.avg_pool2d(x, 7, 7)
        x = x.permute(0, 2, 3, 1).flatten(1)  # Keras Flatten is channels-last
        x = F.relu(self.layers["dense_1"](x))
        x = F.relu(self.layers["dense_2"](x))
        return torch.softmax(self.layers["dense_3"](x), dim=-1)

    # ------------------------------------------------------------------ freezing
    def freeze(self, names: set[str] | None = None) -> None:
        """Stop gradients into the named Keras layers (default: all) and keep their BN in eval."""
        self.frozen = set(self.layers.keys()) if names is None else set(names) & set(self.layers.keys())
        for name in self.frozen:
            for param in self.layers[name].parameters():
                param.requires_grad_(False)
        self.train(self.training)

    def train(self, mode: bool = True) -> "MobileNetV2":
        super().train(mode)
        for name in self.frozen:  # frozen BN uses its ImageNet statistics, as Keras does
            if isinstance(self.layers[name], nn.BatchNorm2d):
                self.layers[name].eval()
        return self


def _keras_to_torch(layer: nn.Module, weights: dict, name: str) -> dict[str, torch.Tensor]:
    def w(key: str) -> torch.Tensor:
        if f"{name}/{key}" not in weights:
            raise KeyError(f"tfjs weights have no {name}/{key}")
        return torch.from_numpy(weights[f"{name}/{key}"].copy())
    if isinstance(layer, nn.BatchNorm2d):
        return {"weight": w("gamma"), "bias": w("beta"), "running_mean": w("moving_mean"),
                "running_var": w("moving_variance")}
    if isinstance(layer, nn.Linear):
        return {"weight": w("kernel").t().contiguous(), "bias": w("bias")}
    if layer.groups > 1:  # DepthwiseConv2D kernel (kh, kw, in, 1) -> (in, 1, kh, kw)
        return {"weight": w("depthwise_kernel").permute(2, 3, 0, 1).contiguous()}
    return {"weight": w("kernel").permute(3, 2, 0, 1).contiguous()}  # (kh, kw, in, out) -> (out, in, kh, kw)


def _load_weights(model: MobileNetV2, tfjs: TfjsModel) -> set[str]:
    """Copy every layer's weights from the tfjs model; returns the weight names used."""
    used: set[str] = set()
    for name, layer in model.layers.items():
        kind = tfjs.layer(name)["class_name"]  # raises if the topology lacks the layer
        expected = {nn.BatchNorm2d: "BatchNormalization", nn.Linear: "Dense"}.get(type(layer))
        expected = expected or ("DepthwiseConv2D" if layer.groups > 1 else "Conv2D")
        if kind != expected:
            raise ValueError(f"layer {name}: topology has {kind}, the PyTorch model expects {expected}")
        state = _keras_to_torch(layer, tfjs.weights, name)
        own = layer.state_dict()
        for key, value in state.items():
            if own[key].shape != value.shape:
                raise ValueError(f"{name}.{key}: shape {tuple(value.shape)} != {tuple(own[key].shape)}")
        layer.load_state_dict({**own, **state})
        used |= {k for k in tfjs.weights if k.startswith(f"{name}/")}
    return used


def load_mobilenet_v2(weights_dir: str | None, up_to: str = "block_10", freeze: bool = False) -> MobileNetV2:
    """MobileNetV2 up to `up_to` with the nsfwjs weights, or random init when weights_dir is None.

    Input (N, 3, H, W) normalised with BACKBONE_MEAN/BACKBONE_STD; output the `up_to` feature
    map, (N, 96, H/16, W/16) for block_10. `freeze=True` stops gradients (and BN updates) in
    every layer the topology marks `trainable: false` (the ImageNet part, up to block_10).
    """
    if weights_dir is None:
        return MobileNetV2(up_to)
    tfjs = read_tfjs(weights_dir)
    model = MobileNetV2(up_to, _LayerConfig.from_topology(tfjs))
    model.loaded_weights = _load_weights(model, tfjs)
    if freeze:
        model.freeze({name for name in model.layers.keys() if not tfjs.trainable(name)})
    return model.eval()
