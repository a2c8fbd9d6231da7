#!/usr/bin/env bash
# The scale benchmark: installs what it needs when missing (GNU time from Debian, matplotlib from
# PyPI, Garage), builds the release binary, then runs benches/scale.py. Arguments pass through:
#   benches/scale.sh [--sizes 10,100,1000,2000] [--shards 1,2,4,8] [--shard-repos N] [--no-grow]
# Garage listens on GARAGE_S3_PORT/GARAGE_RPC_PORT/GARAGE_WEB_PORT (default 39200-39202), its data
# under $CARGO_TARGET_DIR/bench/scale (default target/).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/time ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq time >/dev/null
fi
python3 -c 'import matplotlib' 2>/dev/null || pip install -q matplotlib
tests/garage.sh install
cargo build --release --locked --bin regpress
exec python3 benches/scale.py "$@"
