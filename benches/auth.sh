#!/usr/bin/env bash
# Private-repository benchmark: the pull-path overhead of `regpress auth serve /check` behind
# nginx's auth_request, against nginx alone and nginx's auth_basic, and the handler's GET /token
# rate with an OIDC ID token, as ratios in one run. Installs wrk and nginx from Debian when
# missing, builds the release binary, then runs benches/auth_bench.py.
# Arguments pass through: [--duration S] [--connections N] [--threads N] [--warmup S]
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
python3 -c 'import cryptography' 2>/dev/null || pip install -q cryptography
cargo build --release --locked --bin regpress
exec python3 benches/auth_bench.py "$@"
