#!/usr/bin/env bash
# One command to set up and run Montage on one machine: installs what is missing, then the API and a worker.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec npm run --silent montage -- start
