"""Fine-tune the served generation on a deployment's own catalogue and events (`montage export-training`).

    cd encoders && OMP_NUM_THREADS=1 /usr/bin/python3 -m montage_encoders.finetune \\
        --data ../var/training --base generations/mtg-2026.12-cpu --name mtg-2026.12-ft1 --dest ../var/generations

Starting point: the base generation's own weights. Generations ship ONNX only, so the text, user and
behaviour towers are read back from their ONNX files (onnx_weights.py) and must reproduce the base's
golden outputs before anything trains.

Content side, LiT-style (lit.py): `video.onnx` and `audio.onnx` stay the base's, byte for byte, so every
stored video/audio vector stays valid; the TEXT tower is fine-tuned so that each video's captions (title +
description + tags, the title alone, each piece of enrichment evidence) land on that video's vectors, which
are computed from the exported frames and audio through the base's ONNX towers in Node (compare.node_embed,
the service's own path). Behaviour side: the user and behaviour towers are fine-tuned on the exported
events (behaviour.train.fit, every position, early stopping on the deployment's validation split).

Guards against forgetting (both sides):
- replay: a share `--replay` of every text batch is procedural corpus clips (the data the base was trained
  on), and `--behaviour-replay` of the behaviour training users are sequences of the synthetic log the
  base's user tower was trained on (behaviour/synthetic.py);
- an L2 penalty (L2-SP) pulling the text tower's weights towards the base's (`--l2sp`, on the sum of squared
  differences); the behaviour trainer (behaviour/train.py) has no such hook, so its guard is the replay,
  a lower learning rate and early stopping on validation.

Held-out split, measured for the base AND the new weights with the same code: the catalogue videos whose
sha1(id) sorts first (`--heldout` share, at least one when there are two) never train; their whole caption is
queried against every exported video (text->video R@1/5/10); the first `--procedural-test` clips of the corpus
test split (compare.py's queries) measure what the base knew; behaviour: leave-one-out of the deployment's
users, full ranking with the history removed (EVALUATION.md). Both go into manifest.metrics.finetune and the
model card, so the two generations can be compared before `switch`.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import datetime
import hashlib
import json
import os
import shutil
import time

import numpy as np
import torch
import torch.nn.functional as F

from . import corpus
from .compare import heldout_queries, node_embed, render
from .data import tokenize
from .export import TextExport, export_onnx, file_hashes, text_golden, video_input
from .lit import FUSION, render_chunk
from .losses import info_nce
from .model import make_text_tower
from .onnx_weights import load_tower
from .tokenizer import load_tokenizer
from .train import Logger, checkpoint_config, hardware

EXPORT_FORMAT = 1  # src/training/export.ts TRAINING_EXPORT_FORMAT


@dataclasses.dataclass
class FinetuneConfig:
    steps: int = 200
    batch_size: int = 64
    lr: float = 2e-4
    warmup_steps: int = 10
    temperature: float = 0.05  # fixed: the base's learnt temperature is not in its ONNX files
    replay: float = 0.5  # share of each text batch from the procedural corpus
    replay_clips: int = 400
    l2sp: float = 0.01  # weight of sum((w - w_base)^2) over the text tower's ~1.5M trainable weights (~1 at 0.01 drift each)
    heldout: float = 0.2
    procedural_test: int = 200
    max_segments: int = 8  # per video, as exported
    forget_margin: float = 0.05  # most the procedural held-out text->video R@1 may drop before the card warns
    behaviour_lr: float = 5e-4
    behaviour_epochs: int = 20
    behaviour_budget_s: float = 120.0
    behaviour_replay: float = 0.5  # share of the behaviour training users from the synthetic log
    seed: int = 0
    threads: int = 1


# ------------------------------------------------------------------ the exported folder
def read_export(data_dir: str) -> dict:
    with open(os.path.join(data_dir, "export.json")) as f:
        info = json.load(f)
    if info.get("format") != EXPORT_FORMAT or not info.get("complete"):
        raise ValueError(f"{data_dir}: not a complete export-training folder of format {EXPORT_FORMAT}")
    with open(os.path.join(data_dir, "items.jsonl")) as f:
        items = [json.loads(line) for line in f if line.strip()]
    videos = []
    for it in items:
        folder = os.path.join(data_dir, "videos", it["item"])
        if not it.get("media") or not os.path.exists(os.path.join(folder, "meta.json")):
            continue
        frames = np.load(os.path.join(folder, "frames.npy"))  # (S, T, H, W, 3) uint8
        audio_path = os.path.join(folder, "audio.npy")
        audio = np.load(audio_path) if os.path.exists(audio_path) else None  # (S, samples)
        videos.append({**it, "frames": frames, "audio": audio})
    return {"info": info, "items": items, "videos": videos}


def heldout_split(ids: list[str], share: float) -> set[str]:
    """The share of ids whose sha1 sorts first (stable as the catalogue grows); at least one of two or more."""
    if len(ids) < 2:
        return set()
    order = sorted(ids, key=lambda i: hashlib.sha1(i.encode()).hexdigest())
    return set(order[:max(1, int(round(share * len(ids))))])


# ------------------------------------------------------------------ locked targets
def content_targets(base: str, manifest: dict, videos: list[dict], ft: FinetuneConfig, log) -> dict:
    """Every vector the text tower is trained or measured against, from the base's ONNX towers in one Node run."""
    pre = manifest["preprocessing"]
    size = pre["video"]["frame_size"]
    for v in videos:
        if v["frames"].shape[2] != size:
            raise ValueError(f"video {v['item']}: frames of {v['frames'].shape[2]} px, the base wants {size}: "
                             "export again with the base generation served")
    seed = int(manifest["training"]["config"].get("corpus_seed", 1234))
    replay_specs = corpus.sample_specs(ft.replay_clips, "train", seed)
    test_specs, test_captions, _ = heldout_queries(ft.procedural_test, seed)
    frames, waves = {}, {}
    if videos:
        frames["catalogue"] = video_input(np.concatenate([v["frames"] for v in videos]))
        sound = [v["audio"] for v in videos if v["audio"] is not None]
        if sound:
            waves["catalogue_audio"] = np.concatenate(sound).astype(np.float32)
    if ft.replay_clips:
        frames["replay"], _ = render_chunk(replay_specs, pre, starts=(0.0,))
    frames["test"] = render(test_specs, manifest)
    started = time.time()
    emb = node_embed(base, {}, frames, waves)
    log(f"targets: {sum(len(x) for x in frames.values())} segments through {manifest['generation']}'s towers "
        f"in {time.time() - started:.0f}s")
    items, segs, k, a = [], [], 0, 0
    for v in videos:
        s = v["frames"].shape[0]
        video = torch.from_numpy(emb["catalogue"][k:k + s])
        k += s
        fused = FUSION["video"] * video  # src/fusion's segment vector: video 0.5 + audio 0.2
        if v["audio"] is not None:
            fused = fused + FUSION["audio"] * torch.from_numpy(emb["catalogue_audio"][a:a + s])
            a += s
        segs.append(torch.cat([video, F.normalize(fused, dim=-1)]))  # a segment's video or fused vector
        items.append(F.normalize(video.mean(0), dim=-1))
    out = {"items": torch.stack(items) if items else torch.zeros(0, manifest["dim"]), "segments": segs,
           "test_specs": test_specs, "test_captions": test_captions,
           "test": torch.from_numpy(emb["test"]), "replay_specs": replay_specs}
    if ft.replay_clips:
        out["replay"] = torch.from_numpy(emb["replay"])
    return out


# ------------------------------------------------------------------ text tower
def load_base_text(base: str, manifest: dict):
    cfg = checkpoint_config({"config": manifest["training"]["config"]})
    tok = load_tokenizer(base)
    text = make_text_tower(cfg, len(tok))
    diff = load_tower(text, base, "text", "tower.", forward=lambda m, x: m(x["input_ids"], x["attention_mask"]))
    return cfg, tok, text, diff


def recall_at(q: torch.Tensor, g: torch.Tensor, pos: torch.Tensor, ks=(1, 5, 10)) -> dict:
    """Share of queries whose positive (row pos[i] of the gallery) ranks in the top K; ties count against."""
    sims = q @ g.T
    rank = (sims >= sims[torch.arange(len(q)), pos][:, None] - 1e-6).sum(dim=1) - 1
    return {f"r{k}": round(float((rank < k).float().mean()), 4) for k in ks}


def encode(text, tok, texts: list[str]) -> torch.Tensor:
    out = []
    for i in range(0, len(texts), 256):
        ids, mask = tokenize(tok, texts[i:i + 256])
        w = max(1, int(mask.sum(1).max()))
        out.append(text(ids[:, :w], mask[:, :w]))
    return torch.cat(out) if out else torch.zeros(0)


@torch.no_grad()
def content_metrics(text, tok, videos: list[dict], held: set[str], tg: dict) -> dict:
    """The held-out split, the same for the base and the fine-tuned tower."""
    was = text.training
    text.eval()
    out = {}
    hold = [i for i, v in enumerate(videos) if v["item"] in held]
    if hold:
        q = encode(text, tok, [videos[i]["captions"][0] for i in hold])
        out["catalogue_text_to_video"] = {**recall_at(q, tg["items"], torch.tensor(hold)),
                                          "queries": len(hold), "gallery_size": len(videos)}
    seen = [i for i, v in enumerate(videos) if v["item"] not in held and v["title"]]
    if seen:  # in-sample: what the catalogue taught, not a held-out number
        q = encode(text, tok, [videos[i]["title"] for i in seen])
        out["catalogue_trained_titles_to_video"] = {**recall_at(q, tg["items"], torch.tensor(seen)),
                                                    "queries": len(seen), "gallery_size": len(videos)}
    q = encode(text, tok, tg["test_captions"])
    out["procedural_text_to_video"] = {**recall_at(q, tg["test"], torch.arange(len(q))),
                                       "queries": len(q), "gallery_size": len(q)}
    text.train(was)
    return out


def train_text(text, tok, videos: list[dict], held: set[str], tg: dict, ft: FinetuneConfig, log) -> dict:
    base = {k: p.detach().clone() for k, p in text.named_parameters() if p.requires_grad}
    params = [p for p in text.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=ft.lr, weight_decay=0.0)  # the L2-SP term replaces decay towards 0
    train_idx = [i for i, v in enumerate(videos) if v["item"] not in held]
    scale = torch.tensor(1.0 / ft.temperature)
    n_replay = int(round(ft.replay * ft.batch_size)) if ft.replay_clips else 0
    n_cat = min(ft.batch_size - n_replay, len(train_idx))  # without replacement: a repeat would be its own negative
    if n_cat == 0:
        n_replay = ft.batch_size if ft.replay_clips else 0
    if n_cat + n_replay < 2:
        log("text: nothing to train on (no catalogue video with media outside the held-out split, no replay)")
        return {"steps": 0}
    fixed = fixed_batch(videos, train_idx, tg, ft, n_replay)
    started, text_losses, before = time.time(), [], fixed_loss(text, tok, fixed, scale)
    text.train()
    for step in range(ft.steps):
        lr = ft.lr * min(1.0, (step + 1) / max(1, ft.warmup_steps))
        for g in opt.param_groups:
            g["lr"] = lr
        rng = np.random.default_rng([ft.seed, 31, step])
        texts, targets = [], []
        for i in rng.choice(train_idx, n_cat, replace=False) if n_cat else []:
            v = videos[int(i)]
            texts.append(v["captions"][int(rng.integers(len(v["captions"])))])
            segs = tg["segments"][int(i)]
            j = int(rng.integers(len(segs) + 1))  # a segment's video or fused vector, or the item vector
            targets.append(tg["items"][int(i)] if j == len(segs) else segs[j])
        for i in rng.choice(ft.replay_clips, n_replay, replace=False) if n_replay else []:
            texts.append(corpus.varied_caption(tg["replay_specs"][int(i)], np.random.default_rng([ft.seed, 17, step, int(i)])))
            targets.append(tg["replay"][int(i)])
        loss = info_nce(encode(text, tok, texts), torch.stack(targets), scale)
        drift = sum(((p - base[k]) ** 2).sum() for k, p in text.named_parameters() if p.requires_grad)
        total = loss + ft.l2sp * drift
        opt.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        text_losses.append(float(loss))
        if (step + 1) % 25 == 0 or step + 1 == ft.steps:
            log(f"text step {step + 1}/{ft.steps} contrastive {float(loss):.4f} l2sp {float(drift):.2e} lr {lr:.1e}")
    text.eval()
    return {"steps": ft.steps, "train_seconds": round(time.time() - started, 1), "catalogue_per_batch": n_cat,
            "replay_per_batch": n_replay, "first_loss": text_losses[0], "last_loss": text_losses[-1],
            "fixed_batch_loss": {"before": before, "after": fixed_loss(text, tok, fixed, scale)}}


def fixed_batch(videos: list[dict], train_idx: list[int], tg: dict, ft: FinetuneConfig, n_replay: int):
    """One batch that never changes (each training video's title, its shortest caption, against its item vector,
    plus as many replay clips): its loss before and after training says whether the steps learnt anything."""
    texts = [videos[i]["title"] or videos[i]["captions"][0] for i in train_idx]
    targets = [tg["items"][i] for i in train_idx]
    for i in range(min(n_replay, ft.replay_clips)):
        texts.append(corpus.varied_caption(tg["replay_specs"][i], np.random.default_rng([ft.seed, 19, i])))
        targets.append(tg["replay"][i])
    return texts, torch.stack(targets) if targets else None


@torch.no_grad()
def fixed_loss(text, tok, fixed, scale) -> float | None:
    texts, targets = fixed
    if targets is None or len(texts) < 2:
        return None
    was = text.training
    text.eval()
    loss = float(info_nce(encode(text, tok, texts), targets, scale))
    text.train(was)
    return round(loss, 5)


# ------------------------------------------------------------------ behaviour towers
def behaviour_finetune(base: str, manifest: dict, data_dir: str, ft: FinetuneConfig, log) -> dict | None:
    """Fine-tunes the user and behaviour towers on the exported events; None when there are too few users."""
    from .behaviour import data, train
    from .behaviour.build import load_content
    from .behaviour.model import BehaviourConfig, SequenceModel
    from .behaviour.synthetic import synthetic_log

    events = os.path.join(data_dir, "events.jsonl")
    if not os.path.exists(events) or os.path.getsize(events) == 0:
        log("behaviour: no events exported; the base's user and behaviour towers are kept")
        return None
    ds = data.load_generic(events, os.path.join(data_dir, "items.jsonl"))
    content = load_content(os.path.join(data_dir, "vectors.jsonl"), ds)
    seqs = data.sequences(ds)
    if len(seqs) < 2:
        log(f"behaviour: {len(seqs)} users with 5 or more engaged events; the base's towers are kept")
        return None
    split = data.leave_one_out(seqs)
    fields = {f.name for f in dataclasses.fields(BehaviourConfig)}
    saved = manifest["training"].get("behaviour") or {}
    cfg = BehaviourConfig(**{k: v for k, v in saved.items() if k in fields})
    cfg = dataclasses.replace(cfg, use_ids=False, lr=ft.behaviour_lr, max_epochs=ft.behaviour_epochs,
                              time_budget_s=ft.behaviour_budget_s, seed=ft.seed)
    n = len(ds.catalogue.ids)
    syn, syn_content = synthetic_log(dim=cfg.dim, seed=cfg.seed)
    syn_train = data.leave_one_out(data.sequences(syn)).train
    k = int(round(ft.behaviour_replay / max(1e-9, 1 - ft.behaviour_replay) * len(split.train)))
    picks = np.random.default_rng(ft.seed).permutation(len(syn_train))[:k]
    replay = [data.Seq(syn_train[i].user + len(ds.users), syn_train[i].items + n, syn_train[i].ts) for i in picks]
    model = SequenceModel(cfg, np.concatenate([content, syn_content]), n + len(syn.catalogue.ids))
    load_tower(model.user, base, "user")
    load_tower(model.behaviour, base, "behaviour")

    def score() -> dict:
        # ranked against the deployment's catalogue only (the replay items are not the platform's)
        ev = SequenceModel(cfg, content, n)
        ev.user.load_state_dict(model.user.state_dict())
        ev.behaviour.load_state_dict(model.behaviour.state_dict())
        ev.eval()
        hr, ndcg = train.evaluate(ev, split.test, cfg, np.random.default_rng(cfg.seed), use_ids=False)
        return {"test_hr_at_10": hr, "test_ndcg_at_10": ndcg}

    previous = score()
    info = train.fit(model, split.train + replay, split.valid, cfg, log=log, select_use_ids=False)
    new = score()
    log(f"behaviour: previous {previous} new {new}")
    metrics = {"dataset": "export-training", "users": len(seqs), "items": n, **new,
               "chance_hr_at_10": 10 / n, "valid_ndcg_at_10": info["valid_ndcg_at_10"], "train_s": info["train_s"],
               "protocol": "leave-one-out of the deployment's users, full ranking against its catalogue with the "
                           "history removed, exported path (content only)"}
    training = {"dataset": "export-training", "replay_users": len(replay), "replay_source": "behaviour.synthetic",
                "fine_tuned_from": manifest["generation"],
                **{k: info[k] for k in ("epochs", "steps", "best_epoch", "best_step", "stopped", "batch_size", "loss")}}
    return {"model": model, "metrics": metrics, "training": training, "previous": previous, "new": new}


# ------------------------------------------------------------------ the new generation
@torch.no_grad()
def write_text(folder: str, cfg, text, tok) -> None:
    ids = torch.ones(2, cfg.max_length, dtype=torch.int64)
    export_onnx(TextExport(text), {"input_ids": ids, "attention_mask": ids.clone()}, os.path.join(folder, "text.onnx"))
    with open(os.path.join(folder, "golden.json")) as f:
        golden = json.load(f)
    golden["text"] = text_golden(folder, text, tok)
    with open(os.path.join(folder, "golden.json"), "w") as f:
        json.dump(golden, f, indent=1)


def forgetting_check(previous: dict, new: dict, margin: float) -> dict:
    """What the base knew, kept? The procedural held-out text->video R@1 (R@10 is near 1 for the base) may drop by
    `margin` at most."""
    p, n = previous["procedural_text_to_video"]["r1"], new["procedural_text_to_video"]["r1"]
    return {"metric": "procedural_text_to_video.r1", "previous": p, "new": n, "margin": margin,
            "within_margin": bool(n >= p - margin)}


def _row(r: dict | None) -> str:
    return " / ".join(f"{r[k]:.3f}" for k in ("r1", "r5", "r10")) if r else "-"


def model_card(name: str, base_name: str, ft: FinetuneConfig, fm: dict, command: str) -> str:
    c, b = fm["content"], fm.get("behaviour")
    lines = [
        f"# Montage model generation `{name}`", "",
        f"`{base_name}` fine-tuned on a deployment's own catalogue and events (`montage export-training`, then "
        "`montage_encoders.finetune`). `video.onnx`, `audio.onnx` (and the enrichment models) are the base's files, "
        "byte for byte, so stored video and audio vectors stay valid; the text tower"
        + (", the user tower and the behaviour tower were" if b else " was")
        + " fine-tuned from the base's weights (read back from its ONNX files and checked against its golden outputs).",
        "", "## Training", "", "```", command, "```", "",
        f"- Export: {fm['data']['videos']} videos ({fm['data']['with_media']} with frames/audio), "
        f"{fm['data']['events']} engaged events, from generation `{fm['data']['generation']}`.",
        f"- Text tower: {c['training'].get('steps', 0)} steps, batch {ft.batch_size} ({c['training'].get('catalogue_per_batch', 0)} "
        f"catalogue captions + {c['training'].get('replay_per_batch', 0)} procedural replay clips), AdamW lr {ft.lr}, "
        f"InfoNCE at temperature {ft.temperature} against the locked towers' vectors; guard against forgetting: "
        f"replay share {ft.replay} of the procedural corpus and an L2 penalty (weight {ft.l2sp}) towards the base's weights.",
    ]
    if b:
        lines.append(f"- Behaviour towers: `behaviour.train.fit` at lr {ft.behaviour_lr}, at most {ft.behaviour_epochs} "
                     f"epochs / {ft.behaviour_budget_s:g} s, early-stopped on the deployment's validation; guard: "
                     f"{b['training']['replay_users']} replayed users of the synthetic log the base was trained on.")
    lines += ["", "## Held-out metrics, base and fine-tuned, same split", "",
              f"Catalogue: {len(fm['heldout_videos'])} held-out videos (sha1 of the id sorts first; never trained on), "
              "each queried by its whole caption against every exported video. Procedural: the corpus test split "
              "(attribute combinations the base never saw), compare.py's captions.", "",
              "| metric | previous (`" + base_name + "`) | new (`" + name + "`) |", "| --- | --- | --- |"]
    for key, label in (("catalogue_text_to_video", "catalogue text→video R@1/5/10"),
                       ("catalogue_trained_titles_to_video", "trained titles→video R@1/5/10 (in-sample)"),
                       ("procedural_text_to_video", "procedural text→video R@1/5/10")):
        lines.append(f"| {label} | {_row(c['previous'].get(key))} | {_row(c['new'].get(key))} |")
    if b:
        for key in ("test_hr_at_10", "test_ndcg_at_10"):
            lines.append(f"| behaviour {key.replace('test_', '').replace('_at_', '@')} | {b['previous'][key]:.3f} | "
                         f"{b['new'][key]:.3f} |")
    f = fm["forgetting"]
    lines += ["", f"Forgetting check: procedural held-out text→video R@1 {f['previous']:.3f} → {f['new']:.3f}, allowed "
              f"drop {f['margin']}: " + ("**within the margin**." if f["within_margin"] else
                                         "**OUTSIDE the margin: the fine-tune forgot what the base knew; do not switch "
                                         "without a reason** (raise `replay` or `l2sp`, lower `lr` or `steps`)."),
              "", "Switch only when the new column is not worse on what matters to the platform; the procedural "
              "row says how much of the base's training was kept.", ""]
    return "\n".join(lines)


def finetune(data_dir: str, base: str, name: str, dest: str, ft: FinetuneConfig, command: str, log) -> str:
    torch.set_num_threads(ft.threads)
    torch.manual_seed(ft.seed)
    with open(os.path.join(base, "manifest.json")) as f:
        manifest = json.load(f)
    exp = read_export(data_dir)
    if int(exp["info"]["dim"]) != int(manifest["dim"]):
        raise ValueError(f"{data_dir} was exported in dimension {exp['info']['dim']}, {base} has {manifest['dim']}")
    videos = [{**v, "captions": v.get("captions") or [v["title"]]} for v in exp["videos"]]
    held = heldout_split([v["item"] for v in videos], ft.heldout)
    cfg, tok, text, diff = load_base_text(base, manifest)
    log(f"base text tower read back from {base}/text.onnx (golden max abs diff {diff:.1e}); "
        f"{len(videos)} videos with media, {len(held)} held out")
    tg = content_targets(base, manifest, videos, ft, log)
    previous = content_metrics(text, tok, videos, held, tg)
    log(f"previous: {json.dumps(previous)}")
    text_training = train_text(text, tok, videos, held, tg, ft, log)
    new = content_metrics(text, tok, videos, held, tg)
    log(f"new: {json.dumps(new)}")
    beh = behaviour_finetune(base, manifest, data_dir, ft, log)

    folder = os.path.join(dest, name)
    if os.path.exists(folder):
        shutil.rmtree(folder)
    shutil.copytree(base, folder)
    write_text(folder, cfg, text, tok)
    fm = {"data": {"generation": exp["info"]["generation"], "videos": len(exp["items"]), "with_media": len(videos),
                   "events": exp["info"].get("events", 0), "exported_at": exp["info"].get("exportedAt")},
          "heldout_videos": sorted(held),
          "content": {"previous": previous, "new": new, "training": text_training},
          "protocol": "previous = the base's weights, new = the fine-tuned ones, measured by the same code on the "
                      "same held-out split"}
    fm["forgetting"] = forgetting_check(previous, new, ft.forget_margin)
    log(f"forgetting: {json.dumps(fm['forgetting'])}")
    if beh:
        fm["behaviour"] = {k: beh[k] for k in ("previous", "new", "training")}
    with open(os.path.join(folder, "README.md"), "w") as f:
        f.write(model_card(name, manifest["generation"], ft, fm, command))
    out = copy.deepcopy(manifest)
    out.update({"generation": name,
                "created_at": datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()})
    out["training"] = {"command": command, "method": "fine-tune of the served generation on export-training data",
                       "fine_tuned_from": manifest["generation"], "config": manifest["training"]["config"],
                       "finetune": dataclasses.asdict(ft), "hardware": hardware(),
                       "base_training": manifest["training"], "behaviour": manifest["training"].get("behaviour")}
    out["metrics"] = {**{k: v for k, v in manifest["metrics"].items() if k != "finetune"},
                      "base_generation": manifest["generation"], "finetune": fm}
    with open(os.path.join(folder, "manifest.json"), "w") as f:
        json.dump(out, f, indent=1)
    if beh:  # rewrites user.onnx, behaviour.onnx, their goldens and the manifest's user sections
        from .behaviour.export import add_to_generation

        add_to_generation(folder, beh["model"], beh["metrics"], beh["training"])
    with open(os.path.join(folder, "manifest.json")) as f:
        out = json.load(f)
    out["files"] = file_hashes(folder)
    with open(os.path.join(folder, "manifest.json.tmp"), "w") as f:
        json.dump(out, f, indent=1)
    os.replace(os.path.join(folder, "manifest.json.tmp"), os.path.join(folder, "manifest.json"))
    return folder


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="the folder `montage export-training` wrote")
    ap.add_argument("--base", required=True, help="the served generation's folder")
    ap.add_argument("--name", required=True, help="the new generation's name")
    ap.add_argument("--dest", default="generations")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a FinetuneConfig field")
    args = ap.parse_args(argv)
    ft = FinetuneConfig()
    for item in args.set:
        key, _, raw = item.partition("=")
        if key not in {f.name for f in dataclasses.fields(FinetuneConfig)}:
            ap.error(f"unknown setting {key!r}")
        setattr(ft, key, type(getattr(ft, key))(raw))
    command = ("cd encoders && OMP_NUM_THREADS=1 /usr/bin/python3 -m montage_encoders.finetune "
               f"--data {args.data} --base {args.base} --name {args.name} --dest {args.dest}"
               + "".join(f" --set {s}" for s in args.set))
    os.makedirs(args.dest, exist_ok=True)
    folder = finetune(args.data, args.base, args.name, args.dest, ft, command, Logger(None))
    print(f"exported {folder}")


if __name__ == "__main__":
    main()
