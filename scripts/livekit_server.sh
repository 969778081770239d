#!/usr/bin/env bash
# shellcheck shell=bash
# A real LiveKit server for the platform contract tests, built from the Go module proxy.
#
#   scripts/livekit_server.sh          build when missing, print the binary's path
#   source scripts/livekit_server.sh; gateway_livekit_server
#                                      the same, from scripts/test (exports the path)
#   gateway_livekit_client             npm install livekit-client (pinned) into
#                                      .cache/livekit-client, for the join page (scripts/test,
#                                      scripts/run)
#
# The binary is cached in .cache/livekit/<version>/livekit-server (git-ignored). Set
# GATEWAY_LIVEKIT_SERVER_BIN to an existing livekit-server binary to skip the build (a machine
# without Go). Without Go and without that variable, nothing is built and the LiveKit tests skip
# with the reason.
#
# The pin: v1.13.5. From v1.13.6 on, livekit-server's go.mod replaces pion's webrtc, ice and
# dtls with LiveKit's forks (github.com/livekit/webrtc-pion/v4 v4.2.18-warp.7,
# github.com/livekit/ice/v4 v4.4.0-warp.3, github.com/livekit/dtls/v3 v3.1.5-warp.3), and the
# module proxy refuses those three versions (403 "This module version is not available"), so
# v1.13.11 (the newest it lists) cannot be built from it. v1.13.5 needs only modules it serves.
# Measured on the project's machine (2 cores shared with 7 other busy sessions, load 10-24):
# from empty Go module and build caches, 118 modules downloaded (358 MB) and built in 1785 s
# (about 30 min; 652 MB of build cache); with the build cache empty and part of the modules
# already downloaded, 717 s. Later runs reuse the cached binary (nothing is rebuilt); with a warm Go
# build cache a rebuild is much shorter.

LIVEKIT_SERVER_MODULE=github.com/livekit/livekit-server
LIVEKIT_SERVER_VERSION=v1.13.5

_lk_root() { (cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd); }

gateway_livekit_server() {
  local root cache bin
  root="$(_lk_root)"
  if [ -n "${GATEWAY_LIVEKIT_SERVER_BIN:-}" ]; then
    [ -x "$GATEWAY_LIVEKIT_SERVER_BIN" ] \
      || { printf 'error: GATEWAY_LIVEKIT_SERVER_BIN=%s is not an executable\n' \
                  "$GATEWAY_LIVEKIT_SERVER_BIN" >&2; return 1; }
    export GATEWAY_LIVEKIT_SERVER_BIN
    return 0
  fi
  cache="$root/.cache/livekit/$LIVEKIT_SERVER_VERSION"
  bin="$cache/livekit-server"
  if [ ! -x "$bin" ]; then
    if ! command -v go >/dev/null 2>&1; then
      printf 'warning: no go on PATH: livekit-server not built; the LiveKit tests will skip\n' >&2
      return 0
    fi
    _lk_build "$cache" || {
      printf 'warning: livekit-server %s could not be built; the LiveKit tests will skip\n' \
             "$LIVEKIT_SERVER_VERSION" >&2
      return 0
    }
  fi
  GATEWAY_LIVEKIT_SERVER_BIN="$bin"
  export GATEWAY_LIVEKIT_SERVER_BIN
}

_lk_build() {
  local cache="$1" started=$SECONDS src work
  printf '==> building livekit-server %s with %s (a few minutes, once)\n' \
         "$LIVEKIT_SERVER_VERSION" "$(go version | cut -d' ' -f3)"
  # `go install MODULE@VERSION` refuses a go.mod with replace directives: download the module's
  # source and build inside (a writable copy: the module cache is read-only).
  src="$(cd /tmp && GOFLAGS=-mod=mod GOTOOLCHAIN=local \
         go mod download -json "$LIVEKIT_SERVER_MODULE@$LIVEKIT_SERVER_VERSION" \
         | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')" || return 1
  [ -n "$src" ] && [ -d "$src" ] || return 1
  mkdir -p "$cache"
  work="$(mktemp -d "${TMPDIR:-/tmp}/livekit-build.XXXXXX")"
  cp -r "$src"/. "$work"/ && chmod -R u+w "$work"
  if (cd "$work" && GOFLAGS="-mod=mod -buildvcs=false" GOTOOLCHAIN=local \
        go build -trimpath -o "$cache/livekit-server.partial" ./cmd/server); then
    mv "$cache/livekit-server.partial" "$cache/livekit-server"
    rm -rf "$work"
    printf '==> livekit-server %s built in %ss\n' "$LIVEKIT_SERVER_VERSION" "$((SECONDS - started))"
    return 0
  fi
  rm -rf "$work" "$cache/livekit-server.partial"
  return 1
}

# --- livekit-client (the join page's LiveKit client, served by the gateway) ----------------------

LIVEKIT_CLIENT_VERSION="2.23.0"

gateway_livekit_client() {
  local root dir installed
  root="$(_lk_root)"
  dir="$root/.cache/livekit-client"
  installed="$dir/node_modules/livekit-client/package.json"
  if [ -f "$installed" ] && grep -q "\"version\": \"$LIVEKIT_CLIENT_VERSION\"" "$installed"; then
    return 0
  fi
  if ! command -v npm >/dev/null 2>&1; then
    printf 'warning: npm not found; livekit-client not installed (LiveKit join pages cannot start video)\n' >&2
    return 0
  fi
  printf '==> npm install livekit-client@%s into .cache/livekit-client\n' "$LIVEKIT_CLIENT_VERSION"
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-audit --no-fund --silent \
      "livekit-client@$LIVEKIT_CLIENT_VERSION" </dev/null >/dev/null \
    || printf 'warning: npm install livekit-client failed\n' >&2
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  gateway_livekit_server
  [ -n "${GATEWAY_LIVEKIT_SERVER_BIN:-}" ] || exit 1
  printf '%s\n' "$GATEWAY_LIVEKIT_SERVER_BIN"
fi
