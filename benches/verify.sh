#!/usr/bin/env bash
# Verification benchmark: regpress vs sigstore-python (bundle verification) and spdx-tools (SBOM
# validation), as ratios in one run. Installs both in a venv under target/bench, builds the
# release binary, then runs benches/verify_bench.py. Arguments pass through: [--runs N]
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/bench/venv
[ -x "$venv/bin/sigstore" ] && [ -x "$venv/bin/pyspdxtools" ] || {
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "sigstore==4.5.1" "spdx-tools==0.8.5"
}
[ -x /usr/bin/time ] || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null; }
cargo build --release --locked --bin regpress
exec python3 benches/verify_bench.py "$@"
