#!/usr/bin/env bash
# Run the regpress edge Worker in workerd (Miniflare) on 127.0.0.1:PORT, with a local R2 bucket
# loaded from a `regpress publish --to SITE_DIR` directory site, until killed (SIGTERM/SIGINT).
#
#   edge/dev.sh SITE_DIR PORT [--private PATTERN]... [--jwks FILE_OR_URL] [--service NAME]
#               [--realm URL] [--auth URL] [--events URL] [--events-blobs] [--prefix PREFIX]
#
# --private: a repository pattern needing a registry token (repeatable; auth.toml globs).
# --jwks: regpress auth's JWKS, a file or a URL fetched (and cached) by the Worker.
# --service, --realm: as in auth.toml (default 127.0.0.1:PORT and http://127.0.0.1:PORT/token).
# --auth: the handler's base URL; /token and the JWKS are proxied to it.
# --events: POST pull events here (REGPRESS_EVENTS_TOKEN, when set, as the Bearer token);
#   --events-blobs sends blob pulls too. --prefix: load the site under this key prefix.
# It prints one line with the URL once every object is loaded. Needs `npm ci` in edge/ first.
set -euo pipefail
edge="$(cd "$(dirname "$0")" && pwd)"
if [ ! -x "$edge/node_modules/.bin/esbuild" ]; then
  echo "edge/dev.sh: run 'npm ci' in $edge first (tests/run.sh does)" >&2
  exit 2
fi
build="$(mktemp -d "${TMPDIR:-/tmp}/regpress-edge.XXXXXX")"
trap 'rm -rf "$build"' EXIT
# Bundled as wrangler deploy bundles it: one ES module for workerd, one for node.
"$edge/node_modules/.bin/esbuild" "$edge/src/index.ts" --bundle --format=esm --target=es2022 \
  --log-level=warning --outfile="$build/worker.js"
"$edge/node_modules/.bin/esbuild" "$edge/scripts/dev.ts" --bundle --platform=node --format=esm \
  --packages=external --log-level=warning --outfile="$edge/node_modules/.cache/regpress-edge-dev.$$.mjs"
runner="$edge/node_modules/.cache/regpress-edge-dev.$$.mjs"
trap 'rm -rf "$build" "$runner"' EXIT
node "$runner" "$build/worker.js" "$@" &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null; wait "$pid"; exit 0' TERM INT
wait "$pid"
