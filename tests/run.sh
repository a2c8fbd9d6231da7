#!/usr/bin/env bash
# The one test command (README, .ci/run): installs what the tests need when it is missing
# (skopeo, nginx, strace, podman, docker.io, containerd and caddy from Debian; the edge Worker's
# npm packages and oras from PyPI; Garage with cargo install, ~8 minutes once), starts a
# one-node Garage, checks formatting and lints, runs every test of every workspace member, and
# stops Garage.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v skopeo >/dev/null 2>&1 || missing+=(skopeo)
# strace kills the publisher at every rename in the directory target's crash test.
command -v strace >/dev/null 2>&1 || missing+=(strace)
# Debian installs nginx in /usr/sbin, which is not on every user's PATH.
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
# tests/edge.rs pulls through the edge Worker with every client: podman, docker (dockerd from
# docker.io, started by the test with its own socket), containerd's ctr; caddy runs the
# Caddyfile example.
command -v podman >/dev/null 2>&1 || missing+=(podman)
command -v dockerd >/dev/null 2>&1 || [ -x /usr/sbin/dockerd ] || missing+=(docker.io)
command -v ctr >/dev/null 2>&1 || missing+=(containerd)
command -v caddy >/dev/null 2>&1 || missing+=(caddy)
command -v node >/dev/null 2>&1 || missing+=(nodejs npm)
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  # RUNLEVEL=1: install the packages without starting their daemons (nginx on port 80); the
  # tests run their own nginx on free loopback ports.
  $sudo env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The edge Worker's toolchain (workerd through Miniflare, esbuild, tsc, eslint, vitest), pinned
# by edge/package-lock.json; oras-py for tests/edge.rs.
[ -x edge/node_modules/.bin/miniflare ] && [ edge/node_modules/.package-lock.json -nt edge/package-lock.json ] ||
  (cd edge && npm ci --no-audit --no-fund --loglevel=error)
python3 -c 'import oras.client' 2>/dev/null || python3 -m pip install -q oras
(cd edge && npm run -s check)

tests/garage.sh install
tests/garage.sh start >/dev/null
trap 'tests/garage.sh stop' EXIT

# --workspace: the publisher and the crates under crates/ (regpress-oci, regpress-auth).
cargo fmt --all --check
cargo clippy --locked --workspace --all-targets -- -D warnings
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --locked --workspace --no-fail-fast
else
  cargo test --locked --workspace --no-fail-fast
fi
