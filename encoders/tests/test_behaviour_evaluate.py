"""The evaluation command end to end on a tiny generic events file with no item metadata:
the warm rows are there, the cold rows are absent, and users.json has the issue's layout."""
import json

from montage_encoders.behaviour import evaluate
from montage_encoders.behaviour.synthetic import synthetic_log


def test_events_without_metadata_get_the_warm_rows(tmp_path):
    ds, _ = synthetic_log(n_users=40, n_items=30, dim=8, topics=3, seed=1, mean_events=12)
    events = tmp_path / "events.csv"
    lines = ["user,item,timestamp,watch_ratio"]
    lines += [f"{ds.users[u]},{ds.catalogue.ids[i]},{t},0.8" for u, i, t in zip(ds.user, ds.item, ds.ts)]
    events.write_text("\n".join(lines) + "\n")
    out = tmp_path / "users.json"
    evaluate.main(["--events", str(events), "--seeds", "2", "--steps", "8", "--no-scratch",
                   "--out", str(out), "--quiet"])
    result = json.loads(out.read_text())
    assert result["seeds"] == 2 and result["dataset"] == "events.csv"
    rows = result["rows"]
    assert {"random", "popularity", "dual_encoder", "barlow_twins", "next_item"} <= set(rows)
    assert "barlow_twins_content" not in rows  # no content: the model is ID-based
    for name in ("random", "popularity", "dual_encoder", "barlow_twins"):
        for metric in ("ndcg_at_10", "hr_at_10"):
            stat = rows[name][metric]
            assert set(stat) == {"mean", "std"} and 0.0 <= stat["mean"] <= 1.0
    assert rows["dual_encoder"]["cold_recall_at_10"] is None and rows["barlow_twins"]["cold_ndcg_at_10"] is None
    assert rows["barlow_twins"]["train_s"] > 0 and rows["barlow_twins"]["peak_rss_mb"] > 0
    assert rows["barlow_twins"]["probe"] is None  # no user attributes given
