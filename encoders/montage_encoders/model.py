"""The three towers and the loss in one module, built from a Config."""
from __future__ import annotations

import torch
import torch.nn as nn

from .config import Config
from .losses import ContrastiveLoss, weights_from_config
from .towers import AudioTower, OpenTextTower, TextTower, VideoTower


def make_backbone(cfg: Config, pretrained: bool | None = None) -> tuple[nn.Module, int]:
    from .backbone import backbone_channels, load_mobilenet_v2
    from .data import backbone_weights_dir

    use = cfg.backbone_pretrained if pretrained is None else pretrained
    weights = backbone_weights_dir(cfg) if use else None
    return load_mobilenet_v2(weights, up_to=cfg.backbone_up_to), backbone_channels(cfg.backbone_up_to)


class MontageModel(nn.Module):
    def __init__(self, cfg: Config, vocab_size: int, backbone: nn.Module, channels: int,
                 trainable_backbone: bool = False):
        super().__init__()
        self.cfg = cfg
        self.video = VideoTower(cfg, backbone, channels, trainable_backbone)
        self.audio = AudioTower(cfg)
        self.text = make_text_tower(cfg, vocab_size)
        self.loss = ContrastiveLoss(weights_from_config(cfg), cfg.init_temperature, cfg.max_logit_scale)

    def embed_cached(self, feats: torch.Tensor, mels: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor):
        """Embeddings from cached front-end outputs: feats (B, T, C, h, w), mels (B, M, F)."""
        return {
            "video": self.video.head(feats.reshape(-1, *feats.shape[2:])),
            "audio": self.audio.net(mels),
            "text": self.text(ids, mask),
        }


def make_text_tower(cfg: Config, vocab_size: int) -> nn.Module:
    """The text tower of cfg.text_vocab; an open tower's word table starts empty (zeros) and is
    filled by `set_word_table` (training) or by load_state_dict (a checkpoint)."""
    if cfg.text_vocab == "corpus":
        return TextTower(cfg, vocab_size)
    if cfg.text_vocab != "open":
        raise ValueError(f"text_vocab must be 'open' or 'corpus', got {cfg.text_vocab!r}")
    q = torch.zeros(vocab_size, cfg.word_dim, dtype=torch.int8)
    return OpenTextTower(cfg, q, torch.ones(vocab_size), torch.zeros(cfg.word_dim))


def set_word_table(tower: OpenTextTower, q, scale, centre) -> None:
    """Copy the int8 table, its row scales and the centre vector into an open tower (numpy in)."""
    with torch.no_grad():
        tower.table_q.copy_(torch.from_numpy(q))
        tower.table_scale.copy_(torch.from_numpy(scale).reshape(-1, 1))
        tower.centre.copy_(torch.from_numpy(centre).reshape(1, -1))


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """No weight decay on biases, norms, embeddings, positions and the temperature."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        flat = p.ndim < 2 or "pos" in name or "tok." in name or "query" in name
        (no_decay if flat else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)
