#!/usr/bin/env bash
# The fine-tune on a small catalogue, bounded (~5-10 min on one shared core): N procedural clips titled with words
# the served generation has never linked to them, ingested through `montage ingest`, exported with
# `montage export-training`, fine-tuned with the defaults of montage_encoders.finetune (200 steps, replay 0.5,
# L2-SP 0.01, 400 replay clips, 200 procedural test clips), then loaded by `montage status` on the new generation.
# Writes bench/results/finetune.json (metrics.finetune of the new manifest + timings). Real Redis (fresh prefix,
# removed after), embedded store and data in a temp dir; no events (the behaviour towers are kept).
set -euo pipefail
cd "$(dirname "$0")/.."
N="${N:-20}"
WORDS=(quokka tardigrade axolotl narwhal pangolin okapi dugong kakapo numbat fossa saiga tuatara gharial markhor
       binturong caracal dhole jerboa kinkajou solenodon)
tmp="$(mktemp -d /tmp/montage-ftbench-XXXXXX)"
export MONTAGE_DATA_DIR="$tmp/data" MONTAGE_QUEUE_PREFIX="montage-ftbench-$RANDOM$RANDOM" LOG_LEVEL=silent OMP_NUM_THREADS=1
cleanup() {
  node_modules/.bin/node -e "const {Redis}=require('ioredis');const r=new Redis(process.env.REDIS_URL||'redis://127.0.0.1:6379');
    (async()=>{let c='0';do{const [n,k]=await r.scan(c,'MATCH',process.env.MONTAGE_QUEUE_PREFIX+':*','COUNT',1000);c=n;if(k.length)await r.del(...k);}while(c!=='0');r.disconnect();})()"
  rm -rf "$tmp"
}
trap cleanup EXIT
mkdir -p "$tmp/clips"
for i in $(seq 0 $((N - 1))); do
  (cd encoders && /usr/bin/python3 -m montage_encoders.corpus clip --out "$tmp/clips/${WORDS[$i]}.mp4" --seed $((900 + i)) \
    --seconds 4 --size 128x128 >/dev/null)
done
t0=$(date +%s)
node_modules/.bin/node src/cli/main.ts ingest --tags catalogue "$tmp/clips" 2>/dev/null
t1=$(date +%s)
node_modules/.bin/node src/cli/main.ts export-training "$tmp/export" >"$tmp/export-summary.json" 2>/dev/null
t2=$(date +%s)
base="$(cd encoders && /usr/bin/python3 -c "import os;print(os.path.abspath('generations/'+open('generations/DEFAULT').read().strip()))")"
(cd encoders && /usr/bin/python3 -m montage_encoders.finetune --data "$tmp/export" --base "$base" --name ftbench \
  --dest "$tmp/generations" | tee "$tmp/finetune.log")
t3=$(date +%s)
MONTAGE_GENERATION_DIR="$tmp/generations/ftbench" MONTAGE_QUEUE_PREFIX="$MONTAGE_QUEUE_PREFIX-new" \
  node_modules/.bin/node src/cli/main.ts status 2>/dev/null | grep -q '"generation": "ftbench"'
/usr/bin/python3 - "$tmp" "$N" $((t1 - t0)) $((t2 - t1)) $((t3 - t2)) <<'PY'
import json, os, platform, sys
tmp, n, ingest_s, export_s, finetune_s = sys.argv[1], int(sys.argv[2]), *map(int, sys.argv[3:])
m = json.load(open(os.path.join(tmp, "generations/ftbench/manifest.json")))
out = {"what": f"{n} procedural clips titled with words the base never linked to them, ingested, exported, fine-tuned "
               "with montage_encoders.finetune defaults; previous = the served generation, same split",
       "base": m["training"]["fine_tuned_from"], "finetune_config": m["training"]["finetune"],
       "export": json.load(open(os.path.join(tmp, "export-summary.json"))),
       "seconds": {"ingest": ingest_s, "export_training": export_s, "finetune": finetune_s},
       "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared), OMP_NUM_THREADS=1",
       "loaded_by_runtime": True, "metrics": m["metrics"]["finetune"]}
json.dump(out, open("bench/results/finetune.json", "w"), indent=1)
print(json.dumps({k: out["metrics"]["content"][k] for k in ("previous", "new")}, indent=1))
PY
