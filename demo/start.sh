#!/usr/bin/env bash
# The main job: builds everything (native library, CLI and tests; the
# WebAssembly module; the npm package's dev dependencies) and prints a
# terminal summary of a dense vs sparse decode run by the wasm package in
# Node, offline; then serves the demo page (demo/index.html) on 127.0.0.1
# with demo/serve.mjs and prints its URL. Serving is skipped when stdin is
# not a terminal, when CI=true, or with --no-serve (so scripts don't hang).
# Other arguments go to demo/summary.mjs (e.g. --T 32768); --port N picks the
# server's port (default: an ephemeral one). Also writes the single-file demo,
# demo/dist/vashista-demo.html, which works opened straight from disk.
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/setup.sh

echo "== native build" >&2
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j2 >/dev/null
echo "== wasm build" >&2
emcmake cmake -S . -B build-wasm -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-wasm -j2 >/dev/null
echo "== single-file demo (demo/dist/vashista-demo.html, opens from disk)" >&2
node demo/build-single.mjs --quiet
serve=1
port=0
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --no-serve) serve=0 ;;
    --port) port="$2"; shift ;;
    *) args+=("$1") ;;
  esac
  shift
done
if [ ! -t 0 ] || [ "${CI:-}" = "true" ]; then serve=0; fi
echo "== summary" >&2
node demo/summary.mjs ${args[@]+"${args[@]}"}
if [ "$serve" = 1 ]; then
  echo "== demo page (Ctrl-C to stop)" >&2
  exec node demo/serve.mjs --port "$port"
fi
