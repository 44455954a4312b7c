#!/usr/bin/env bash
# Installs what Montage needs on a fresh Debian machine that has Node and npm, and nothing else it needs:
# ffmpeg and redis-server (service), python3 with numpy/torch/onnx/pytest (the corpus generator, training and the
# Python tests), libopenblas0-pthread (fast CPU matmuls for torch), darknet (its sample photographs, used by tests
# and the encoder evaluation). Idempotent: installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || need_apt+=(ffmpeg)
command -v redis-server >/dev/null || need_apt+=(redis-server)
/usr/bin/python3 -c 'import numpy' 2>/dev/null || need_apt+=(python3-numpy)
/usr/bin/python3 -c 'import torch' 2>/dev/null || need_apt+=(python3-torch)
/usr/bin/python3 -c 'import onnx' 2>/dev/null || need_apt+=(python3-onnx)
/usr/bin/python3 -c 'import pytest' 2>/dev/null || need_apt+=(python3-pytest)
dpkg -s libopenblas0-pthread >/dev/null 2>&1 || need_apt+=(libopenblas0-pthread)
# Real photographs for the backbone parity and photo-retrieval tests (Debian ships them with darknet's samples).
[ -f /usr/share/darknet/data/dog.jpg ] || need_apt+=(darknet)
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

# A local Redis when REDIS_URL is unset and none answers on the default port.
if [ -z "${REDIS_URL:-}" ] && ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "setup: starting a local redis-server on 127.0.0.1:6379" >&2
  mkdir -p var/redis
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no --dir "$PWD/var/redis" --logfile "$PWD/var/redis/redis.log"
  for _ in $(seq 1 50); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.1; done
fi
