# shellcheck shell=bash
# Shared by scripts/test, scripts/check and scripts/bench. Source it, then call the functions:
#
#   gateway_system_packages   install missing Debian packages (postgresql, redis-server, chromium;
#                             wrk and janus optional, for benchmarks). apt-get update runs once, only if something is missing.
#   gateway_axe               install axe-core (npm, pinned) into .cache/axe for the browser
#                             accessibility tests, when missing and npm is present (not committed).
#   gateway_venv              create .venv in the repo root with python3.11 (or a python3 that is
#                             3.11/3.12) and `pip install -e '.[dev]'` when pyproject.toml changed
#                             since the last install (sha256 stamp in .venv).
#
# After sourcing: GATEWAY_ROOT (repo root), GATEWAY_VENV (.venv), GATEWAY_PY (the venv's python).

set -euo pipefail

GATEWAY_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
GATEWAY_VENV="$GATEWAY_ROOT/.venv"
GATEWAY_PY="$GATEWAY_VENV/bin/python"
export GATEWAY_ROOT GATEWAY_VENV

_say() { printf '==> %s\n' "$*"; }
_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# --- Debian packages -------------------------------------------------------------------------

_have_postgres() { compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null \
                   && compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null; }
_have_redis()    { command -v redis-server >/dev/null 2>&1; }
_have_chromium() { [ -x /usr/bin/chromium ] || command -v chromium >/dev/null 2>&1; }
_have_wrk()      { command -v wrk >/dev/null 2>&1; }
_have_janus()    { command -v janus >/dev/null 2>&1; }  # the relay benchmark's reference SFU

_as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    if [ -n "${CI:-}" ] || [ ! -t 0 ]; then sudo -n "$@"; else sudo "$@"; fi
  else
    _die "need root to run: $* (no sudo found)"
  fi
}

gateway_system_packages() {
  local required=() optional=()
  _have_postgres || required+=(postgresql)
  _have_redis    || required+=(redis-server)
  _have_chromium || required+=(chromium)
  _have_wrk      || optional+=(wrk)
  _have_janus    || optional+=(janus)
  if [ ${#required[@]} -eq 0 ] && [ ${#optional[@]} -eq 0 ]; then
    return 0
  fi
  command -v apt-get >/dev/null 2>&1 \
    || _die "missing ${required[*]} ${optional[*]} and no apt-get: install them by hand"
  local apt=(env DEBIAN_FRONTEND=noninteractive apt-get -y -q -o Dpkg::Use-Pty=0)
  # An optional package that could not be installed is not retried for a day (no apt-get
  # update on every run for it).
  local marker="${TMPDIR:-/tmp}/gateway-optional-packages-unavailable"
  if [ ${#required[@]} -eq 0 ] && [ -n "$(find "$marker" -mmin -1440 2>/dev/null)" ]; then
    return 0
  fi
  _say "missing Debian packages: ${required[*]:-}${required[*]:+ }${optional[*]:+(optional: ${optional[*]})}"
  _say "apt-get update"
  if ! _as_root "${apt[@]}" update -qq </dev/null; then
    [ ${#required[@]} -eq 0 ] || _die "apt-get update failed"
    printf 'warning: apt-get update failed; skipping optional %s\n' "${optional[*]}" >&2
    touch "$marker"
    return 0
  fi
  if [ ${#required[@]} -gt 0 ]; then
    _say "apt-get install ${required[*]}"
    _as_root "${apt[@]}" install "${required[@]}" </dev/null >/dev/null \
      || _die "apt-get install ${required[*]} failed"
    _have_postgres && _have_redis && _have_chromium \
      || _die "installed ${required[*]} but binaries still not found"
  fi
  if [ ${#optional[@]} -gt 0 ]; then
    _say "apt-get install ${optional[*]} (optional)"
    _as_root "${apt[@]}" install "${optional[@]}" </dev/null >/dev/null \
      || { printf 'warning: could not install %s; benchmarks that need it will skip\n' \
                  "${optional[*]}" >&2; touch "$marker"; }
  fi
}

# --- virtualenv --------------------------------------------------------------------------------

_find_python() {
  local candidate
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 \
       && "$candidate" -c 'import sys; sys.exit(not ((3, 11) <= sys.version_info[:2] < (3, 13)))' \
          >/dev/null 2>&1; then
      command -v "$candidate"
      return 0
    fi
  done
  return 1
}

gateway_venv() {
  mkdir -p "$GATEWAY_VENV"
  # Serialise concurrent bootstraps (scripts/check and scripts/test started together).
  exec 9<"$GATEWAY_VENV"   # lock the directory itself: `venv --clear` empties it, keeps it
  flock 9

  if ! "$GATEWAY_PY" -c 'import sys' >/dev/null 2>&1; then
    local python
    python="$(_find_python)" || _die "need Python 3.11 (python3.11 or python3) on PATH"
    _say "creating .venv with $python ($("$python" --version 2>&1))"
    "$python" -m venv --clear "$GATEWAY_VENV"
  fi

  local stamp="$GATEWAY_VENV/.pyproject.sha256" want have=""
  want="$(sha256sum "$GATEWAY_ROOT/pyproject.toml" | cut -d' ' -f1)"
  [ -f "$stamp" ] && have="$(cat "$stamp")"
  if [ "$want" != "$have" ]; then
    _say "installing gateway + dev dependencies into .venv (pyproject.toml changed)"
    local started=$SECONDS
    (cd "$GATEWAY_ROOT" && "$GATEWAY_PY" -m pip install -q --progress-bar off \
        --disable-pip-version-check -e '.[dev]') \
      || _die "pip install -e '.[dev]' failed"
    printf '%s\n' "$want" >"$stamp"
    _say "installed in $((SECONDS - started))s"
  fi
  flock -u 9
  exec 9>&-
  export VIRTUAL_ENV="$GATEWAY_VENV"
  export PATH="$GATEWAY_VENV/bin:$PATH"
}

# --- axe-core (browser accessibility tests) ----------------------------------------------------

GATEWAY_AXE_VERSION="4.10.3"
GATEWAY_AXE_DIR="$GATEWAY_ROOT/.cache/axe"
export GATEWAY_AXE_DIR

gateway_axe() {
  local installed="$GATEWAY_AXE_DIR/node_modules/axe-core/package.json"
  if [ -f "$installed" ] && grep -q "\"version\": \"$GATEWAY_AXE_VERSION\"" "$installed"; then
    return 0
  fi
  if ! command -v npm >/dev/null 2>&1 && [ -n "${CI:-}" ] && command -v apt-get >/dev/null 2>&1; then
    # In CI the accessibility tests must run: npm (Debian's, with nodejs) is installed for them.
    _say "apt-get install npm (for axe-core)"
    _as_root env DEBIAN_FRONTEND=noninteractive apt-get -y -q -o Dpkg::Use-Pty=0 install npm \
      </dev/null >/dev/null || printf 'warning: apt-get install npm failed\n' >&2
  fi
  if ! command -v npm >/dev/null 2>&1; then
    # tests/browser/test_axe.py skips locally without it and fails in CI (CI=true).
    printf 'warning: npm not found; axe-core not installed (accessibility tests skip)\n' >&2
    return 0
  fi
  _say "npm install axe-core@$GATEWAY_AXE_VERSION into .cache/axe"
  mkdir -p "$GATEWAY_AXE_DIR"
  npm install --prefix "$GATEWAY_AXE_DIR" --no-audit --no-fund --silent \
      "axe-core@$GATEWAY_AXE_VERSION" </dev/null >/dev/null \
    || printf 'warning: npm install axe-core failed (accessibility tests skip locally)\n' >&2
}
