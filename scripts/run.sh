#!/usr/bin/env bash
# One command to set up and run Montage on one machine: installs what is missing, then the API and a worker.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# exec the pinned Node 24 itself (not npm), so SIGTERM reaches the service and it drains and closes cleanly.
exec node_modules/.bin/node src/cli/main.ts start
