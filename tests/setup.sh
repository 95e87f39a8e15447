#!/usr/bin/env bash
# Installs what the build and the tests need on a fresh Debian machine, and
# nothing that is already there: C toolchain and CMake, Emscripten, Node.js
# >= 20 with npm, and the npm dev dependencies of web/ (from its lockfile).
# Usage: bash tests/setup.sh   (sourced by demo/start.sh and tests/run.sh)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
apt_updated=0
need_pkg() { # need_pkg COMMAND PACKAGE...
  if ! command -v "$1" >/dev/null 2>&1; then
    shift
    if [ $apt_updated -eq 0 ]; then
      echo "setup: apt-get update" >&2
      $SUDO apt-get update -qq
      apt_updated=1
    fi
    echo "setup: installing $*" >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
  fi
}

need_pkg cc gcc libc6-dev
need_pkg make make
need_pkg cmake cmake
need_pkg emcc emscripten
need_pkg node nodejs
need_pkg npm npm
need_pkg chromium chromium   # browser tests (headless, local pages only)

node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if [ "$(node_major)" -lt 20 ]; then
  # Debian's Node is older than 20: take Node 20 from the npm registry.
  echo "setup: Node $(node --version) < 20; installing node@20 from npm into .tools/" >&2
  npm install --prefix .tools --no-save --no-audit --no-fund node@20 >/dev/null
  export PATH="$PWD/.tools/node_modules/.bin:$PATH"
fi

# Emscripten's own JS tools run on Node and look for Debian's JS modules.
export NODE_PATH="${NODE_PATH:-/usr/share/nodejs}"

if [ ! -d web/node_modules ] || [ web/package-lock.json -nt web/node_modules ]; then
  echo "setup: npm ci in web/" >&2
  (cd web && npm ci --no-audit --no-fund --loglevel=error)
fi
