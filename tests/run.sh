#!/usr/bin/env bash
# Runs every test of the project, as CI does (.ci/run calls this):
#   1. native build (warnings are errors when CI=true) and ctest: kernels on
#      every ISA this CPU has, cache, dense, sparse, certificate, errors,
#      workloads, solvers, parity against the golden vectors; then
#      tests/hardening.sh: the same suite under ASan+UBSan, the libFuzzer
#      harness for 60 s (64- and 32-bit size_t), valgrind with 0 errors/leaks;
#   2. the WebAssembly build (fails if the module holds no SIMD) and the npm
#      package's tests with node --test (API, quality, wasm/native parity,
#      memory growth, bad input, TypeScript declarations, npm pack).
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/setup.sh

werror=OFF
if [ "${CI:-}" = "true" ]; then werror=ON; fi

echo "== native build" >&2
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DVS_WERROR=$werror >/dev/null
cmake --build build -j2
echo "== ctest" >&2
ctest --test-dir build --output-on-failure -j2

echo "== hardening: ASan+UBSan ctest, 60 s of fuzzing (x86_64 and i386), valgrind" >&2
bash tests/hardening.sh

echo "== wasm build" >&2
emcmake cmake -S . -B build-wasm -DCMAKE_BUILD_TYPE=Release -DVS_WERROR=$werror >/dev/null
cmake --build build-wasm -j2
echo "== npm package tests" >&2
(cd web && npm test)
