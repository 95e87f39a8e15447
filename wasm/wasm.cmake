# The WebAssembly build (issue 3): included by CMakeLists.txt under if(EMSCRIPTEN).
#
#   emcmake cmake -S . -B build-wasm && cmake --build build-wasm
#
# produces build-wasm/vashista.wasm: a standalone module (no Emscripten JS
# glue) that the hand-written loader in web/src/index.js instantiates. It
# exports every VS_API function of the public headers plus malloc and free,
# uses WebAssembly SIMD128 and can grow its memory up to 4 GiB.
#
# After linking, wasm/check-wasm.mjs decodes the module and the build FAILS if
# it holds fewer than VS_WASM_MIN_SIMD SIMD instructions, lacks an export, has
# a different memory maximum, or imports anything beyond the allowed list.
# Only a module that passes is copied to VS_WASM_DIST_DIR (web/dist/), where
# the npm package loads it from.

set(VS_WASM_DIST_DIR "${CMAKE_SOURCE_DIR}/web/dist" CACHE PATH
    "Where the checked vashista.wasm is copied for the npm package")
set(VS_WASM_MIN_SIMD 64 CACHE STRING
    "Fewest SIMD instructions the module may hold (the build fails below it)")

# SIMD128 for the whole wasm build: the wasmsimd kernels need it, and the
# scalar code may use it too (the compiler never reassociates float sums
# without -ffast-math, and -ffp-contract=off still holds, so results do not
# change).
add_compile_options(-msimd128)
target_compile_options(vashista_core PRIVATE -msimd128)

find_program(VS_NODE NAMES node nodejs REQUIRED)

# The export list: every function declared VS_API in the public headers (and
# in wasm/abi.c), read at configure time so a new API function is exported
# without editing this file.
set(VS_WASM_EXPORTS malloc free)
foreach(header
    "${CMAKE_SOURCE_DIR}/src/include/vashista.h"
    "${CMAKE_SOURCE_DIR}/src/workloads.h"
    "${CMAKE_SOURCE_DIR}/wasm/abi.c")
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${header}")
  file(STRINGS "${header}" api_lines REGEX "^VS_API ")
  foreach(line IN LISTS api_lines)
    string(REGEX MATCH "([A-Za-z_][A-Za-z_0-9]*)[ \t]*\\(" _ "${line}")
    if(CMAKE_MATCH_1)
      list(APPEND VS_WASM_EXPORTS "${CMAKE_MATCH_1}")
    endif()
  endforeach()
endforeach()
list(REMOVE_DUPLICATES VS_WASM_EXPORTS)
list(TRANSFORM VS_WASM_EXPORTS PREPEND "_" OUTPUT_VARIABLE vs_wasm_exported_functions)
list(JOIN vs_wasm_exported_functions "," vs_wasm_exported_functions)
list(JOIN VS_WASM_EXPORTS "," vs_wasm_required_exports)

add_executable(vashista_wasm wasm/abi.c)
target_include_directories(vashista_wasm PRIVATE src)
target_link_libraries(vashista_wasm PRIVATE vashista_core)
set_target_properties(vashista_wasm PROPERTIES OUTPUT_NAME vashista SUFFIX ".wasm")
target_link_options(vashista_wasm PRIVATE
  -O3
  -msimd128
  --no-entry
  "SHELL:-s STANDALONE_WASM=1"
  "SHELL:-s ALLOW_MEMORY_GROWTH=1"
  "SHELL:-s MAXIMUM_MEMORY=4GB"
  "SHELL:-s INITIAL_MEMORY=16MB"
  "SHELL:-s EXPORTED_FUNCTIONS=${vs_wasm_exported_functions}"
  "SHELL:-s ERROR_ON_UNDEFINED_SYMBOLS=1")

# Imports the JS loader provides (web/src/index.js, makeImports).
set(vs_wasm_allowed_imports
  env.emscripten_notify_memory_growth
  wasi_snapshot_preview1.environ_get
  wasi_snapshot_preview1.environ_sizes_get
  wasi_snapshot_preview1.proc_exit
  wasi_snapshot_preview1.fd_write
  wasi_snapshot_preview1.fd_close
  wasi_snapshot_preview1.fd_seek
  wasi_snapshot_preview1.clock_time_get)
list(JOIN vs_wasm_allowed_imports "," vs_wasm_allowed_imports)

set(vs_wasm_dist "${VS_WASM_DIST_DIR}/vashista.wasm")
add_custom_command(
  OUTPUT "${vs_wasm_dist}"
  COMMAND "${VS_NODE}" "${CMAKE_SOURCE_DIR}/wasm/check-wasm.mjs" "$<TARGET_FILE:vashista_wasm>"
          --min-simd ${VS_WASM_MIN_SIMD}
          --max-pages 65536
          --require-export "${vs_wasm_required_exports},memory"
          --allow-import "${vs_wasm_allowed_imports}"
  COMMAND "${CMAKE_COMMAND}" -E make_directory "${VS_WASM_DIST_DIR}"
  COMMAND "${CMAKE_COMMAND}" -E copy "$<TARGET_FILE:vashista_wasm>" "${vs_wasm_dist}"
  DEPENDS vashista_wasm "${CMAKE_SOURCE_DIR}/wasm/check-wasm.mjs"
  COMMENT "Checking vashista.wasm (SIMD, exports, imports, memory) and copying it to ${VS_WASM_DIST_DIR}"
  VERBATIM)
add_custom_target(vashista_wasm_dist ALL DEPENDS "${vs_wasm_dist}")
