#!/usr/bin/env node
/*
 * npm run build:wasm: builds the WebAssembly module from the repository's
 * CMake project with Emscripten and copies the checked vashista.wasm to
 * web/dist/ (wasm/wasm.cmake does the check and the copy).
 *
 *   emcmake cmake -S <repo> -B <repo>/build-wasm && cmake --build <repo>/build-wasm
 *
 * Options: --clean (delete build-wasm first), --build-dir DIR, and any
 * -DNAME=VALUE, passed to the configure step.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const args = process.argv.slice(2);
let buildDir = resolve(repo, 'build-wasm');
const defines = [];
let clean = false;
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--clean') clean = true;
  else if (args[i] === '--build-dir') buildDir = resolve(args[++i]);
  else if (args[i].startsWith('-D')) defines.push(args[i]);
  else {
    console.error(`build-wasm: unknown argument ${args[i]}`);
    process.exit(2);
  }
}

/* Debian's Emscripten runs its JS tools with the system node and finds their
   modules (acorn, terser...) through NODE_PATH. */
const env = { ...process.env };
if (!env.NODE_PATH && existsSync('/usr/share/nodejs')) env.NODE_PATH = '/usr/share/nodejs';

function run(cmd, cmdArgs) {
  console.log(`build-wasm: ${cmd} ${cmdArgs.join(' ')}`);
  const r = spawnSync(cmd, cmdArgs, { cwd: repo, env, stdio: 'inherit' });
  if (r.error) {
    console.error(`build-wasm: cannot run ${cmd}: ${r.error.message}${r.error.code === 'ENOENT' ? ' (is Emscripten installed? apt-get install emscripten)' : ''}`);
    process.exit(1);
  }
  if (r.status !== 0) {
    console.error(`build-wasm: ${cmd} failed with exit code ${r.status}`);
    process.exit(r.status ?? 1);
  }
}

if (clean) rmSync(buildDir, { recursive: true, force: true });
run('emcmake', ['cmake', '-S', repo, '-B', buildDir, '-DCMAKE_BUILD_TYPE=Release', ...defines]);
run('cmake', ['--build', buildDir, '--parallel', String(Math.max(1, cpus().length))]);
const out = resolve(repo, 'web', 'dist', 'vashista.wasm');
if (!existsSync(out)) {
  console.error(`build-wasm: the build did not produce ${out}`);
  process.exit(1);
}
console.log(`build-wasm: ${out}`);
