#!/usr/bin/env bash
# Run every fuzz target for a while: fuzz/run.sh [SECONDS_PER_TARGET] [TARGET…]
#
# Installs cargo-fuzz when missing. The machine's stable toolchain builds the instrumented
# targets with RUSTC_BOOTSTRAP=1 (cargo fuzz needs nightly-only flags). New inputs go to
# fuzz/corpus/<target> (not committed), crashes to fuzz/artifacts/<target>; copy a crash into
# fuzz/regressions/<target>/ once it is fixed, and tests/fuzz_corpus.rs replays it from then on.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-60}"
shift || true
targets=("$@")
((${#targets[@]})) || targets=(layout sbom bundle request registry_token id_token)
export PATH="$HOME/.cargo/bin:$PATH" RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
cargo fuzz build -O
status=0
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  echo "== $t: ${seconds}s" >&2
  if ! cargo fuzz run -O "$t" "corpus/$t" "seeds/$t" -- \
    -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 2>"corpus/$t.log"; then
    echo "$t: FAILED, see fuzz/corpus/$t.log and fuzz/artifacts/$t/" >&2
    status=1
  fi
  grep -E 'stat::number_of_executed_units|stat::peak_rss_mb|^Done|cov:' "corpus/$t.log" | tail -3 >&2 || true
done
exit $status
