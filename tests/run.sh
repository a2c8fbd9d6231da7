#!/usr/bin/env bash
# The one test command (README, .ci/run): installs what the tests need when it is missing
# (skopeo, nginx and strace from Debian; Garage with cargo install, ~8 minutes once), starts a
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
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  # RUNLEVEL=1: install the packages without starting their daemons (nginx on port 80); the
  # tests run their own nginx on free loopback ports.
  $sudo env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y -qq "${missing[@]}" >/dev/null
fi

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
