"""Train the behaviour towers and add them to a model generation.

    cd encoders && /usr/bin/python3 -m montage_encoders.behaviour.build \\
        --generation generations/<name>                       # synthetic log (the committed default)
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
import time

import numpy as np
import torch

from . import data, train
from .export import add_to_generation
from .model import BehaviourConfig, BehaviourModel
from .synthetic import synthetic_log


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
    """Train on leave-one-out, report test HR/NDCG@10 (full ranking, exported path), export."""
    seqs = data.sequences(ds)
    split = data.leave_one_out(seqs)
    model = BehaviourModel(cfg, content, len(ds.catalogue.ids))
    info = train.fit(model, split.train, split.valid, cfg, log=log)
    rng = np.random.default_rng(cfg.seed)
    scores = train.model_scores(model, split.test, cfg, use_ids=False)
    hr, ndcg = train.hr_ndcg(train.rank_of_targets(scores, split.test, rng))
    metrics = {"dataset": ds.name, "users": len(seqs), "items": len(ds.catalogue.ids),
               "test_hr_at_10": hr, "test_ndcg_at_10": ndcg, "chance_hr_at_10": 10 / len(ds.catalogue.ids),
               "valid_ndcg_at_10": info["valid_ndcg_at_10"], "train_s": info["train_s"],
               "protocol": "leave-one-out, full ranking with history removed, exported path (content only)"}
    add_to_generation(gen_dir, model, metrics, {"dataset": ds.name, "best_step": info["best_step"]})
    return metrics


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--generation", required=True, help="existing generation folder (has manifest.json)")
    ap.add_argument("--events", help="generic events file; omit for the synthetic log")
    ap.add_argument("--content", help="JSONL {item, vector}: content vectors in the generation's space")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--w-bt", type=float, default=1.0)
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
    cfg = BehaviourConfig(dim=dim, steps=args.steps, w_bt=args.w_bt, use_ids=False, seed=args.seed,
                          eval_every=max(1, min(100, args.steps // 4)))
    t0 = time.time()
    metrics = build(args.generation, ds, content, cfg)
    print(json.dumps({**metrics, "wall_s": time.time() - t0}, indent=1))


if __name__ == "__main__":
    main()
