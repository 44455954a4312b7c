"""Adapters into ONE generic format, and the evaluation splits of shared/EVALUATION.md.

Generic format (what a deployment exports from its own logs):
- events: JSONL or CSV with `user`, `item`, `timestamp` (unix seconds or ISO 8601) and an optional
  `watch_ratio` (0..1, how much of the video was watched);
- items (optional): JSONL or CSV with `item`, `title`, `tags` or `genres` (list, or a string split
  on `|` / `,`) and `description`;
- users (optional, only for the probes): JSONL or CSV with `user` and one column per attribute.

MovieLens-100K is one adapter into that format, in memory: nothing derived from it is written.
"""
from __future__ import annotations

import csv
from array import array
import datetime as _dt
import json
import os
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Catalogue:
    ids: list[str]  # external item id per internal index
    titles: list[str] | None = None  # None when the dataset has no item metadata
    tags: list[list[str]] | None = None
    descriptions: list[str] | None = None

    @property
    def has_content(self) -> bool:
        return self.titles is not None

    def text(self, i: int) -> str:
        """The string the text tower reads for item i: title, tags, description."""
        parts = [self.titles[i], " ".join(self.tags[i]), self.descriptions[i]]
        return " ".join(p for p in parts if p).strip()


@dataclass
class Dataset:
    name: str
    catalogue: Catalogue
    users: list[str]
    user: np.ndarray  # (E,) int64 user index
    item: np.ndarray  # (E,) int64 item index
    ts: np.ndarray  # (E,) int64 unix seconds
    watch_ratio: np.ndarray  # (E,) float32
    attributes: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (U,) class index, -1 unknown
    classes: dict[str, list[str]] = field(default_factory=dict)  # name -> class names


@dataclass
class Seq:
    """One user's interactions, oldest first (ties broken by item index)."""

    user: int
    items: np.ndarray  # (L,) int64
    ts: np.ndarray  # (L,) int64


@dataclass
class Query:
    """Rank `target` given the history; `now` is the target's time (ages are measured to it)."""

    user: int
    items: np.ndarray
    ts: np.ndarray
    target: int
    now: int


# ------------------------------------------------------------------ reading files
def _rows(path: str) -> list[dict]:
    return list(_iter_rows(path))


def _iter_rows(path: str):
    """One dict per row, streamed (an events file of 10M rows is never a list of dicts)."""
    if path.endswith((".jsonl", ".ndjson", ".json")):
        with open(path, encoding="utf-8") as f:
            yield from (json.loads(line) for line in f if line.strip())
        return
    with open(path, encoding="utf-8", newline="") as f:
        yield from csv.DictReader(f)


def _timestamp(value) -> int:
    if isinstance(value, (int, float)):
        return int(value)
    text = str(value).strip()
    try:
        return int(float(text))
    except ValueError:
        stamp = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=_dt.timezone.utc)
        return int(stamp.timestamp())


def _tag_list(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    sep = "|" if "|" in str(value) else ","
    return [t.strip() for t in str(value).split(sep) if t.strip()]


def _catalogue_from_rows(rows: list[dict]) -> Catalogue:
    ids = [str(r["item"]) for r in rows]
    return Catalogue(
        ids=ids,
        titles=[str(r.get("title") or "") for r in rows],
        tags=[_tag_list(r.get("tags", r.get("genres"))) for r in rows],
        descriptions=[str(r.get("description") or "") for r in rows],
    )


def _attributes(rows: list[dict], users: list[str]) -> tuple[dict, dict]:
    index = {u: i for i, u in enumerate(users)}
    names = [k for k in (rows[0] if rows else {}) if k != "user"]
    attributes, classes = {}, {}
    for name in names:
        values = sorted({str(r[name]) for r in rows if r.get(name) not in (None, "")})
        lookup = {v: c for c, v in enumerate(values)}
        labels = np.full(len(users), -1, dtype=np.int64)
        for r in rows:
            u = index.get(str(r["user"]))
            if u is not None and r.get(name) not in (None, ""):
                labels[u] = lookup[str(r[name])]
        attributes[name], classes[name] = labels, values
    return attributes, classes


def load_generic(events: str, items: str | None = None, users: str | None = None,
                 name: str | None = None) -> Dataset:
    """Events (+ optional item metadata, + optional user attributes) -> Dataset.

    Items that appear in events but not in the metadata file still get an index (with empty
    text), so every event is kept.
    """
    catalogue = _catalogue_from_rows(_rows(items)) if items else Catalogue(ids=[])
    item_index = {it: i for i, it in enumerate(catalogue.ids)}
    user_index: dict[str, int] = {}
    # typed arrays, not lists of Python ints: 10M events take 280 MB, not over a gigabyte
    u_col, i_col, t_col, w_col = array("q"), array("q"), array("q"), array("f")
    for n, r in enumerate(_iter_rows(events)):
        for key in ("user", "item", "timestamp"):
            if r.get(key) in (None, ""):
                raise ValueError(f"{events}: event {n} has no {key!r}")
        it = str(r["item"])
        if it not in item_index:
            item_index[it] = len(catalogue.ids)
            catalogue.ids.append(it)
            if catalogue.has_content:
                catalogue.titles.append("")
                catalogue.tags.append([])
                catalogue.descriptions.append("")
        u_col.append(user_index.setdefault(str(r["user"]), len(user_index)))
        i_col.append(item_index[it])
        t_col.append(_timestamp(r["timestamp"]))
        w = r.get("watch_ratio")
        w_col.append(1.0 if w in (None, "") else float(w))
    if not u_col:
        raise ValueError(f"{events}: no events")
    user_ids = list(user_index)
    attributes, classes = _attributes(_rows(users), user_ids) if users else ({}, {})
    return Dataset(name or dataset_name(events), catalogue, user_ids,
                   np.frombuffer(u_col, np.int64).copy(), np.frombuffer(i_col, np.int64).copy(),
                   np.frombuffer(t_col, np.int64).copy(), np.frombuffer(w_col, np.float32).copy(), attributes, classes)


def dataset_name(path: str) -> str:
    """A dataset is named after its folder (`events.csv` says nothing); a bare file by its stem."""
    folder = os.path.basename(os.path.dirname(os.path.abspath(path)))
    return folder or os.path.splitext(os.path.basename(path))[0]


# ------------------------------------------------------------------ MovieLens-100K
# MovieLens-1M's age buckets, the ones the user-classification literature uses
AGE_EDGES = [18, 25, 35, 45, 50, 56]
AGE_NAMES = ["<18", "18-24", "25-34", "35-44", "45-49", "50-55", "56+"]


def _ml_catalogue(root: str) -> Catalogue:
    with open(os.path.join(root, "u.genre"), encoding="latin-1") as f:
        genres = [line.split("|")[0] for line in f if line.strip()]
    ids, titles, tags = [], [], []
    with open(os.path.join(root, "u.item"), encoding="latin-1") as f:
        for line in f:
            parts = line.rstrip("\n").split("|")
            if len(parts) < 5 + len(genres):
                continue
            flags = parts[5:5 + len(genres)]
            ids.append(parts[0])
            titles.append(parts[1])  # "Toy Story (1995)": the year is in the title
            tags.append([g for g, flag in zip(genres, flags) if flag == "1" and g != "unknown"])
    return Catalogue(ids=ids, titles=titles, tags=tags, descriptions=[""] * len(ids))


def load_movielens(root: str) -> Dataset:
    """u.data / u.item (latin-1) / u.user (MovieLens-100K), or ratings.dat / movies.dat / users.dat
    (MovieLens-1M and -10M, `::`-separated) -> Dataset; the rating becomes a watch-ratio stand-in."""
    if os.path.exists(os.path.join(root, "ratings.dat")):
        return _load_movielens_dat(root)
    catalogue = _ml_catalogue(root)
    item_index = {it: i for i, it in enumerate(catalogue.ids)}
    raw = np.loadtxt(os.path.join(root, "u.data"), dtype=np.int64)  # user item rating ts
    with open(os.path.join(root, "u.user"), encoding="latin-1") as f:
        people = [line.strip().split("|") for line in f if line.strip()]
    user_ids = [p[0] for p in people]
    user_index = {u: i for i, u in enumerate(user_ids)}
    ages = np.array([int(p[1]) for p in people])
    occupations = sorted({p[3] for p in people})
    attributes = {
        "gender": np.array([0 if p[2] == "F" else 1 for p in people], np.int64),
        "age": np.searchsorted(AGE_EDGES, ages, side="right").astype(np.int64),
        "occupation": np.array([occupations.index(p[3]) for p in people], np.int64),
    }
    classes = {"gender": ["F", "M"], "age": AGE_NAMES, "occupation": occupations}
    return Dataset(
        os.path.basename(os.path.normpath(root)), catalogue, user_ids,
        np.array([user_index[str(u)] for u in raw[:, 0]], np.int64),
        np.array([item_index[str(i)] for i in raw[:, 1]], np.int64),
        raw[:, 3].astype(np.int64), (raw[:, 2] / 5.0).astype(np.float32), attributes, classes)


ML1M_AGES = {"1": 0, "18": 1, "25": 2, "35": 3, "45": 4, "50": 5, "56": 6}  # the age codes are AGE_NAMES


def _dat(path: str) -> list[list[str]]:
    with open(path, encoding="latin-1") as f:
        return [line.rstrip("\n").split("::") for line in f if line.strip()]


def _load_movielens_dat(root: str) -> Dataset:
    """MovieLens-1M / -10M: movies.dat `id::Title (year)::Genre|Genre`, ratings.dat
    `user::item::rating::ts`, users.dat (1M only) `user::gender::age code::occupation code::zip`."""
    movies = _dat(os.path.join(root, "movies.dat"))
    catalogue = Catalogue(ids=[m[0] for m in movies], titles=[m[1] for m in movies],
                          tags=[[g for g in m[2].split("|") if g and g != "(no genres listed)"] for m in movies],
                          descriptions=[""] * len(movies))
    item_index = {it: i for i, it in enumerate(catalogue.ids)}
    users_of, items_of, ratings, times = [], [], [], []
    with open(os.path.join(root, "ratings.dat"), encoding="latin-1") as f:
        for line in f:
            parts = line.rstrip("\n").split("::")
            if len(parts) >= 4 and parts[1] in item_index:
                users_of.append(parts[0])
                items_of.append(item_index[parts[1]])
                ratings.append(float(parts[2]))
                times.append(int(parts[3]))
    attributes, classes = {}, {}
    people_path = os.path.join(root, "users.dat")
    if os.path.exists(people_path):
        people = _dat(people_path)
        user_ids = [p[0] for p in people]
        attributes = {"gender": np.array([0 if p[1] == "F" else 1 for p in people], np.int64),
                      "age": np.array([ML1M_AGES.get(p[2], -1) for p in people], np.int64),
                      "occupation": np.array([int(p[3]) for p in people], np.int64)}
        classes = {"gender": ["F", "M"], "age": AGE_NAMES, "occupation": [str(i) for i in range(21)]}
        known = set(user_ids)
        user_ids += sorted({u for u in users_of if u not in known}, key=lambda u: (len(u), u))
        for name in attributes:  # users without a users.dat row: unknown (-1)
            attributes[name] = np.r_[attributes[name], np.full(len(user_ids) - len(people), -1)]
    else:
        user_ids = sorted(set(users_of), key=lambda u: (len(u), u))
    user_index = {u: i for i, u in enumerate(user_ids)}
    return Dataset(os.path.basename(os.path.normpath(root)), catalogue, user_ids,
                   np.array([user_index[u] for u in users_of], np.int64), np.array(items_of, np.int64),
                   np.array(times, np.int64), (np.array(ratings) / 5.0).astype(np.float32), attributes, classes)


# ------------------------------------------------------------------ splits (EVALUATION.md)
def sequences(ds: Dataset, min_watch_ratio: float = 0.0, min_len: int = 5) -> list[Seq]:
    """Engaged events per user ordered by (time, item); users with < min_len dropped (5-core)."""
    keep = ds.watch_ratio >= min_watch_ratio
    u, it, ts = ds.user[keep], ds.item[keep], ds.ts[keep]
    order = np.lexsort((it, ts, u))  # by user, then time, then item id
    u, it, ts = u[order], it[order], ts[order]
    bounds = np.flatnonzero(np.diff(u)) + 1
    out = []
    for a, b in zip(np.r_[0, bounds], np.r_[bounds, len(u)]):
        if b - a >= min_len:
            out.append(Seq(int(u[a]), it[a:b].copy(), ts[a:b].copy()))
    return out


@dataclass
class Split:
    train: list[Seq]  # training histories (the model never sees the held-out targets)
    valid: list[Query]
    test: list[Query]


def _query(s: Seq, j: int) -> Query:
    return Query(s.user, s.items[:j], s.ts[:j], int(s.items[j]), int(s.ts[j]))


def leave_one_out(seqs: list[Seq]) -> Split:
    """Last interaction = test target, the one before = validation target, the rest = train."""
    train = [Seq(s.user, s.items[:-2], s.ts[:-2]) for s in seqs]
    return Split(train, [_query(s, len(s.items) - 2) for s in seqs],
                 [_query(s, len(s.items) - 1) for s in seqs])


def pick_cold_items(seqs: list[Seq], fraction: float, seed: int) -> np.ndarray:
    """A seeded random `fraction` of the items that occur in the data."""
    items = np.unique(np.concatenate([s.items for s in seqs]))
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(items, size=int(round(fraction * len(items))), replace=False))


def cold_split(seqs: list[Seq], cold: np.ndarray) -> tuple[Split, list[Query]]:
    """Training data without any cold interaction (leave-one-out on what remains, for model
    selection), and the cold test: each user's last interaction with a cold item, with the
    full history before it (cold items in it enter by content only)."""
    is_cold = np.zeros(int(max(s.items.max() for s in seqs)) + 1, bool)
    is_cold[cold] = True
    warm = []
    for s in seqs:
        keep = ~is_cold[s.items]
        if keep.sum() >= 3:
            warm.append(Seq(s.user, s.items[keep], s.ts[keep]))
    tests = []
    for s in seqs:
        hits = np.flatnonzero(is_cold[s.items])
        if len(hits) and hits[-1] > 0:
            tests.append(_query(s, int(hits[-1])))
    return leave_one_out(warm), tests
