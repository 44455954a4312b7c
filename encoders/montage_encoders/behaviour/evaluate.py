"""The one evaluation command of the behaviour side (protocols: shared/EVALUATION.md).

    cd encoders && /usr/bin/python3 -m montage_encoders.behaviour.evaluate \\
        --movielens ../../shared/data/ml-100k --seeds 3
    cd encoders && /usr/bin/python3 -m montage_encoders.behaviour.evaluate \\
        --events my/events.jsonl [--items my/items.jsonl] [--users my/users.csv] --seeds 3

Prints a table and writes bench/results/users.json. Rows: random, popularity, dual_encoder
(ID-only next item, sampled softmax), next_item (content + ids, next item only: the ablation
that shows what Barlow Twins adds), barlow_twins (content + ids, BT + next item),
barlow_twins_content (the same model through the exported path: content vectors only, no ids)
and, for the probes, scratch (same encoder trained end to end on the labels) and majority.
"""
from __future__ import annotations

import argparse
import json
import os
import threading
import time
from dataclasses import replace

import numpy as np
import torch

from . import data, probe, train
from .model import BehaviourConfig, BehaviourModel

METRICS = ("ndcg_at_10", "hr_at_10", "cold_recall_at_10", "cold_ndcg_at_10")


class PeakRSS:
    """Peak resident memory of this process (MB) while the block runs, sampled every 20 ms."""

    def __enter__(self):
        self.peak, self._stop = _rss_mb(), threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self):
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, _rss_mb())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_mb())


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def ranking(scores: torch.Tensor, queries: list[data.Query], seed: int) -> tuple[float, float]:
    return train.hr_ndcg(train.rank_of_targets(scores, queries, np.random.default_rng(seed)))


def popularity_scores(seqs: list[data.Seq], n_items: int, n_queries: int) -> torch.Tensor:
    counts = np.bincount(np.concatenate([s.items for s in seqs]), minlength=n_items).astype(np.float64)
    return torch.as_tensor(counts)[None].expand(n_queries, n_items)


def profile_queries(seqs: list[data.Seq]) -> list[data.Query]:
    """Each user's whole history, "now" = their last event: the vector the probes read."""
    return [data.Query(s.user, s.items, s.ts, -1, int(s.ts[-1])) for s in seqs]


def train_model(cfg: BehaviourConfig, content, n_items: int, split: data.Split, log) -> tuple:
    model = BehaviourModel(cfg, content, n_items)
    with PeakRSS() as mem:
        info = train.fit(model, split.train, split.valid, cfg, log=log)
    info["peak_rss_mb"] = mem.peak
    return model, info


def probes_for(vectors: np.ndarray, ds: data.Dataset, users: np.ndarray, seed: int) -> dict:
    return {name: probe.probe_accuracies(vectors, labels[users], len(ds.classes[name]), seed)
            for name, labels in ds.attributes.items()}


def scratch_probes(cfg: BehaviourConfig, content, ds: data.Dataset, seqs, seed: int, steps: int) -> dict:
    """The same encoder trained end to end on each labelled subset (EVALUATION.md)."""
    queries = profile_queries(seqs)
    users = np.array([s.user for s in seqs])
    out = {}
    for name, all_labels in ds.attributes.items():
        labels, k = all_labels[users], len(ds.classes[name])
        tr, te = probe.stratified_split(labels, seed)
        out[name] = {}
        for f in probe.FRACTIONS:
            sub = probe.label_subset(tr, f, seed)
            model = BehaviourModel(replace(cfg, w_bt=0.0), content, len(ds.catalogue.ids))
            model.set_known(np.unique(np.concatenate([s.items for s in seqs])))
            head = train.fit_classifier(model, [queries[i] for i in sub], labels[sub], k, cfg, steps=steps)
            with torch.no_grad():
                hs = [train.history(queries[i].items, queries[i].ts, queries[i].now, cfg) for i in te]
                idx, age, _ = train.collate([(h[0], h[1], None) for h in hs], cfg.max_items)
                pred = head(model.encode(idx, age)[1]).argmax(1).numpy()
            out[name][str(f)] = float((pred == labels[te]).mean())
    return out


def majority_probes(ds: data.Dataset, users: np.ndarray, seed: int) -> dict:
    out = {}
    for name, all_labels in ds.attributes.items():
        labels = all_labels[users]
        tr, te = probe.stratified_split(labels, seed)
        out[name] = {}
        for f in probe.FRACTIONS:
            sub = probe.label_subset(tr, f, seed)
            out[name][str(f)] = float((labels[te] == np.bincount(labels[sub]).argmax()).mean())
    return out


def run_seed(ds: data.Dataset, seqs: list[data.Seq], base: BehaviourConfig, seed: int, args, log) -> dict:
    """Every row for one seed: {row: {metric: value, probe: {...}, train_s, peak_rss_mb}}."""
    from .content import TextSettings, fit_content_vectors

    n_items, users = len(ds.catalogue.ids), np.array([s.user for s in seqs])
    split = data.leave_one_out(seqs)
    cold_items = data.pick_cold_items(seqs, args.cold_fraction, seed)
    cold_split, cold_test = data.cold_split(seqs, cold_items)
    rows: dict[str, dict] = {}
    rng = np.random.default_rng(seed)
    nq, cq = len(split.test), len(cold_test)
    rand, rand_cold = torch.as_tensor(rng.random((nq, n_items))), torch.as_tensor(rng.random((cq, n_items)))
    rows["random"] = dict(zip(METRICS, (*ranking(rand, split.test, seed)[::-1], *ranking(rand_cold, cold_test, seed))))
    pop = ranking(popularity_scores(split.train, n_items, nq), split.test, seed)
    pop_cold = ranking(popularity_scores(cold_split.train, n_items, cq), cold_test, seed)
    rows["popularity"] = dict(zip(METRICS, (pop[1], pop[0], *pop_cold)))
    if ds.attributes:
        rows["majority"] = {"probe": majority_probes(ds, users, seed)}

    content, text_s = None, 0.0
    if ds.catalogue.has_content:
        t0 = time.time()
        content = fit_content_vectors(ds.catalogue, base.dim, seed, TextSettings(steps=args.text_steps), log=log)
        text_s = time.time() - t0
    variants = {"dual_encoder": replace(base, id_only=True, use_ids=False, w_bt=0.0, seed=seed),
                "barlow_twins": replace(base, w_bt=args.w_bt, seed=seed)}
    if not args.no_ablation:
        variants["next_item"] = replace(base, w_bt=0.0, seed=seed)
    profiles = profile_queries(seqs)
    for name, cfg in variants.items():
        log(f"[seed {seed}] {name}: training (warm)")
        model, info = train_model(cfg, content, n_items, split, log)
        paths = [(name, True)] + ([(name + "_content", False)] if name == "barlow_twins" and content is not None else [])
        for row, use_ids in paths:
            hr, ndcg = ranking(train.model_scores(model, split.test, cfg, use_ids), split.test, seed)
            vecs = train.user_vectors(model, profiles, cfg, use_ids).numpy()
            extra_s = text_s if content is not None and not cfg.id_only else 0.0
            rows[row] = {"ndcg_at_10": ndcg, "hr_at_10": hr, "train_s": info["train_s"] + extra_s,
                         "peak_rss_mb": info["peak_rss_mb"], "best_step": info["best_step"],
                         "probe": probes_for(vecs, ds, users, seed) if ds.attributes else None}
        if content is None or cfg.id_only:
            continue  # an ID-only model cannot score items it never saw: no cold row
        log(f"[seed {seed}] {name}: training (cold items held out)")
        model, info = train_model(cfg, content, n_items, cold_split, log)
        for row, use_ids in paths:
            hr, ndcg = ranking(train.model_scores(model, cold_test, cfg, use_ids), cold_test, seed)
            rows[row].update(cold_recall_at_10=hr, cold_ndcg_at_10=ndcg)
    if ds.attributes and not args.no_scratch:
        log(f"[seed {seed}] scratch: end-to-end classifiers on the labels")
        t0 = time.time()
        with PeakRSS() as mem:
            rows["scratch"] = {"probe": scratch_probes(replace(base, seed=seed), content, ds, seqs, seed,
                                                       args.scratch_steps)}
        rows["scratch"].update(train_s=time.time() - t0, peak_rss_mb=mem.peak)
    return rows


def _stat(values: list[float]) -> dict:
    v = np.array(values, dtype=np.float64)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0}


def aggregate(per_seed: list[dict]) -> dict:
    """Seeds -> {row: {metric: {mean, std}, probe: {attr: {fraction: {mean, std}}}, train_s, peak_rss_mb}}."""
    rows = {}
    for name in per_seed[0]:
        runs = [r[name] for r in per_seed]
        row = {m: _stat([r[m] for r in runs]) if m in runs[0] else None for m in METRICS}
        probes = runs[0].get("probe")
        row["probe"] = None if not probes else {
            a: {f: _stat([r["probe"][a][f] for r in runs]) for f in probes[a]} for a in probes}
        for key in ("train_s", "peak_rss_mb"):
            row[key] = float(np.mean([r[key] for r in runs])) if key in runs[0] else None
        rows[name] = row
    return rows


def _fmt(stat: dict | None) -> str:
    return "-" if stat is None else f"{stat['mean']:.4f}±{stat['std']:.4f}"


def table(rows: dict) -> str:
    lines = ["| model | NDCG@10 | HR@10 | cold Recall@10 | cold NDCG@10 | train s (CPU) | peak RSS MB |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, r in rows.items():
        t = "-" if r["train_s"] is None else f"{r['train_s']:.0f}"
        m = "-" if r["peak_rss_mb"] is None else f"{r['peak_rss_mb']:.0f}"
        lines.append(f"| {name} | " + " | ".join(_fmt(r[k]) for k in METRICS) + f" | {t} | {m} |")
    probed = {n: r["probe"] for n, r in rows.items() if r.get("probe")}
    if probed:
        attrs = list(next(iter(probed.values())))
        fracs = list(next(iter(probed.values()))[attrs[0]])
        head = [f"{a} {float(f) * 100:g}%" for a in attrs for f in fracs]
        lines += ["", "| probe accuracy | " + " | ".join(head) + " |", "| --- |" + " --- |" * len(head)]
        for name, p in probed.items():
            cells = [f"{p[a][f]['mean']:.3f}±{p[a][f]['std']:.3f}" for a in attrs for f in fracs]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--movielens", help="folder with u.data, u.item, u.user (MovieLens-100K)")
    src.add_argument("--events", help="generic events file (JSONL or CSV: user, item, timestamp[, watch_ratio])")
    ap.add_argument("--items", help="item metadata (JSONL or CSV: item, title, tags|genres, description)")
    ap.add_argument("--users", help="user attributes for the probes (JSONL or CSV: user, <attribute>...)")
    ap.add_argument("--min-watch-ratio", type=float, default=0.0, help="events below it are not engagement")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=400, help="training steps per model")
    ap.add_argument("--text-steps", type=int, default=80, help="text tower steps on the catalogue")
    ap.add_argument("--scratch-steps", type=int, default=60)
    ap.add_argument("--w-bt", type=float, default=0.5, help="weight of the Barlow Twins term")
    ap.add_argument("--cold-fraction", type=float, default=0.2)
    ap.add_argument("--no-ablation", action="store_true", help="skip the next_item ablation row")
    ap.add_argument("--no-scratch", action="store_true")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads; 1 on a shared 2-core box (2 threads spin against other jobs)")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "../../../bench/results/users.json"))
    ap.add_argument("--quiet", action="store_true")
    return ap.parse_args(argv)


def main(argv=None) -> dict:
    args = parse(argv)
    torch.set_num_threads(args.threads)
    log = (lambda *a: None) if args.quiet else (lambda *a: print(*a, flush=True))
    if args.movielens:
        ds = data.load_movielens(args.movielens)
    else:
        ds = data.load_generic(args.events, args.items, args.users)
    seqs = data.sequences(ds, args.min_watch_ratio)
    base = BehaviourConfig(steps=args.steps, eval_every=max(1, min(100, args.steps // 4)))
    t0 = time.time()
    per_seed = [run_seed(ds, seqs, base, seed, args, log) for seed in range(args.seeds)]
    result = {
        "dataset": ds.name, "seeds": args.seeds, "users": len(seqs), "items": len(ds.catalogue.ids),
        "interactions": int(sum(len(s.items) for s in seqs)), "rows": aggregate(per_seed),
        "config": {**base.to_dict(), "w_bt": args.w_bt, "text_steps": args.text_steps,
                   "scratch_steps": args.scratch_steps, "threads": args.threads},
        "protocol": PROTOCOL, "wall_s": time.time() - t0,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out + ".tmp", "w") as f:
        json.dump(result, f, indent=1)
    os.replace(args.out + ".tmp", args.out)
    print(table(result["rows"]))
    return result


PROTOCOL = (
    "shared/EVALUATION.md: 5-core on users; leave-one-out (last = test, second last = validation, "
    "model selection = best validation NDCG@10 checkpoint); full ranking against every item with "
    "the user's history removed, ties broken at random; cold: 20% of items (seeded) removed from "
    "training, test = each user's last interaction with a cold item, history before it as input; "
    "probes: 80/20 stratified split, L2 logistic regression on 1/5/10/100% of the training users; "
    "std = sample std over seeds. Deviations: the user tower reads the newest 32 items; train_s "
    "of content rows includes fitting the text tower on the catalogue; peak_rss_mb is this "
    "process's peak RSS while that model trained (torch baseline included); barlow_twins_content "
    "is the exported path (content vectors only, no item ids), dual_encoder has no cold row "
    "(an ID-only model cannot score items it never saw).")


if __name__ == "__main__":
    main()
