"""The generic adapter on a tiny events file made here, and the evaluation splits."""
import json

import numpy as np
import pytest

from montage_encoders.behaviour import data


def _write(tmp_path):
    events = tmp_path / "events.jsonl"
    rows = []
    for u in range(4):
        n = 6 if u < 3 else 4  # user 3 has 4 events: dropped by the 5-core filter
        for k in range(n):
            rows.append({"user": f"u{u}", "item": f"v{(u + k) % 7}", "timestamp": 1000 + 10 * k,
                         "watch_ratio": 0.9})
    rows.append({"user": "u0", "item": "v6", "timestamp": "1970-01-01T00:16:40Z"})  # ISO, = 1000: tie
    events.write_text("\n".join(json.dumps(r) for r in rows))
    items = tmp_path / "items.csv"
    items.write_text("item,title,tags,description\n" +
                     "\n".join(f"v{i},Video {i},cats|music,a clip" for i in range(6)) + "\n")
    users = tmp_path / "users.csv"
    users.write_text("user,country\nu0,fr\nu1,de\nu2,fr\n")
    return events, items, users


def test_generic_adapter_reads_events_items_and_users(tmp_path):
    events, items, users = _write(tmp_path)
    ds = data.load_generic(str(events), str(items), str(users))
    assert len(ds.user) == 23 and ds.catalogue.has_content
    assert ds.catalogue.ids[:6] == [f"v{i}" for i in range(6)] and "v6" in ds.catalogue.ids
    assert ds.catalogue.tags[0] == ["cats", "music"] and ds.catalogue.text(0) == "Video 0 cats music a clip"
    assert ds.ts.max() == 1050 and float(ds.watch_ratio.min()) == pytest.approx(0.9)
    assert ds.classes["country"] == ["de", "fr"] and list(ds.attributes["country"]) == [1, 0, 1, -1]  # u3 has no label


def test_sequences_order_ties_by_item_and_five_core(tmp_path):
    events, items, _ = _write(tmp_path)
    ds = data.load_generic(str(events), str(items))
    seqs = data.sequences(ds)
    assert sorted(s.user for s in seqs) == [0, 1, 2]  # u3 (4 events) dropped
    s0 = next(s for s in seqs if s.user == 0)
    assert (np.diff(s0.ts) >= 0).all()
    tied = s0.items[s0.ts == 1000]  # v0 and v6 both at t=1000: ordered by item index
    assert list(tied) == sorted(tied)


def test_leave_one_out_and_cold_split(tmp_path):
    events, items, _ = _write(tmp_path)
    seqs = data.sequences(data.load_generic(str(events), str(items)))
    split = data.leave_one_out(seqs)
    for s, tr, va, te in zip(seqs, split.train, split.valid, split.test):
        assert list(tr.items) == list(s.items[:-2])
        assert va.target == s.items[-2] and te.target == s.items[-1]
        assert list(te.items) == list(s.items[:-1]) and te.now == s.ts[-1]
    cold = data.pick_cold_items(seqs, 0.3, seed=0)
    assert len(cold) == 2 and (data.pick_cold_items(seqs, 0.3, seed=0) == cold).all()
    cold_train, tests = data.cold_split(seqs, cold)
    for s in cold_train.train:
        assert not np.isin(s.items, cold).any()
    for q in tests:
        s = next(x for x in seqs if x.user == q.user)
        j = len(q.items)
        assert q.target in cold and s.items[j] == q.target
        assert not np.isin(s.items[j + 1:], cold).any()  # the user's LAST cold interaction


def test_movielens_1m_dat_layout(tmp_path):
    """ratings.dat / movies.dat / users.dat (`::`, latin-1) read like MovieLens-100K."""
    (tmp_path / "movies.dat").write_text("1::Toy Story (1995)::Animation|Children's|Comedy\n"
                                         "2::Jumanji (1995)::Adventure\n3::Amélie (2001)::Comedy|Romance\n",
                                         encoding="latin-1")
    ratings = [f"{u}::{i}::{(u + i) % 5 + 1}::{978300000 + 10 * k}" for k, (u, i) in
               enumerate([(1, 1), (1, 2), (1, 3), (2, 3), (2, 1), (7, 2)])]
    (tmp_path / "ratings.dat").write_text("\n".join(ratings) + "\n", encoding="latin-1")
    (tmp_path / "users.dat").write_text("1::F::1::10::48067\n2::M::56::16::70072\n", encoding="latin-1")
    ds = data.load_movielens(str(tmp_path))
    assert ds.catalogue.ids == ["1", "2", "3"] and ds.catalogue.titles[2] == "Amélie (2001)"
    assert ds.catalogue.tags[0] == ["Animation", "Children's", "Comedy"]
    assert ds.users == ["1", "2", "7"]  # user 7 has ratings but no users.dat row
    assert list(ds.attributes["gender"]) == [0, 1, -1] and list(ds.attributes["age"]) == [0, 6, -1]
    assert list(ds.attributes["occupation"]) == [10, 16, -1]
    assert len(ds.item) == 6 and ds.item[3] == 2 and ds.user[5] == 2
    assert abs(float(ds.watch_ratio[0]) - 0.6) < 1e-6  # rating 3 of 5
