"""The one evaluation command of the behaviour side (protocols: shared/EVALUATION.md).

    cd encoders && OMP_NUM_THREADS=1 /usr/bin/python3 -m montage_encoders.behaviour.evaluate \\
        --movielens ../../shared/data/ml-100k --out ../bench/results/users.json
    cd encoders && /usr/bin/python3 -m montage_encoders.behaviour.evaluate \\
        --events my/events.jsonl [--items my/items.jsonl] [--users my/users.csv]

Prints a table and writes var/behaviour/<dataset>.json (bench/results/users.json only when --out
says so). Rows: random, popularity, dual_encoder (ID-only: running mean of item embeddings, no
attention), sasrec (ids only, the published causal recipe), next_item (Montage's tower: content
projection + id embedding, causal, next item only: the ablation that shows what Barlow Twins
adds), barlow_twins (the same + Barlow Twins, weight tuned on validation over a small grid),
barlow_twins_content (the exported path: content vectors only, no ids, its own checkpoint) and,
for the probes, majority. Every model is trained on every position (full-catalogue softmax, or
sampled softmax with logQ above 16,384 items), early-stopped on validation NDCG@10, and capped by
its share of what is left of --budget-min when it starts; fewer seeds than asked run when one
epoch is too slow for all of them to converge, so data of MovieLens-1M size finishes within the
hour with no option changed. Without item text the Montage rows run id-only (the content vector is a free embedding).
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
from .model import BehaviourConfig, SequenceModel

METRICS = ("ndcg_at_10", "hr_at_10", "cold_recall_at_10", "cold_ndcg_at_10")
RUN_KEYS = ("train_s", "peak_rss_mb", "epochs", "steps", "best_epoch", "best_step", "w_bt")
BT_GRID = (0.05, 0.2)  # Barlow Twins weights tried on each seed's validation (0 = the next_item row)


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


def random_ranks(queries: list[data.Query], n_items: int, rng: np.random.Generator) -> np.ndarray:
    """Random scores with random tie-break = the target uniform among the items it competes with."""
    competitors = np.array([n_items - len(np.unique(np.append(q.items, q.target))) for q in queries])
    return 1 + np.floor(rng.random(len(queries)) * (competitors + 1)).astype(np.int64)


def popularity_ranks(seqs: list[data.Seq], n_items: int, queries: list[data.Query], seed: int) -> np.ndarray:
    counts = np.bincount(np.concatenate([s.items for s in seqs]), minlength=n_items).astype(np.float64)
    return train.rank_batched(torch.ones(len(queries), 1), torch.as_tensor(counts)[:, None], queries,
                              np.random.default_rng(seed))


def profile_queries(seqs: list[data.Seq]) -> list[data.Query]:
    """Each user's whole history, "now" = their last event: the vector the probes read."""
    return [data.Query(s.user, s.items, s.ts, -1, int(s.ts[-1])) for s in seqs]


def probes_for(vectors: np.ndarray, ds: data.Dataset, users: np.ndarray, seed: int) -> dict:
    return {name: probe.probe_accuracies(vectors, labels[users], len(ds.classes[name]), seed)
            for name, labels in ds.attributes.items()}


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


def fit_row(cfg: BehaviourConfig, content, n_items: int, split: data.Split, log, content_path: bool = False):
    """Seed first, then weights (a row's result does not depend on the rows before it)."""
    torch.manual_seed(cfg.seed)
    model = SequenceModel(cfg, content, n_items)
    with PeakRSS() as mem:
        info = train.fit(model, split.train, split.valid, cfg, log=log, select_use_ids=not content_path)
    info["peak_rss_mb"] = mem.peak
    return model, info


def score_row(model, info, cfg, split, ds, users, profiles, seed, use_ids=True, cold=None) -> dict:
    hr, ndcg = train.evaluate(model, split.test, cfg, np.random.default_rng(seed), use_ids)
    row = {"ndcg_at_10": ndcg, "hr_at_10": hr, "valid_ndcg_at_10": info["valid_ndcg_at_10"],
           **{k: info[k] for k in ("train_s", "peak_rss_mb", "epochs", "steps", "best_epoch", "best_step")},
           "w_bt": cfg.w_bt, "stopped": info["stopped"], "loss": info["loss"]}
    if ds.attributes:
        vecs = train.user_vectors(model, profiles, cfg, use_ids).numpy()
        row["probe"] = probes_for(vecs, ds, users, seed)
    return row


# ------------------------------------------------------------------ the plan: one fit = one task
# A seed's rows are independent fits except the two that reuse the Barlow Twins weight chosen on
# that seed's validation (the exported content path and its cold-item variant): those are queued
# when the seed's grid is done. Fits run --jobs at a time in forked processes (the data and the
# content vectors are shared), longest first; each gets, when it starts, its share of what is
# left of the run's budget, so time a fit leaves unused (early stopping) goes to the later ones.
FIRST = ("sasrec", "bt", "next_item", "dual_encoder")  # longest first
_SHARED: dict = {}


def _split(seed: int) -> tuple[data.Split, list[data.Query], np.ndarray]:
    seqs = _SHARED["seqs"]
    return data.leave_one_out(seqs), profile_queries(seqs), np.array([s.user for s in seqs])


def run_task(task: tuple) -> tuple:
    """(seed, name, w_bt, budget_s) -> (seed, name, w_bt, row). Runs in a worker process."""
    seed, name, w_bt, budget_s = task
    sh = _SHARED
    torch.set_num_threads(sh["args"].threads)
    ds, content, log, n_items = sh["ds"], sh["content"], sh["log"], len(sh["ds"].catalogue.ids)
    split, profiles, users = _split(seed)
    kind = {"dual_encoder": "dual", "sasrec": "sasrec"}.get(name, "montage")
    cfg = replace(sh["base"], kind=kind, w_bt=w_bt, seed=seed, time_budget_s=budget_s)
    log(f"[seed {seed}] {name}" + (f" w_bt={w_bt}" if kind == "montage" else "") + f" ({budget_s:.0f}s at most)")
    if name != "barlow_twins_content":
        model, info = fit_row(cfg, content, n_items, split, log)
        return seed, name, w_bt, score_row(model, info, cfg, split, ds, users, profiles, seed)
    # the exported path (content only) with the checkpoint chosen by its own validation
    cfg = replace(cfg, use_ids=False)
    model, info = fit_row(cfg, content, n_items, split, log, content_path=True)
    row = score_row(model, info, cfg, split, ds, users, profiles, seed, False)
    if sh["args"].cold_fraction > 0:
        seqs = sh["seqs"]
        cold_items = data.pick_cold_items(seqs, sh["args"].cold_fraction, seed)
        cold_split, cold_test = data.cold_split(seqs, cold_items)
        log(f"[seed {seed}] barlow_twins_content, cold items held out")
        model, _ = fit_row(cfg, content, n_items, cold_split, log, content_path=True)
        hr, ndcg = train.evaluate(model, cold_test, cfg, np.random.default_rng(seed), use_ids=False)
        row.update(cold_recall_at_10=hr, cold_ndcg_at_10=ndcg)
    return seed, name, w_bt, row


def baseline_rows(seed: int) -> dict:
    """random, popularity (and their cold variants) and the majority class: no training."""
    sh = _SHARED
    ds, seqs, n_items = sh["ds"], sh["seqs"], len(sh["ds"].catalogue.ids)
    split, _, users = _split(seed)
    rows = {"random": dict(zip(("hr_at_10", "ndcg_at_10"),
                               train.hr_ndcg(random_ranks(split.test, n_items, np.random.default_rng(seed))))),
            "popularity": dict(zip(("hr_at_10", "ndcg_at_10"),
                                   train.hr_ndcg(popularity_ranks(split.train, n_items, split.test, seed))))}
    if ds.attributes:
        rows["majority"] = {"probe": majority_probes(ds, users, seed)}
    if sh["content"] is not None and sh["args"].cold_fraction > 0:
        cold_split, cold_test = data.cold_split(seqs, data.pick_cold_items(seqs, sh["args"].cold_fraction, seed))
        pop = train.hr_ndcg(popularity_ranks(cold_split.train, n_items, cold_test, seed))
        rows["popularity"].update(cold_recall_at_10=pop[0], cold_ndcg_at_10=pop[1])
        rnd = train.hr_ndcg(random_ranks(cold_test, n_items, np.random.default_rng(seed)))
        rows["random"].update(cold_recall_at_10=rnd[0], cold_ndcg_at_10=rnd[1])
    return rows


def task_weight(name: str, content: bool, cold: bool) -> float:
    """Relative cost of a task in fits (the content task trains twice with a cold-item split)."""
    return 1.0 + float(cold) if name == "barlow_twins_content" else 1.0


def schedule(seeds: list[int], jobs: int, deadline: float, log) -> tuple[list[dict], dict, dict]:
    """Run every seed's fits, `jobs` at a time; returns (rows per seed, chosen w_bt, grids)."""
    sh = _SHARED
    has_content, cold = sh["content"] is not None, sh["args"].cold_fraction > 0
    queue = [(s, n, w) for s in seeds for n in FIRST
             for w in ((BT_GRID if n == "bt" else (0.0,)))]
    queue = [(s, "barlow_twins" if n == "bt" else n, w) for s, n, w in queue]
    queue.sort(key=lambda t: FIRST.index("bt" if t[1] == "barlow_twins" else t[1]))  # longest first, seeds interleaved
    later = {s: [(s, "barlow_twins_content", None)] if has_content else [] for s in seeds}
    pending_grid = {s: 1 + len(BT_GRID) for s in seeds}  # next_item (w=0) + the grid
    rows = {s: baseline_rows(s) for s in seeds}
    grids: dict = {s: {} for s in seeds}
    chosen: dict = {}
    owed = lambda: sum(task_weight(t[1], has_content, cold) for t in queue) + \
        sum(task_weight(t[1], has_content, cold) for s in seeds for t in later[s])  # noqa: E731

    def submit(start):
        seed, name, w = queue.pop(0)
        if name == "barlow_twins_content":
            w = chosen[seed]
        weight = task_weight(name, has_content, cold)
        left = deadline - time.time()
        share = left * jobs / max(1.0, owed() + weight + len(running))
        return start((seed, name, w, max(30.0, min(left, weight * share))))  # never past the deadline

    def done(out):
        seed, name, w, row = out
        if name in ("next_item", "barlow_twins"):
            grids[seed][str(w)] = row["valid_ndcg_at_10"]
            if name == "next_item":
                rows[seed]["next_item"] = row
            else:
                rows[seed].setdefault("_bt", {})[w] = row
            pending_grid[seed] -= 1
            if pending_grid[seed] == 0:  # this seed's weight is known: its content-path task can run
                chosen[seed] = max(BT_GRID, key=lambda x: grids[seed][str(x)])
                rows[seed]["barlow_twins"] = rows[seed].pop("_bt")[chosen[seed]]
                queue.extend(later[seed])
                later[seed] = []
        else:
            rows[seed][name] = row

    running: list = []
    if jobs == 1:
        while queue:
            done(submit(lambda t: run_task(t)))
    else:
        import multiprocessing as mp

        with mp.get_context("fork").Pool(jobs) as pool:
            while queue or running:
                while queue and len(running) < jobs:
                    running.append(submit(lambda t: pool.apply_async(run_task, (t,))))
                running[0].wait(0.5) if running else None
                for r in [r for r in running if r.ready()]:
                    running.remove(r)
                    done(r.get())
    order = ("random", "popularity", "majority", "dual_encoder", "sasrec", "next_item", "barlow_twins",
             "barlow_twins_content")
    per_seed = [{k: rows[s][k] for k in order if k in rows[s]} for s in seeds]
    return per_seed, {str(s): chosen[s] for s in seeds}, {str(s): grids[s] for s in seeds}


def _stat(values: list[float]) -> dict:
    v = np.array(values, dtype=np.float64)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0}


def aggregate(per_seed: list[dict]) -> dict:
    """Seeds -> {row: {metric: {mean, std}, probe: {attr: {fraction: {mean, std}}}, run keys: mean}}."""
    rows = {}
    for name in per_seed[0]:
        runs = [r[name] for r in per_seed]
        row = {m: _stat([r[m] for r in runs]) if m in runs[0] else None for m in (*METRICS, "valid_ndcg_at_10")}
        probes = runs[0].get("probe")
        row["probe"] = None if not probes else {
            a: {f: _stat([r["probe"][a][f] for r in runs]) for f in probes[a]} for a in probes}
        for key in RUN_KEYS:
            row[key] = float(np.mean([r[key] for r in runs])) if key in runs[0] else None
        for key in ("stopped", "loss"):
            if key in runs[0]:
                row[key] = [r[key] for r in runs]
        rows[name] = row
    return rows


def _fmt(stat: dict | None) -> str:
    return "-" if stat is None else f"{stat['mean']:.4f}±{stat['std']:.4f}"


def table(rows: dict) -> str:
    lines = ["| model | NDCG@10 | HR@10 | cold Recall@10 | cold NDCG@10 | epochs (best) | train s (CPU) | peak RSS MB |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, r in rows.items():
        t = "-" if r["train_s"] is None else f"{r['train_s']:.0f}"
        m = "-" if r["peak_rss_mb"] is None else f"{r['peak_rss_mb']:.0f}"
        e = "-" if r["epochs"] is None else f"{r['epochs']:.0f} ({r['best_epoch']:.0f})"
        lines.append(f"| {name} | " + " | ".join(_fmt(r[k]) for k in METRICS) + f" | {e} | {t} | {m} |")
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


CONVERGE_EPOCHS = 30  # MovieLens-100K, batch ~31: every model stopped early within 23-37 epochs


def epoch_seconds(seqs: list[data.Seq], content, base: BehaviourConfig, n_items: int, steps: int = 6) -> float:
    """Time of one epoch of the costliest model (Montage + Barlow Twins), measured on a few steps
    on this machine as it is now (load included)."""
    cfg = replace(base, w_bt=max(BT_GRID), time_budget_s=1e9)
    torch.manual_seed(0)
    model = SequenceModel(cfg, content, n_items).to(cfg.device)
    fit_seqs = [s for s in seqs if len(s.items) >= 4]
    batch = train.auto_batch(fit_seqs, cfg, n_items if n_items <= cfg.full_softmax_max_items else cfg.negatives)
    rng = np.random.default_rng(0)
    picks = [[fit_seqs[i] for i in rng.choice(len(fit_seqs), min(batch, len(fit_seqs)), replace=False)]
             for _ in range(steps + 1)]
    model.set_known(np.arange(n_items))
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sampler = None if n_items <= cfg.full_softmax_max_items else train.Sampler(fit_seqs, n_items, cfg.negatives, rng)
    if sampler is not None:
        sampler.logq = sampler.logq.to(cfg.device)
    model.train()
    for i, chunk in enumerate(picks):
        if i == 1:
            t = time.time()  # the first step pays for allocation
        idx, age, tgt, now_gap = (t.to(cfg.device) for t in train.training_batch(chunk, cfg))
        h = model.states(idx, age)
        ok = tgt >= 0
        loss = train.next_item_loss(model, model.users(h[ok], now_gap[ok]), tgt[ok], sampler)
        loss = loss + cfg.w_bt * train.bt_loss(model, chunk, cfg, rng)
        opt.zero_grad()
        loss.backward()
        opt.step()
    if cfg.device.startswith("cuda"):
        torch.cuda.synchronize()
    return (time.time() - t) / steps * len(fit_seqs) / batch


def affordable_seeds(requested: int, fits: int, jobs: int, seconds: float, epoch_s: float) -> int:
    """As many seeds as the budget lets every fit train ~CONVERGE_EPOCHS epochs (at least one):
    on MovieLens-1M-sized data on 2 cores one converged seed says more than three cut short."""
    per_seed = fits * CONVERGE_EPOCHS * epoch_s / jobs
    return int(np.clip(seconds // max(per_seed, 1e-9), 1, requested))


def n_fits(seeds: int, has_content: bool, cold: bool) -> int:
    """Trained models per seed: 3 rows, the BT grid, content path (+ cold)."""
    return seeds * (3 + len(BT_GRID) + (1 + int(cold) if has_content else 0))


def parse(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--movielens", help="folder with u.data, u.item, u.user (MovieLens-100K) or ratings.dat, "
                                         "movies.dat[, users.dat] (MovieLens-1M/10M)")
    src.add_argument("--events", help="generic events file (JSONL or CSV: user, item, timestamp[, watch_ratio])")
    ap.add_argument("--items", help="item metadata (JSONL or CSV: item, title, tags|genres, description)")
    ap.add_argument("--users", help="user attributes for the probes (JSONL or CSV: user, <attribute>...)")
    ap.add_argument("--min-watch-ratio", type=float, default=0.0, help="events below it are not engagement")
    ap.add_argument("--seeds", type=int, default=3,
                    help="seeds asked for; fewer run when the budget cannot train them all to convergence")
    ap.add_argument("--max-items", type=int, default=200, help="N: newest items the user tower reads")
    ap.add_argument("--max-epochs", type=int, default=200)
    ap.add_argument("--dim", type=int, default=64,
                    help="scoring space of the evaluated models (a generation's is its manifest dim, 256)")
    ap.add_argument("--budget-min", type=float, default=50.0,
                    help="wall-clock budget of the whole run; each fit, when it starts, gets its share of what is "
                         "left (time one leaves unused goes to the next)")
    ap.add_argument("--text-steps", type=int, default=80, help="text tower steps on the catalogue")
    ap.add_argument("--cold-fraction", type=float, default=0.2, help="0 = no cold-item row")
    ap.add_argument("--jobs", type=int, default=0,
                    help="fits trained in parallel processes (each --threads); 0 = one per CPU core")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads; 1 on a shared 2-core box (2 threads spin against other jobs)")
    ap.add_argument("--out", help="results file (default var/behaviour/<dataset>.json; bench/results/users.json "
                                  "is written only when named here)")
    ap.add_argument("--device", default="cpu",
                    help="cuda = the GPU preset for bigger data: fits run one at a time on the GPU (no forked "
                         "processes), the time estimate and the budget as on CPU")
    ap.add_argument("--quiet", action="store_true")
    return ap.parse_args(argv)


def main(argv=None) -> dict:
    args = parse(argv)
    torch.set_num_threads(args.threads)
    log = (lambda *a: None) if args.quiet else (lambda *a: print(*a, flush=True))
    t0 = time.time()
    if args.movielens:
        ds = data.load_movielens(args.movielens)
    else:
        ds = data.load_generic(args.events, args.items, args.users)
    seqs = data.sequences(ds, args.min_watch_ratio)
    content, text_s = None, 0.0
    if ds.catalogue.has_content:
        from .content import TextSettings, fit_content_vectors

        log("content vectors: fitting the text tower on the catalogue")
        content = fit_content_vectors(ds.catalogue, args.dim, 0, TextSettings(steps=args.text_steps), log=log)
        text_s = time.time() - t0
    jobs = 1 if args.device != "cpu" else max(1, args.jobs or (os.cpu_count() or 1))
    if args.device != "cpu" and not torch.cuda.is_available() and args.device.startswith("cuda"):
        raise SystemExit(f"--device {args.device}: torch sees no CUDA device here (torch {torch.__version__})")
    base = BehaviourConfig(dim=args.dim, max_items=args.max_items, max_epochs=args.max_epochs, device=args.device)
    _SHARED.update(ds=ds, seqs=seqs, base=base, args=args, log=log, content=content)
    fits = n_fits(1, content is not None, args.cold_fraction > 0)
    epoch_s = epoch_seconds(seqs, content, base, len(ds.catalogue.ids))
    deadline = t0 + 0.95 * args.budget_min * 60
    seeds = affordable_seeds(args.seeds, fits, jobs, deadline - time.time(), epoch_s)
    log(f"{ds.name}: {len(seqs)} users, {len(ds.catalogue.ids)} items; one epoch ~{epoch_s:.1f}s; "
        f"{seeds} of {args.seeds} seeds x {fits} fits on {jobs} process(es) within {args.budget_min:g} min")
    per_seed, chosen, grids = schedule(list(range(seeds)), jobs, deadline, log)
    result = {
        "dataset": ds.name, "seeds": seeds, "seeds_requested": args.seeds, "epoch_s_estimate": epoch_s, "users": len(seqs), "items": len(ds.catalogue.ids),
        "interactions": int(sum(len(s.items) for s in seqs)), "item_text": content is not None,
        "rows": aggregate(per_seed), "bt_weight": {"chosen_by_seed": chosen, "valid_ndcg_at_10_by_seed": grids},
        "config": {**base.to_dict(), "text_steps": args.text_steps, "text_s": text_s, "threads": args.threads,
                   "budget_min": args.budget_min, "jobs": jobs, "converge_epochs": CONVERGE_EPOCHS},
        "protocol": PROTOCOL, "wall_s": time.time() - t0,
    }
    out = args.out or os.path.join(os.path.dirname(__file__), "../../var/behaviour", f"{ds.name}.json")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out + ".tmp", "w") as f:
        json.dump(result, f, indent=1)
    os.replace(out + ".tmp", out)
    print(table(result["rows"]))
    print(f"BT weight by seed {chosen} (validation NDCG@10 by weight: {grids}); wrote {os.path.abspath(out)}")
    return result


PROTOCOL = (
    "shared/EVALUATION.md: 5-core on users; leave-one-out (last = test, second last = validation, "
    "model selection = best validation NDCG@10 epoch, early stopping); full ranking against every item "
    "with the user's history removed, ties broken at random, scored in user batches x item chunks; "
    "cold: 20% of items (seeded) removed from training, test = each user's last interaction with a "
    "cold item, history before it as input; probes: 80/20 stratified split, L2 logistic regression on "
    "1/5/10/100% of the training users, majority = the most frequent class of the same labelled subset; "
    "std = sample std over seeds. Every model reads the newest max_items items and is trained on every "
    "position (full softmax up to 16,384 items, sampled softmax with 4,096 negatives + logQ above); the BT weight is chosen on "
    "each seed's validation NDCG@10 among the grid; barlow_twins_content is the exported "
    "path (content only, no ids), trained and selected on that path; train_s excludes fitting the text "
    "tower (config.text_s, once per run); peak_rss_mb is this process's peak RSS while that model "
    "trained (torch, data and content vectors included).")


if __name__ == "__main__":
    main()
