#!/usr/bin/env bash
# Edge benchmark: manifest GET and blob GET through the edge Worker in workerd (edge/dev.sh),
# public and private, against `regpress serve` straight and nginx + auth_request to
# `regpress auth /check`. Installs wrk and nginx from Debian when missing, runs npm ci in edge/,
# builds the release binary, then runs benches/edge_bench.py.
# Arguments pass through: [--duration S] [--rounds N] [--connections N] [--threads N] [--warmup S]
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
python3 -c 'import cryptography' 2>/dev/null || pip install -q cryptography
[ -x edge/node_modules/.bin/miniflare ] || (cd edge && npm ci --no-audit --no-fund --loglevel=error)
cargo build --release --locked --bin regpress
exec python3 benches/edge_bench.py "$@"
