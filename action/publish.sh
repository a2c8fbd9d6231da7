#!/usr/bin/env bash
# The GitHub Action's publish step (action.yml): `regpress publish` from the inputs (INPUT_* in
# the environment), with a JSON report in $RUNNER_TEMP whose path becomes the output `report`.
# The output `exit-code` is regpress's exit code (2 for inputs refused here), for the summary.
set -euo pipefail
set -f # tags and extra arguments are split into words, never globbed

fail() {
  echo "::error::$1"
  echo "exit-code=2" >>"$GITHUB_OUTPUT"
  exit 2
}

args=(publish)
if [ -n "${INPUT_CONFIG:-}" ]; then
  if [ -n "${INPUT_LAYOUT:-}${INPUT_REPOSITORY:-}${INPUT_TAGS:-}" ]; then
    fail "give either config, or layout + repository + tags, not both"
  fi
  args+=(--config "$INPUT_CONFIG")
elif [ -n "${INPUT_LAYOUT:-}" ]; then
  [ -n "${INPUT_REPOSITORY:-}" ] || fail "layout needs repository, e.g. repository: acme/base"
  [ -n "${INPUT_TAGS:-}" ] || fail "layout needs tags, e.g. tags: latest"
  args+=("$INPUT_LAYOUT" --repo "$INPUT_REPOSITORY")
  for tag in ${INPUT_TAGS//,/ }; do
    args+=(--tag "$tag")
  done
else
  fail "nothing to publish: give config (a regpress.toml), or layout, repository and tags"
fi
[ -z "${INPUT_TARGET:-}" ] || args+=(--to "$INPUT_TARGET")
[ -z "${INPUT_ENDPOINT:-}" ] || args+=(--endpoint "$INPUT_ENDPOINT")
[ -z "${INPUT_REGION:-}" ] || args+=(--region "$INPUT_REGION")
case "${INPUT_DRY_RUN:-false}" in
  true) args+=(--dry-run) ;;
  false | "") ;;
  *) fail "dry-run must be true or false, not '$INPUT_DRY_RUN'" ;;
esac
dir="$(mktemp -d "$RUNNER_TEMP/regpress.XXXXXX")"
if [ -n "${INPUT_ARGS:-}" ]; then
  # Shell-style words (quotes group), without running anything.
  printf '%s' "$INPUT_ARGS" | xargs printf '%s\0' >"$dir/args" ||
    fail "args: cannot split '$INPUT_ARGS' into words (unbalanced quotes?)"
  mapfile -d '' -t extra <"$dir/args"
  # Only blanks are no words: xargs still runs printf once, which prints one empty word.
  for word in "${extra[@]}"; do
    [ -z "$word" ] || args+=("$word")
  done
fi
report="$dir/report.json"
args+=(--report "$report")
echo "report=$report" >>"$GITHUB_OUTPUT"
echo "regpress ${args[*]}"
code=0
regpress "${args[@]}" || code=$?
echo "exit-code=$code" >>"$GITHUB_OUTPUT"
exit "$code"
