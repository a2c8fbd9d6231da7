#!/usr/bin/env bash
# The GitHub Action's install step (action.yml): put regpress on the job's PATH.
#
#   REGPRESS_VERSION       a release, e.g. 0.2.0: used as is when `regpress --version` already says
#                          so, else downloaded (regpress-<target>.tar.gz, checked against its
#                          .sha256), else built. Empty: build the action's own checkout.
#   REGPRESS_RELEASES_URL  where releases are, as <url>/v<version>/regpress-<target>.tar.gz
#                          (default: https://github.com/<owner>/<repo>/releases/download of the
#                          action itself); for mirrors and GitHub Enterprise Server.
# Builds use `cargo install --locked --path "$GITHUB_ACTION_PATH"` into $RUNNER_TEMP/regpress.
set -euo pipefail

version="${REGPRESS_VERSION#v}"
root="$RUNNER_TEMP/regpress"
bin="$root/bin"

# Add $bin to the PATH of the job's later steps and say what is there.
use_bin() {
  echo "$bin" >>"$GITHUB_PATH"
  echo "installed $("$bin/regpress" --version) at $bin/regpress"
}

if [ -n "$version" ]; then
  if [ "$(regpress --version 2>/dev/null || true)" = "regpress $version" ]; then
    echo "regpress $version is already installed at $(command -v regpress)"
    exit 0
  fi
  case "$(uname -s)/$(uname -m)" in
    Linux/x86_64) target=x86_64-unknown-linux-gnu ;;
    Linux/aarch64 | Linux/arm64) target=aarch64-unknown-linux-gnu ;;
    Darwin/arm64) target=aarch64-apple-darwin ;;
    Darwin/x86_64) target=x86_64-apple-darwin ;;
    *) target="" ;;
  esac
  releases="${REGPRESS_RELEASES_URL:-}"
  # github.action_repository is empty inside composite actions (actions/runner#2525); the
  # runner checks actions out to .../_actions/<owner>/<repo>/<ref>.
  if [ -z "$releases" ] && [[ "$GITHUB_ACTION_PATH" == */_actions/*/*/* ]]; then
    rest="${GITHUB_ACTION_PATH##*/_actions/}"
    IFS=/ read -r owner repo _ <<<"$rest"
    releases="https://github.com/$owner/$repo/releases/download"
  fi
  if [ -n "$target" ] && [ -n "$releases" ]; then
    url="$releases/v$version/regpress-$target.tar.gz"
    tmp="$(mktemp -d "$RUNNER_TEMP/regpress-download.XXXXXX")"
    if curl -fsSL --retry 3 -o "$tmp/regpress.tar.gz" "$url" &&
      curl -fsSL --retry 3 -o "$tmp/regpress.tar.gz.sha256" "$url.sha256"; then
      want="$(cut -d' ' -f1 <"$tmp/regpress.tar.gz.sha256")"
      have="$( (sha256sum 2>/dev/null || shasum -a 256) <"$tmp/regpress.tar.gz" | cut -d' ' -f1)"
      if [ "$want" != "$have" ]; then
        echo "::error::$url has sha256 $have, but its .sha256 says $want: not installing it"
        exit 1
      fi
      mkdir -p "$bin"
      tar -xzf "$tmp/regpress.tar.gz" -C "$bin" regpress
      rm -rf "$tmp"
      use_bin
      exit 0
    fi
    rm -rf "$tmp"
    echo "::warning::no regpress $version release at $url: building the action's checkout with cargo install instead"
  fi
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "::error::cargo is not installed: add a Rust toolchain step (e.g. dtolnay/rust-toolchain@stable) before this action, or give a released version"
  exit 1
fi
cargo install --locked --path "$GITHUB_ACTION_PATH" --root "$root"
use_bin
if [ -n "$version" ] && [ "$("$bin/regpress" --version)" != "regpress $version" ]; then
  echo "::warning::asked for regpress $version, built $("$bin/regpress" --version) from the action's checkout"
fi
