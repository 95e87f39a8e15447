#!/usr/bin/env bash
# The main job: builds everything (native library, CLI and tests; the
# WebAssembly module; the npm package's dev dependencies) and prints a
# terminal summary of a dense vs sparse decode run by the wasm package in
# Node, offline. Extra arguments go to demo/summary.mjs (e.g. --T 32768).
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/setup.sh

echo "== native build" >&2
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j2 >/dev/null
echo "== wasm build" >&2
emcmake cmake -S . -B build-wasm -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-wasm -j2 >/dev/null
echo "== summary" >&2
node demo/summary.mjs "$@"
