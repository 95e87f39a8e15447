#!/usr/bin/env node
/* prepack: refuse to pack without a built, SIMD-enabled dist/vashista.wasm. */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { analyzeWasm } from '../../wasm/check-wasm.mjs';

const web = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const wasm = resolve(web, 'dist', 'vashista.wasm');
if (!existsSync(wasm)) {
  console.error(`check-dist: ${wasm} is missing: run npm run build:wasm first`);
  process.exit(1);
}
const info = analyzeWasm(readFileSync(wasm));
if (info.simd === 0) {
  console.error('check-dist: dist/vashista.wasm contains no SIMD instructions');
  process.exit(1);
}
console.error(`check-dist: dist/vashista.wasm: ${info.size} bytes, ${info.simd} SIMD instructions`);
