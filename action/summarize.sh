#!/usr/bin/env bash
# The GitHub Action's summarize step (action.yml). It runs even when an earlier step failed
# (`if: ${{ !cancelled() }}`), so a failed publish still gets a job summary: the report's table
# when the publish wrote one, else "failed (exit N), see the log". The action still fails: this
# step succeeds, the failed step's failure stands.
#   REPORT     the publish step's output `report` (the file exists only after a publish succeeded)
#   EXIT_CODE  the publish step's output `exit-code` (empty: the publish step did not run)
set -euo pipefail

if [ -z "${EXIT_CODE:-}" ]; then
  # The install step failed, so regpress may not be on PATH: say so in plain Markdown.
  printf '### ❌ regpress did not publish\n\nAn earlier step failed: see the log of "Install regpress".\n' \
    >>"$GITHUB_STEP_SUMMARY"
  exit 0
fi
args=(summarize --exit-code "$EXIT_CODE" --summary "$GITHUB_STEP_SUMMARY" --output "$GITHUB_OUTPUT")
if [ -n "${REPORT:-}" ] && [ -f "$REPORT" ]; then
  args+=(--report "$REPORT")
fi
regpress "${args[@]}"
