#!/usr/bin/env bash
# Hardening checks (issue 6, parts 2 and 3), in three stages:
#   asan      the whole ctest suite built with clang -fsanitize=address,undefined
#             -fno-sanitize-recover=all (build-asan/);
#   fuzz      the libFuzzer harness tests/fuzz/fuzz_cache.c (ASan + UBSan) for
#             VS_FUZZ_SECONDS seconds (default 60) on the seed corpus
#             tests/fuzz/corpus, built twice and run side by side: x86_64
#             (build-fuzz/) and i386 (build-fuzz/i386/), whose 32-bit size_t
#             stands in for wasm32; any crash, leak, UB or broken invariant fails;
#   valgrind  memcheck, 0 errors and 0 leaks: `vashista bench` (a small run),
#             test_errors (allocation failures), and a replay of the seed corpus
#             through the harness built without sanitizers (build-valgrind/).
# Installs what it needs (clang and its sanitizer/fuzzer runtimes, valgrind,
# cmake; gcc-multilib and g++-multilib for i386) with apt-get when missing.
# Prints one summary line per stage and exits non-zero if any stage failed.
#
# Usage: tests/hardening.sh [asan] [fuzz] [valgrind]     (default: all three)
# Environment: VS_FUZZ_SECONDS (60), VS_FUZZ_RSS_MB (2048), JOBS (2).
# Longer fuzz campaigns: see tests/fuzz/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

FUZZ_SECONDS=${VS_FUZZ_SECONDS:-60}
FUZZ_RSS_MB=${VS_FUZZ_RSS_MB:-2048}
JOBS=${JOBS:-2}
STAGES=("$@")
if [ ${#STAGES[@]} -eq 0 ]; then STAGES=(asan fuzz valgrind); fi

log() { echo "hardening: $*" >&2; }

# ---- packages --------------------------------------------------------------------
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
apt_updated=0
apt_install() {
  if [ $apt_updated -eq 0 ]; then
    log "apt-get update"
    $SUDO apt-get update -qq
    apt_updated=1
  fi
  log "installing $*"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}
need_cmd() { # need_cmd COMMAND PACKAGE...
  if ! command -v "$1" >/dev/null 2>&1; then shift; apt_install "$@"; fi
}

need_cmd cc gcc libc6-dev
need_cmd make make
need_cmd cmake cmake
need_cmd clang clang
need_cmd valgrind valgrind

# The fuzzer and sanitizer runtimes ship separately from clang on Debian
# (libclang-rt-N-dev); probe by linking a trivial fuzz target.
probe_dir=$(mktemp -d)
trap 'rm -rf "$probe_dir"' EXIT
probe_runtimes() {
  printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; return (int)(n & 0); }\n' \
    >"$probe_dir/p.c"
  clang -fsanitize=fuzzer,address,undefined "$probe_dir/p.c" -o "$probe_dir/p" >/dev/null 2>&1
}
if ! probe_runtimes; then
  clang_major=$(clang -dumpversion | cut -d. -f1)
  apt_install "libclang-rt-${clang_major}-dev"
  probe_runtimes || { log "clang cannot link -fsanitize=fuzzer,address,undefined"; exit 1; }
fi
if command -v llvm-symbolizer >/dev/null 2>&1; then
  export ASAN_SYMBOLIZER_PATH=${ASAN_SYMBOLIZER_PATH:-$(command -v llvm-symbolizer)}
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:check_initialization_order=1:strict_string_checks=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
SAN_FLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g -O1"

# Library sources, as CMakeLists.txt builds them natively: src/*.c and
# src/kernels/*.c except the wasm kernels; avx2.c alone gets -mavx2.
lib_sources() {
  local f
  for f in "$ROOT"/src/*.c "$ROOT"/src/kernels/*.c; do
    case "$f" in */wasmsimd.c | */avx2.c) ;; *) echo "$f" ;; esac
  done
}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }'; }

T_START=$(now)
declare -a SUMMARY=()
failed=0
record() { # record STAGE STATUS DETAIL
  SUMMARY+=("hardening: $1: $2 ($3)")
  if [ "$2" = FAIL ]; then failed=1; fi
}

# ---- stage: ctest under ASan + UBSan ---------------------------------------------------
stage_asan() {
  local t0 dir=build-asan out
  t0=$(now)
  log "asan: configure and build $dir (clang, $SAN_FLAGS)"
  cmake -S . -B $dir -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DVS_WERROR=OFF \
    -DCMAKE_C_FLAGS="$SAN_FLAGS" >/dev/null || { record asan FAIL "configure failed"; return; }
  if ! cmake --build $dir -j"$JOBS" >"$dir/build.log" 2>&1; then
    tail -40 "$dir/build.log" >&2
    record asan FAIL "build failed, $(elapsed "$t0") s"
    return
  fi
  log "asan: ctest"
  out=$(mktemp)
  if ctest --test-dir $dir --output-on-failure -j"$JOBS" --timeout 900 2>&1 | tee "$out" >&2 &&
    grep -q "tests passed" "$out" && ! grep -qE "runtime error|ERROR: (Address|Leak)Sanitizer" "$out"; then
    record asan PASS "$(grep -oE '[0-9]+ tests failed out of [0-9]+' "$out" | tail -1), ASan+UBSan clean, $(elapsed "$t0") s"
  else
    record asan FAIL "see ctest output above, $(elapsed "$t0") s"
  fi
  rm -f "$out"
}

# ---- stage: libFuzzer ------------------------------------------------------------------
# Two builds of the harness run side by side (CI has two cores): x86_64, and
# i386 where size_t is 32 bits as in wasm32, so size computations that wrap
# around there show up as heap overflows. The i386 build uses SSE arithmetic
# (-msse2 -mfpmath=sse): x87 excess precision is not IEEE float and breaks
# the bit-identity of the kernels (and vs_exp's rounding trick).
FUZZ_FLAGS="-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g -O1 -ffp-contract=off -std=c11"

have_i386() { # can clang link an i386 fuzz target? installs the multilib packages once
  [ "$(uname -m)" = x86_64 ] || return 1
  printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; return (int)(n & 0); }\n' \
    >"$probe_dir/p.c"
  local try="clang -m32 -fsanitize=fuzzer,address,undefined $probe_dir/p.c -o $probe_dir/p32"
  $try >/dev/null 2>&1 && return 0
  apt_install gcc-multilib g++-multilib || return 1
  $try >/dev/null 2>&1
}

build_fuzzer() { # build_fuzzer ARCH_FLAGS OUT_DIR; the harness and every library source
  local arch="$1" dir="$2" src o objs=() pids=() ok=1 n=0
  mkdir -p "$dir/obj"
  : >"$dir/build.log"
  while read -r src; do
    o="$dir/obj/$(basename "${src%.c}").o"
    objs+=("$o")
    # shellcheck disable=SC2086
    clang $arch $FUZZ_FLAGS -I"$ROOT/src" -I"$ROOT/src/include" -c "$src" -o "$o" 2>>"$dir/build.log" &
    pids+=($!)
    n=$((n + 1))
    if [ $((n % JOBS)) -eq 0 ]; then
      for p in "${pids[@]}"; do wait "$p" || ok=0; done
      pids=()
    fi
  done < <(lib_sources; echo "$ROOT/tests/fuzz/fuzz_cache.c")
  for p in "${pids[@]}"; do wait "$p" || ok=0; done
  if [ -f "$ROOT/src/kernels/avx2.c" ]; then
    # shellcheck disable=SC2086
    clang $arch $FUZZ_FLAGS -mavx2 -I"$ROOT/src" -I"$ROOT/src/include" -c "$ROOT/src/kernels/avx2.c" \
      -o "$dir/obj/avx2.o" 2>>"$dir/build.log" || ok=0
    objs+=("$dir/obj/avx2.o")
  fi
  # shellcheck disable=SC2086
  [ $ok -eq 1 ] && clang $arch $FUZZ_FLAGS "${objs[@]}" -lm -o "$dir/fuzz_cache" 2>>"$dir/build.log"
}

fuzz_summary() { # fuzz_summary LOG: "N runs, N exec/s, cov: N, ft: N"
  local stats runs execs cov ft
  stats=$(grep -E "DONE|^#[0-9]+.*(pulse|NEW|REDUCE|INITED)" "$1" | tail -1 || true)
  runs=$(grep -oE "number_of_executed_units: *[0-9]+" "$1" | grep -oE "[0-9]+$" || true)
  execs=$(grep -oE "average_exec_per_sec: *[0-9]+" "$1" | grep -oE "[0-9]+$" || true)
  cov=$(echo "$stats" | grep -oE "cov: [0-9]+" | head -1 || true)
  ft=$(echo "$stats" | grep -oE "ft: [0-9]+" | head -1 || true)
  echo "${runs:-?} runs, ${execs:-?} exec/s, $cov, $ft"
}

stage_fuzz() {
  local t0 names=() dirs=() archs=() pids=() i
  t0=$(now)
  names+=("fuzz x86_64"); dirs+=(build-fuzz); archs+=("")
  if have_i386; then
    names+=("fuzz i386 (32-bit size_t, as wasm32)"); dirs+=(build-fuzz/i386); archs+=("-m32 -msse2 -mfpmath=sse")
  else
    record "fuzz i386" SKIP "no i386 toolchain (needs an x86_64 host with gcc-multilib, g++-multilib)"
  fi
  for i in "${!dirs[@]}"; do
    log "${names[$i]}: build ${dirs[$i]}/fuzz_cache"
    if ! build_fuzzer "${archs[$i]}" "${dirs[$i]}"; then
      tail -40 "${dirs[$i]}/build.log" >&2
      record "${names[$i]}" FAIL "build failed, $(elapsed "$t0") s"
      return
    fi
  done
  for i in "${!dirs[@]}"; do
    local d=${dirs[$i]} extra=()
    mkdir -p "$d/corpus" "$d/artifacts"
    # i386: a request above the 32-bit address space must come back NULL (the
    # library then reports VS_E_NOMEM), not abort; the harness stores little.
    if [ -n "${archs[$i]}" ]; then extra=(-malloc_limit_mb=4096); fi
    log "${names[$i]}: ${FUZZ_SECONDS} s on tests/fuzz/corpus (new inputs go to $d/corpus)"
    ASAN_OPTIONS="$ASAN_OPTIONS:allocator_may_return_null=$([ -n "${archs[$i]}" ] && echo 1 || echo 0)" \
      "$d/fuzz_cache" -max_total_time="$FUZZ_SECONDS" -rss_limit_mb="$FUZZ_RSS_MB" \
      -max_len=4096 -timeout=30 -detect_leaks=1 -print_final_stats=1 "${extra[@]}" \
      -artifact_prefix="$d/artifacts/" "$d/corpus" tests/fuzz/corpus >"$d/fuzz.log" 2>&1 &
    pids+=($!)
  done
  for i in "${!dirs[@]}"; do
    local d=${dirs[$i]}
    if wait "${pids[$i]}"; then
      record "${names[$i]}" PASS "${FUZZ_SECONDS} s, $(fuzz_summary "$d/fuzz.log"), $(elapsed "$t0") s"
    else
      log "${names[$i]}: FAILED; from $d/fuzz.log:"
      grep -E "fuzz_cache:|runtime error|ERROR: |SUMMARY|Test unit written|^Base64| #[0-9] " "$d/fuzz.log" | head -40 >&2 ||
        tail -60 "$d/fuzz.log" >&2
      record "${names[$i]}" FAIL "crash in $d/artifacts/; replay: VS_FUZZ_TRACE=1 $d/fuzz_cache FILE, $(elapsed "$t0") s"
    fi
  done
}

# ---- stage: valgrind -------------------------------------------------------------------
stage_valgrind() {
  local t0 dir=build-valgrind what=() vg
  t0=$(now)
  log "valgrind: configure and build $dir (RelWithDebInfo)"
  cmake -S . -B $dir -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVS_WERROR=OFF >/dev/null ||
    { record valgrind FAIL "configure failed"; return; }
  if ! cmake --build $dir -j"$JOBS" --target vashista test_errors >"$dir/build.log" 2>&1; then
    tail -40 "$dir/build.log" >&2
    record valgrind FAIL "build failed, $(elapsed "$t0") s"
    return
  fi
  # the harness without libFuzzer or sanitizers: its own main() replays files
  if ! cc -O1 -g -std=c11 -ffp-contract=off -DVS_FUZZ_STANDALONE -I"$ROOT/src" \
    -I"$ROOT/src/include" tests/fuzz/fuzz_cache.c $dir/libvashista_core.a -lm \
    -o $dir/fuzz_replay 2>>"$dir/build.log"; then
    tail -20 "$dir/build.log" >&2
    record valgrind FAIL "harness build failed, $(elapsed "$t0") s"
    return
  fi
  vg=(valgrind -q --error-exitcode=1 --leak-check=full --show-leak-kinds=definite,indirect
    --errors-for-leak-kinds=definite,indirect --track-origins=yes)
  local ok=1
  log "valgrind: vashista bench"
  "${vg[@]}" $dir/vashista bench --T 4096 --reps 3 --bw-mib 0 --quiet >/dev/null || ok=0
  [ $ok -eq 1 ] && what+=("vashista bench --T 4096 --reps 3")
  log "valgrind: test_errors"
  if "${vg[@]}" $dir/test_errors >/dev/null; then what+=("test_errors"); else ok=0; fi
  log "valgrind: seed corpus replay"
  local rc=0 note=""
  "${vg[@]}" $dir/fuzz_replay tests/fuzz/corpus/* || rc=$?
  if [ $rc -eq 0 ]; then
    what+=("$(find tests/fuzz/corpus -type f | wc -l) corpus inputs")
  else
    ok=0
    # --error-exitcode=1 is memcheck's; a trap (SIGILL) is a harness invariant
    if [ $rc -ne 1 ]; then note="; the corpus replay stopped on a harness invariant (exit $rc), as in the fuzz stage"; fi
  fi
  if [ $ok -eq 1 ]; then
    record valgrind PASS "0 errors, 0 leaks: $(IFS=,; echo "${what[*]}" | sed 's/,/, /g'), $(elapsed "$t0") s"
  else
    record valgrind FAIL "see the output above$note, $(elapsed "$t0") s"
  fi
}

for s in "${STAGES[@]}"; do
  case "$s" in
  asan) stage_asan ;;
  fuzz) stage_fuzz ;;
  valgrind) stage_valgrind ;;
  *) log "unknown stage '$s' (asan, fuzz, valgrind)"; exit 2 ;;
  esac
done

for line in "${SUMMARY[@]}"; do echo "$line"; done
echo "hardening: total $(elapsed "$T_START") s: $([ $failed -eq 0 ] && echo PASS || echo FAIL)"
exit $failed
