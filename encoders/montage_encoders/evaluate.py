"""Held-out cross-modal retrieval, the untrained baseline, and the backbone comparisons.

Protocol (../shared/EVALUATION.md): the gallery is the test split (attribute combinations never
seen in training); each query's positive is its own clip, every other clip is a negative;
Recall@K = share of queries whose positive is in the top K by cosine. Silent clips have no audio,
so they are left out of the audio rows (both as audio queries and as audio gallery entries);
the gallery of those rows is then the clips with sound.

    python3 -m montage_encoders.evaluate --run runs/NAME [--photos]
"""
from __future__ import annotations

import argparse
import glob
import io
import json
import os

import numpy as np
import torch

KS = (1, 5, 10)
PHOTO_GLOB = "/usr/share/darknet/data/*.jpg"


def recall(queries: torch.Tensor, gallery: torch.Tensor, ks=KS) -> dict[str, float]:
    """queries[i] matches gallery[i]; returns {"r1":..,"r5":..,"r10":..}."""
    sims = queries @ gallery.t()  # (N, N)
    positive = sims.diagonal()[:, None]
    rank = (sims > positive).sum(dim=1)  # number of negatives above the positive
    return {f"r{k}": round(float((rank < k).float().mean()), 4) for k in ks}


@torch.no_grad()
def embed_split(model, split, tok, device, batch: int = 256) -> dict[str, torch.Tensor]:
    """View 0 of every clip and its first caption, through the trained parts of the towers."""
    from .data import tokenize

    model.eval()
    out: dict[str, list] = {"video": [], "audio": [], "text": []}
    for lo in range(0, len(split), batch):
        sl = slice(lo, lo + batch)
        ids, mask = tokenize(tok, [c[0] for c in split.captions[sl]])
        emb = model.embed_cached(split.feats[sl, 0].float().to(device), split.mels[sl, 0].float().to(device),
                                 ids.to(device), mask.to(device))
        for k, v in emb.items():
            out[k].append(v.float().cpu())
    return {k: torch.cat(v) for k, v in out.items()}


def heldout_metrics(emb: dict[str, torch.Tensor], silent: torch.Tensor) -> dict:
    sound = ~silent
    n = emb["video"].shape[0]
    return {
        "gallery_size": n,
        "chance_r10": round(10 / n, 4),
        "audio_gallery_size": int(sound.sum()),
        "text_to_video": recall(emb["text"], emb["video"]),
        "video_to_text": recall(emb["video"], emb["text"]),
        "audio_to_video": recall(emb["audio"][sound], emb["video"][sound]),
        "video_to_audio": recall(emb["video"][sound], emb["audio"][sound]),
    }


PARAPHRASE_SEED = 5


def paraphrase_captions(split) -> list[str]:
    """One paraphrase per held-out clip (corpus.paraphrase_caption: words never in training),
    seeded by clip index, so every model is asked the same queries."""
    from . import corpus

    return [corpus.paraphrase_caption(spec, np.random.default_rng([PARAPHRASE_SEED, i]))
            for i, spec in enumerate(split.specs)]


@torch.no_grad()
def paraphrase_metrics(model, split, tok, cfg, device, batch: int = 256) -> dict:
    """Text->video Recall@1/5/10 on the held-out gallery with paraphrased queries."""
    from .data import tokenize

    model.eval()
    texts = paraphrase_captions(split)
    vids, txts = [], []
    for lo in range(0, len(split), batch):
        sl = slice(lo, lo + batch)
        vids.append(model.video.head(split.feats[sl, 0].float().reshape(-1, *split.feats.shape[3:]).to(device)).cpu())
        ids, mask = tokenize(tok, texts[sl])
        txts.append(model.text(ids.to(device), mask.to(device)).cpu())
    v, t = torch.cat(vids), torch.cat(txts)
    return {"gallery_size": len(split), "text_to_video": recall(t, v), "example": texts[0]}


def torch_text_encoder(text_tower, tok, device):
    from .data import tokenize

    @torch.no_grad()
    def encode(texts: list) -> np.ndarray:
        text_tower.eval()
        ids, mask = tokenize(tok, list(texts))
        return text_tower(ids.to(device), mask.to(device)).cpu().numpy()
    return encode


def text_benchmark(model, tok, device) -> dict:
    """textbench for the trained tower and, for an open tower, the plain mean of its word vectors."""
    from . import textbench

    out = {"tower": textbench.score(torch_text_encoder(model.text, tok, device))}
    text = model.text
    if hasattr(text, "table_q"):
        table = (text.table_q.float() * text.table_scale).cpu().numpy()
        out["mean_word_vectors"] = textbench.score(
            textbench.mean_vector_encoder(tok, table, text.centre.cpu().numpy()[0]))
    return out


def format_table(rows: dict[str, dict]) -> str:
    """Markdown table: one row per model, R@1/5/10 for the four directions."""
    dirs = ("text_to_video", "video_to_text", "audio_to_video", "video_to_audio")
    head = "| model | " + " | ".join(f"{d.replace('_to_', '→')} R@1/5/10" for d in dirs) + " |"
    lines = [head, "|" + " --- |" * (len(dirs) + 1)]
    for name, m in rows.items():
        cells = [f"{m[d]['r1']:.3f} / {m[d]['r5']:.3f} / {m[d]['r10']:.3f}" for d in dirs]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def chance_row(n_video: int, n_audio: int) -> dict:
    def c(n):
        return {f"r{k}": round(min(1.0, k / n), 4) for k in KS}
    return {"text_to_video": c(n_video), "video_to_text": c(n_video),
            "audio_to_video": c(n_audio), "video_to_audio": c(n_audio)}


# ------------------------------------------------------------------ real photographs
def photo_queries(path: str, size: int, rng: np.random.Generator) -> tuple[np.ndarray, list[np.ndarray], list[str]]:
    """The original photo (stretched to size x size) and its variants: crops, a flip, JPEG."""
    from PIL import Image, ImageOps

    img = Image.open(path).convert("RGB")
    w, h = img.size

    def fit(im):
        return np.asarray(im.resize((size, size), Image.BILINEAR), dtype=np.uint8)

    variants, names = [], []
    for frac in (0.8, 0.65):
        cw, ch = int(w * frac), int(h * frac)
        x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        variants.append(fit(img.crop((x0, y0, x0 + cw, y0 + ch))))
        names.append(f"crop{int(frac * 100)}")
    variants.append(fit(ImageOps.mirror(img)))
    names.append("flip")
    for q in (30, 10):
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=q)
        variants.append(fit(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")))
        names.append(f"jpeg{q}")
    return fit(img), variants, names


@torch.no_grad()
def photo_top1(video_tower, cfg, device, pattern: str = PHOTO_GLOB, seed: int = 0) -> dict:
    """Each photo is a one-frame segment repeated T times; queries = its variants, gallery = the
    originals; top-1 accuracy = share of variants whose nearest original is their own photo."""
    from .data import normalise

    paths = sorted(glob.glob(pattern))
    if not paths:
        return {"photos": 0}
    rng = np.random.default_rng(seed)
    originals, queries, owner, kinds = [], [], [], []
    for i, p in enumerate(paths):
        orig, variants, names = photo_queries(p, cfg.frame_size, rng)
        originals.append(orig)
        queries.extend(variants)
        owner.extend([i] * len(variants))
        kinds.extend(names)

    def embed(images):
        x = normalise(torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2))  # (N, 3, S, S)
        x = x[:, None].expand(-1, cfg.frames_per_segment, -1, -1, -1).contiguous()
        video_tower.eval()
        return video_tower(x.to(device)).cpu()

    hits = (embed(queries) @ embed(originals).t()).argmax(dim=1) == torch.tensor(owner)
    per_kind = {k: round(float(hits[[j for j, n in enumerate(kinds) if n == k]].float().mean()), 3)
                for k in dict.fromkeys(kinds)}
    return {"photos": len(paths), "queries": len(queries), "top1": round(float(hits.float().mean()), 4),
            "chance": round(1 / len(paths), 4), "per_variant": per_kind,
            "files": [os.path.basename(p) for p in paths]}


def main(argv=None) -> None:
    """Re-run the whole evaluation of a run from its checkpoint and cached corpus, and rewrite
    runs/NAME/metrics.json (training timings are kept from the checkpoint)."""
    from .train import Logger, evaluate_run, hardware, load_run, prepare_data

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="training run folder (with ckpt.pt and cache.pt)")
    ap.add_argument("--scratch-steps", type=int, default=None, help="override the comparison budget")
    args = ap.parse_args(argv)
    run = load_run(args.run)
    cfg = run["cfg"]
    torch.set_num_threads(cfg.threads)
    if args.scratch_steps is not None:
        cfg.scratch_steps = args.scratch_steps
    log = Logger(os.path.join(args.run, "train.log"))
    log(f"evaluate: {args.run} at step {run['step']}")
    train, test, data_seconds = prepare_data(cfg, args.run, log)
    metrics = evaluate_run(cfg, run["model"], train, test, run["tok"], torch.device("cpu"), log)
    path = os.path.join(args.run, "metrics.json")
    old = json.load(open(path)) if os.path.exists(path) else {}
    metrics["timings"] = {**run["timings"], "data_seconds": round(data_seconds, 1),
                          "eval_seconds": metrics.pop("eval_seconds")}
    metrics["hardware"] = hardware()
    metrics["steps"] = run["step"]
    metrics["losses"] = old.get("losses")
    with open(path, "w") as f:
        json.dump(metrics, f, indent=1)
    log(f"evaluate: wrote {path}")


if __name__ == "__main__":
    main()
