#!/usr/bin/env bash
# Proves the README's two commands on a machine that has only what the README says a user needs: Debian 12 with
# Node and npm. Builds a Debian 12 root with debootstrap (cached between runs), gives it the host's Node and npm
# (what the README assumes a user has), copies a clean clone of the committed HEAD in, then inside it with chroot:
#   install  scripts/setup.sh with the network (apt and the npm registry), exactly what a user's first run does;
#   test     scripts/test.sh in a network namespace of its own (`unshare --net`, loopback only): no host Redis on
#            127.0.0.1:6379, no registry, no host packages or node_modules (the root has its own /usr);
#   run      scripts/run.sh in a fresh network namespace: waits for /readyz, uploads a generated clip, waits for its
#            job, finds it by a text search, then SIGTERM and a clean exit (status 0).
# Prints the time of each phase and a one-line verdict: `clean-room: PASS ...` or `clean-room: FAIL (<phase>) ...`.
# Slow (15-30 minutes); run it before resolving anything that touches setup, dependencies or the README's commands.
#
#   scripts/clean-room.sh [--keep] [--fresh-base]        (as root)
#     --keep        leave the root in place afterwards (path printed) to look around
#     --fresh-base  rebuild the cached debootstrap base
#     --skip-test   leave out the test phase (to work on this script; the verdict then says PARTIAL, never PASS)
# Environment: MONTAGE_CLEAN_ROOM_CACHE (default ~/.cache/montage-clean-room), DEBIAN_MIRROR
# (default http://deb.debian.org/debian). Needs root, debootstrap, unshare and ip (iproute2) on the host.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

keep=0
fresh=0
skip_test=0
for a in "$@"; do
  case "$a" in
    --keep) keep=1 ;;
    --fresh-base) fresh=1 ;;
    --skip-test) skip_test=1 ;;
    *) echo "usage: scripts/clean-room.sh [--keep] [--fresh-base] [--skip-test]" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "clean-room: needs root (debootstrap, chroot, unshare)" >&2; exit 2; }
for tool in debootstrap unshare ip git node npm; do
  command -v "$tool" >/dev/null || { echo "clean-room: $tool is missing on the host" >&2; exit 2; }
done

CACHE=${MONTAGE_CLEAN_ROOM_CACHE:-$HOME/.cache/montage-clean-room}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
BASE=$CACHE/bookworm-minbase.tar
ROOT=$CACHE/root.$$
APP=/srv/montage
LOG=$CACHE/clean-room.$$.log
mkdir -p "$CACHE"
: >"$LOG"

times=()
phase_start=0
current=""
begin() { current=$1; phase_start=$(date +%s); echo "== clean-room: $1 ($(date +%T))" >&2; }
end() { times+=("$current $(($(date +%s) - phase_start))s"); }
COMMIT_FULL=$(git -C "$REPO" rev-parse HEAD) # the commit cloned into the root, whatever lands meanwhile
COMMIT=${COMMIT_FULL:0:7}
verdict() { # verdict PASS|FAIL detail
  echo "clean-room: $1 ($2) — commit $COMMIT — ${times[*]}"
}

mounted=()
cleanup() {
  local i pid
  # Daemons the phases started inside the root (redis-server from setup.sh) go with it.
  for pid in $(ls /proc | grep -E '^[0-9]+$'); do
    [ "$(readlink "/proc/$pid/root" 2>/dev/null)" = "$ROOT" ] && kill -9 "$pid" 2>/dev/null || true
  done
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[$i]}" 2>/dev/null || true; done
  if [ "$keep" = 1 ]; then echo "clean-room: root kept at $ROOT, log $LOG" >&2; else rm -rf "$ROOT"; fi
}
trap cleanup EXIT
fail() {
  end
  echo "clean-room: last lines of $LOG:" >&2
  tail -60 "$LOG" >&2
  verdict FAIL "$current: $1"
  exit 1
}

# 1. A Debian 12 base, cached as a tarball so every run starts from the same pristine root.
begin base
if [ "$fresh" = 1 ] || [ ! -s "$BASE" ]; then
  tmp=$CACHE/debootstrap.$$
  rm -rf "$tmp"
  debootstrap --variant=minbase bookworm "$tmp" "$MIRROR" >>"$LOG" 2>&1 || fail "debootstrap"
  tar -C "$tmp" -cf "$BASE.tmp" . && mv "$BASE.tmp" "$BASE"
  rm -rf "$tmp"
fi
mkdir -p "$ROOT"
tar -C "$ROOT" -xf "$BASE"
end

# 2. Node and npm, as the README assumes a user has them: the host's, copied in (binary, npm, headers).
begin node
node_bin=$(readlink -f "$(command -v node)")
npm_dir=$(readlink -f "$(dirname "$(readlink -f "$(command -v npm)")")/..")
install -D -m 0755 "$node_bin" "$ROOT/usr/local/bin/node"
mkdir -p "$ROOT/usr/local/lib/node_modules"
cp -a "$npm_dir" "$ROOT/usr/local/lib/node_modules/npm"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$ROOT/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$ROOT/usr/local/bin/npx"
if [ -d /usr/include/node ]; then mkdir -p "$ROOT/usr/local/include" && cp -a /usr/include/node "$ROOT/usr/local/include/node"; fi
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
# Every installed Debian machine names its loopback in /etc/hosts (the installer, cloud and container images write
# it); debootstrap alone does not, and without it `localhost` would go to DNS, which the test phase has none of.
[ -s "$ROOT/etc/hosts" ] || printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$ROOT/etc/hosts"
# The network's TLS trust: where the host reaches the npm registry through a TLS-intercepting proxy, a machine on the
# same network trusts the same authorities. Kept apart from the root's own bundle, which apt may regenerate.
host_ca=${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}
ca_env=()
if [ -s "$host_ca" ]; then
  install -D -m 0644 "$host_ca" "$ROOT/usr/local/share/host-ca/ca.crt"
  ca_env=(NODE_EXTRA_CA_CERTS=/usr/local/share/host-ca/ca.crt npm_config_cafile=/usr/local/share/host-ca/ca.crt)
fi
chroot "$ROOT" /usr/local/bin/node --version >>"$LOG" 2>&1 || fail "node does not run in the root"
end

# 3. A clean clone of what is committed (no working-tree changes, no node_modules, no var/).
begin clone
git clone -q --no-hardlinks "$REPO" "$ROOT$APP" >>"$LOG" 2>&1 || fail "git clone"
git -C "$ROOT$APP" checkout -q "$COMMIT_FULL" >>"$LOG" 2>&1 || fail "git checkout $COMMIT"
end

mount -t proc proc "$ROOT/proc" && mounted+=("$ROOT/proc")
mount --rbind /dev "$ROOT/dev" && mount --make-rslave "$ROOT/dev" && mounted+=("$ROOT/dev")
mount -t tmpfs -o size=2g tmpfs "$ROOT/dev/shm" && mounted+=("$ROOT/dev/shm")
mount -t sysfs sysfs "$ROOT/sys" && mounted+=("$ROOT/sys")
# Runs its arguments in the app folder inside the root, with a clean environment (nothing of the host's).
cat >"$ROOT/usr/local/bin/in-app" <<SH
#!/bin/bash
cd $APP && exec "\$@"
SH
chmod +x "$ROOT/usr/local/bin/in-app"
CA_ENV="${ca_env[*]}"
in_root() {
  # shellcheck disable=SC2086 # CA_ENV is a list of NAME=value words
  chroot "$ROOT" /usr/bin/env -i HOME=/root PATH=/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin \
    LANG=C.UTF-8 TERM=dumb $CA_ENV /usr/local/bin/in-app "$@"
}
exec_in_root() { # the same, replacing the calling shell, so a signal to its pid reaches the command itself
  # shellcheck disable=SC2086
  exec chroot "$ROOT" /usr/bin/env -i HOME=/root PATH=/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin \
    LANG=C.UTF-8 TERM=dumb $CA_ENV /usr/local/bin/in-app "$@"
}
export -f in_root exec_in_root
export ROOT APP CA_ENV

# 4. The README's setup, with the network: apt packages, npm install from the lock file.
begin install
in_root bash scripts/setup.sh >>"$LOG" 2>&1 || fail "scripts/setup.sh"
end

# 5. The README's test command, offline, in its own network namespace (loopback only, nothing of the host's:
#    setup.sh finds no Redis answering there and starts the root's own).
begin test
[ "$skip_test" = 1 ] && echo "(skipped)" >>"$LOG" || unshare --net -- bash -c 'ip link set lo up && in_root bash scripts/test.sh' >>"$LOG" 2>&1 || fail "scripts/test.sh"
node_summary=$(grep -E '^ℹ (pass|fail|skipped) ' "$LOG" | sed 's/^ℹ //' | paste -sd, - || true)
py_summary=$(grep -E '^[0-9]+ passed' "$LOG" | tail -1 | sed 's/ in .*//' || true)
end

# 6. The README's run command, in a fresh network namespace: comes up, answers /readyz, indexes an upload and finds
#    it by search, and exits 0 on SIGTERM after draining.
begin run
cat >"$ROOT/tmp/clean-room-smoke.mjs" <<'JS'
// Waits for /readyz, uploads a generated clip, waits for its job, and finds it by a text search.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
const base = 'http://127.0.0.1:8080';
const until = async (what, ms, fn) => {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`${what}: nothing in ${ms / 1000} s`);
    await new Promise((r) => setTimeout(r, 1000));
  }
};
await until('readyz', 300_000, async () => (await fetch(`${base}/readyz`)).status === 200);
console.log('readyz 200');
execFileSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25:duration=4',
  '-f', 'lavfi', '-i', 'sine=frequency=440:duration=4', '-shortest', '-pix_fmt', 'yuv420p', '/tmp/clean-room.mp4']);
const form = new FormData();
form.append('title', 'clean room test pattern');
form.append('file', new Blob([readFileSync('/tmp/clean-room.mp4')], { type: 'video/mp4' }), 'clean-room.mp4');
const up = await fetch(`${base}/v1/videos`, { method: 'POST', body: form });
const accepted = await up.json();
console.log('upload', up.status, JSON.stringify(accepted));
if (up.status !== 202) process.exit(1);
const job = await until('ingest job', 300_000, async () => {
  const j = await (await fetch(`${base}/v1/jobs/${accepted.jobId}`)).json();
  return j.state === 'completed' || j.state === 'failed' ? j : undefined;
});
console.log('job', JSON.stringify(job));
if (job.state !== 'completed') process.exit(1);
const s = await fetch(`${base}/v1/search`, {
  method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text: 'clean room test pattern', limit: 5 }),
});
const body = await s.json();
console.log('search', s.status, JSON.stringify(body));
if (s.status !== 200 || !body.hits.some((h) => h.videoId === accepted.videoId)) process.exit(1);
JS
unshare --net -- bash -c '
  ip link set lo up
  (exec_in_root bash scripts/run.sh) &
  pid=$!
  in_root node_modules/.bin/node /tmp/clean-room-smoke.mjs || { kill -9 $pid; exit 1; }
  kill -TERM $pid
  wait $pid
' >>"$LOG" 2>&1 || fail "scripts/run.sh"
end

[ "$skip_test" = 1 ] && { verdict PARTIAL "test phase skipped"; exit 0; }
verdict PASS "python: ${py_summary:-?}; node: ${node_summary:-?}"
rm -f "$LOG"
