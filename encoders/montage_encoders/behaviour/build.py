"""Train the behaviour towers and add them to a model generation.

    cd encoders && /usr/bin/python3 -m montage_encoders.behaviour.build \\
        --generation generations/<name>                       # synthetic log (the committed default)

Retrains the user tower (causal, every position, Barlow Twins; see train.py) against that
generation's dimension, rewrites user.onnx, behaviour.onnx, their goldens, the manifest's user
sections and the behaviour section of the generation's README.md (its model card). A few
minutes on one CPU thread; works on any generation folder with a manifest.json.
    cd encoders && /usr/bin/python3 -m montage_encoders.behaviour.build \\
        --generation generations/<name> --events events.jsonl --content vectors.jsonl

`--content` is JSONL {"item": id, "vector": [D floats]}: the items' content vectors in the
generation's joint space (what the service stores as their fused vectors), so the user tower
learns on the same vectors it will read in production. Without --events the towers are trained
on synthetic.synthetic_log (see there for why the committed generation cannot use MovieLens).
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch

from . import data, train
from .export import add_to_generation
from .model import BehaviourConfig, SequenceModel
from .synthetic import synthetic_log

DEFAULT_W_BT = 0.05  # MovieLens-100K validation picked 0.2 (2 seeds) and 0.05 (1 seed), within noise: see BEHAVIOUR.md


def load_content(path: str, ds: data.Dataset) -> np.ndarray:
    vectors = {}
    with open(path) as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                vectors[str(row["item"])] = np.asarray(row["vector"], np.float32)
    missing = [i for i in ds.catalogue.ids if i not in vectors]
    if missing:
        raise ValueError(f"{path}: no content vector for {len(missing)} items, e.g. {missing[:3]}")
    return np.stack([vectors[i] for i in ds.catalogue.ids])


def build(gen_dir: str, ds: data.Dataset, content: np.ndarray, cfg: BehaviourConfig, log=print) -> dict:
    """Train on leave-one-out (every position, early stopping on the exported path's validation
    NDCG@10), report test HR/NDCG@10 (full ranking, exported path), export, rewrite the card."""
    seqs = data.sequences(ds)
    split = data.leave_one_out(seqs)
    torch.manual_seed(cfg.seed)
    model = SequenceModel(cfg, content, len(ds.catalogue.ids))
    info = train.fit(model, split.train, split.valid, cfg, log=log, select_use_ids=False)
    hr, ndcg = train.evaluate(model, split.test, cfg, np.random.default_rng(cfg.seed), use_ids=False)
    metrics = {"dataset": ds.name, "users": len(seqs), "items": len(ds.catalogue.ids),
               "test_hr_at_10": hr, "test_ndcg_at_10": ndcg, "chance_hr_at_10": 10 / len(ds.catalogue.ids),
               "valid_ndcg_at_10": info["valid_ndcg_at_10"], "train_s": info["train_s"],
               "protocol": "leave-one-out, full ranking with history removed, exported path (content only)"}
    training = {"dataset": ds.name, **{k: info[k] for k in ("epochs", "steps", "best_epoch", "best_step",
                                                            "stopped", "batch_size", "loss")}}
    write_card(gen_dir, metrics, training, cfg)  # first: the manifest hashes README.md too
    add_to_generation(gen_dir, model, metrics, training)
    return metrics


CARD_HEADING = "## Behaviour towers (`user.onnx`, `behaviour.onnx`)"


def write_card(gen_dir: str, metrics: dict, training: dict, cfg: BehaviourConfig) -> None:
    """Replace (or append) the behaviour section of the generation's README.md (its model card)."""
    path = os.path.join(gen_dir, "README.md")
    text = open(path, encoding="utf-8").read() if os.path.exists(path) else f"# {os.path.basename(gen_dir)}\n"
    synthetic = metrics["dataset"] == "synthetic"
    source = ("a **synthetic** behaviour log (`montage_encoders.behaviour.synthetic`: users with a few favourite "
              "topics that drift, sessions, items as content vectors around topic prototypes in the joint space), "
              "not on MovieLens: weights fitted to MovieLens may not be redistributed (see `encoders/BEHAVIOUR.md`)"
              if synthetic else f"the events of `{metrics['dataset']}`")
    section = f"""{CARD_HEADING}

Rebuilt by `cd encoders && /usr/bin/python3 -m montage_encoders.behaviour.build --generation generations/{os.path.basename(os.path.normpath(gen_dir))}`
({metrics['train_s']:.0f} s of training on the 2-core CPU). Trained on {source}.
The user tower is a causal Transformer (SASRec-style, {cfg.layers} blocks, width {cfg.width}) over the newest
{cfg.max_items} content vectors (oldest first, left-padded; mask; age in units of {cfg.time_gap_unit_seconds:g} s), trained
on every position of every sequence ({training['loss'].replace('_', ' ')}) with Barlow Twins (weight {cfg.w_bt:g}) on
two augmented views, early-stopped on validation NDCG@10 of the exported path (best epoch {training['best_epoch']} of
{training['epochs']}, {training['stopped'].replace('_', ' ')}). `behaviour.onnx` maps a content vector into the same
space, so items nobody has watched are scored too. Leave-one-out, full ranking, exported path: HR@10
{metrics['test_hr_at_10']:.3f}, NDCG@10 {metrics['test_ndcg_at_10']:.3f} (chance HR@10 {metrics['chance_hr_at_10']:.3f}).
{"As a recommender this is a placeholder until a deployment retrains on its own events (`build --events E.jsonl --content V.jsonl`); " if synthetic else ""}the MovieLens-100K evaluation of the method is in `bench/results/users.json`.
"""
    if CARD_HEADING in text:
        head, rest = text.split(CARD_HEADING, 1)
        nxt = rest.find("\n## ")
        text = head + section + (rest[nxt + 1:] if nxt >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--generation", required=True, help="existing generation folder (has manifest.json)")
    ap.add_argument("--events", help="generic events file; omit for the synthetic log")
    ap.add_argument("--content", help="JSONL {item, vector}: content vectors in the generation's space")
    ap.add_argument("--max-items", type=int, default=200)
    ap.add_argument("--max-epochs", type=int, default=100)
    ap.add_argument("--budget-s", type=float, default=240.0, help="training wall-clock cap")
    ap.add_argument("--w-bt", type=float, default=DEFAULT_W_BT)
    ap.add_argument("--batch-size", type=int, default=64, help="users per step (a small log wants small batches)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    with open(f"{args.generation}/manifest.json") as f:
        dim = int(json.load(f)["dim"])
    if args.events:
        if not args.content:
            ap.error("--events needs --content (the items' vectors in the generation's joint space)")
        ds = data.load_generic(args.events)
        content = load_content(args.content, ds)
    else:
        ds, content = synthetic_log(dim=dim, seed=args.seed)
    # the exported path has no id inputs, and cold start is the point: train content-only
    cfg = BehaviourConfig(dim=dim, max_items=args.max_items, max_epochs=args.max_epochs, time_budget_s=args.budget_s,
                          batch_size=args.batch_size, w_bt=args.w_bt, use_ids=False, seed=args.seed)
    t0 = time.time()
    metrics = build(args.generation, ds, content, cfg)
    print(json.dumps({**metrics, "wall_s": time.time() - t0}, indent=1))


if __name__ == "__main__":
    main()
