#!/usr/bin/env bash
# A single-node Garage (S3-compatible object store with a static website endpoint) on loopback,
# for the S3 end-to-end tests and for trying regpress by hand.
#
#   tests/garage.sh install        cargo install garage 2.5.0 when missing (~8 min, then cached)
#   tests/garage.sh start          start the node (idempotent) and print the environment
#   tests/garage.sh bucket NAME    create bucket NAME (idempotent), writable by the test key, website on
#   tests/garage.sh expose NAME    serve bucket NAME on the website endpoint (host "localhost")
#   tests/garage.sh stop           stop the node and delete its data
#   tests/garage.sh env            print the environment (source it: eval "$(tests/garage.sh env)")
#
# S3 API: http://127.0.0.1:$GARAGE_S3_PORT (region "garage"), website: http://localhost:$GARAGE_WEB_PORT.
# State lives in target/garage (override with GARAGE_DIR).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${GARAGE_DIR:-$root/target/garage}"
s3_port="${GARAGE_S3_PORT:-39000}"
rpc_port="${GARAGE_RPC_PORT:-39001}"
web_port="${GARAGE_WEB_PORT:-39002}"
version=2.5.0
key_id=GK0123456789abcdef01234567
secret=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
export PATH="$HOME/.cargo/bin:$PATH"

g() { garage -c "$dir/garage.toml" "$@"; }

print_env() {
  cat <<ENV
export REGPRESS_TEST_S3_ENDPOINT=http://127.0.0.1:$s3_port
export REGPRESS_TEST_WEB=localhost:$web_port
export AWS_ACCESS_KEY_ID=$key_id
export AWS_SECRET_ACCESS_KEY=$secret
export AWS_REGION=garage
ENV
}

install() {
  if ! garage --version 2>/dev/null | grep -q "$version"; then
    echo "installing garage $version (about 8 minutes, once)" >&2
    cargo install garage --locked --version "$version" >&2
  fi
}

running() {
  [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null
}

start() {
  install
  mkdir -p "$dir"
  exec 9>"$dir/lock"
  flock 9
  if running; then print_env; return; fi
  rm -rf "$dir/meta" "$dir/data"
  cat >"$dir/garage.toml" <<TOML
metadata_dir = "$dir/meta"
data_dir = "$dir/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$rpc_port"
rpc_public_addr = "127.0.0.1:$rpc_port"
rpc_secret = "$(printf '%064d' 7)"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$s3_port"

[s3_web]
bind_addr = "127.0.0.1:$web_port"
root_domain = ".web.localhost"
index = "index.html"
TOML
  garage -c "$dir/garage.toml" server >"$dir/log" 2>&1 9>&- &
  echo $! >"$dir/pid"
  for _ in $(seq 100); do
    g status >/dev/null 2>&1 && break
    sleep 0.2
  done
  node="$(g node id -q 2>/dev/null | cut -d@ -f1)"
  g layout assign -z dc1 -c 1G "$node" >/dev/null
  g layout apply --version 1 >/dev/null
  g key import --yes "$key_id" "$secret" -n regpress-test >/dev/null
  for _ in $(seq 100); do
    g bucket list >/dev/null 2>&1 && break
    sleep 0.2
  done
  print_env
}

bucket() {
  local name="$1"
  g bucket info "$name" >/dev/null 2>&1 || g bucket create "$name" >/dev/null
  g bucket allow --read --write --owner "$name" --key "$key_id" >/dev/null
  g bucket website --allow "$name" >/dev/null
}

expose() {
  local name="$1"
  exec 9>"$dir/lock"
  flock 9
  local current
  current="$(cat "$dir/exposed" 2>/dev/null || true)"
  if [ -n "$current" ] && [ "$current" != "$name" ]; then
    # The alias may be gone already (removed by hand): then there is nothing to undo.
    g bucket unalias localhost >/dev/null 2>&1 || true
  fi
  if [ "$current" != "$name" ]; then
    g bucket alias "$name" localhost >/dev/null
    echo "$name" >"$dir/exposed"
  fi
}

stop() {
  if running; then
    kill "$(cat "$dir/pid")" 2>/dev/null || true
    for _ in $(seq 50); do running || break; sleep 0.1; done
  fi
  rm -rf "$dir"
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  bucket) bucket "$2" ;;
  expose) expose "$2" ;;
  stop) stop ;;
  env) print_env ;;
  *) sed -n '2,14p' "$0"; exit 2 ;;
esac
