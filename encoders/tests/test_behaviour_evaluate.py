"""The evaluation command end to end on a tiny generic events file with no item metadata:
the warm rows are there, the cold rows are absent, and users.json has the issue's layout."""
import json

from montage_encoders.behaviour import evaluate
from montage_encoders.behaviour.synthetic import synthetic_log


def test_events_without_metadata_get_the_warm_rows(tmp_path):
    ds, _ = synthetic_log(n_users=40, n_items=30, dim=8, topics=3, seed=1, mean_events=12)
    (tmp_path / "shop").mkdir()
    events = tmp_path / "shop" / "events.csv"
    lines = ["user,item,timestamp,watch_ratio"]
    lines += [f"{ds.users[u]},{ds.catalogue.ids[i]},{t},0.8" for u, i, t in zip(ds.user, ds.item, ds.ts)]
    events.write_text("\n".join(lines) + "\n")
    out = tmp_path / "users.json"
    evaluate.main(["--events", str(events), "--seeds", "2", "--jobs", "2", "--max-epochs", "2", "--max-items", "16",
                   "--out", str(out), "--quiet"])
    result = json.loads(out.read_text())
    assert result["seeds"] == 2 and result["dataset"] == "shop"  # named after its folder
    rows = result["rows"]
    assert {"random", "popularity", "dual_encoder", "sasrec", "barlow_twins", "next_item"} <= set(rows)
    assert "barlow_twins_content" not in rows  # no content: the model is ID-based
    for name in ("random", "popularity", "dual_encoder", "sasrec", "barlow_twins"):
        for metric in ("ndcg_at_10", "hr_at_10"):
            stat = rows[name][metric]
            assert set(stat) == {"mean", "std"} and 0.0 <= stat["mean"] <= 1.0
    assert rows["dual_encoder"]["cold_recall_at_10"] is None and rows["barlow_twins"]["cold_ndcg_at_10"] is None
    for name in ("dual_encoder", "sasrec", "next_item", "barlow_twins"):
        row = rows[name]
        assert row["train_s"] > 0 and row["peak_rss_mb"] > 0 and 1 <= row["best_epoch"] <= row["epochs"] <= 2
        assert row["best_step"] >= 1 and row["steps"] >= row["best_step"]
    assert all(w > 0 for w in result["bt_weight"]["chosen_by_seed"].values())
    assert set(result["bt_weight"]["valid_ndcg_at_10_by_seed"]["0"]) == {"0.0", "0.05", "0.2"}
    assert rows["barlow_twins"]["probe"] is None  # no user attributes given


def test_default_output_is_not_the_committed_results_file(monkeypatch, tmp_path):
    args = evaluate.parse(["--events", "x.csv"])
    assert args.out is None  # main() writes var/behaviour/<dataset>.json unless --out names a file
