#!/usr/bin/env node
/*
 * check-wasm.mjs: a dependency-free inspector for the vashista .wasm module,
 * run by the build after linking (wasm/wasm.cmake) and by the JS tests.
 *
 * It decodes the binary properly (sections, then every instruction of every
 * function body with its immediates), so a 0xFD byte inside an immediate or a
 * data segment is never mistaken for a SIMD instruction. It reports the
 * imports, the exports, the memory limits and the number of SIMD (0xFD
 * prefixed) instructions, and fails (exit code 1) when:
 *   - the module contains fewer than --min-simd SIMD instructions (default 1),
 *   - a function named with --require-export is not exported,
 *   - the memory cannot grow to --max-pages pages (when given),
 *   - an import is not in the --allow-import list (when given),
 *   - the binary cannot be decoded.
 *
 * Usage: node check-wasm.mjs FILE.wasm [--min-simd N] [--max-pages N]
 *            [--require-export name,...] [--allow-import mod.name,...] [--json]
 */
import { readFileSync, realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

class Reader {
  constructor(bytes, pos = 0, end = bytes.length) {
    this.b = bytes;
    this.pos = pos;
    this.end = end;
  }
  eof() {
    return this.pos >= this.end;
  }
  byte() {
    if (this.pos >= this.end) throw new Error(`unexpected end of data at offset ${this.pos}`);
    return this.b[this.pos++];
  }
  bytes(n) {
    if (this.pos + n > this.end) throw new Error(`unexpected end of data at offset ${this.pos}`);
    const out = this.b.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  /* Unsigned LEB128 up to 32 bits (returned as a Number). */
  u32() {
    let result = 0;
    let shift = 0;
    for (;;) {
      const byte = this.byte();
      result += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) break;
      shift += 7;
      if (shift > 35) throw new Error(`LEB128 too long at offset ${this.pos}`);
    }
    return result;
  }
  /* Signed LEB128 of any width: only skipped, never needed as a value. */
  skipLeb() {
    for (let i = 0; ; i++) {
      if ((this.byte() & 0x80) === 0) return;
      if (i > 10) throw new Error(`LEB128 too long at offset ${this.pos}`);
    }
  }
  name() {
    const len = this.u32();
    return new TextDecoder().decode(this.bytes(len));
  }
  limits() {
    const flags = this.byte();
    const min = this.u32();
    const max = flags & 1 ? this.u32() : null;
    return { flags, min, max, shared: (flags & 2) !== 0, memory64: (flags & 4) !== 0 };
  }
}

const VALTYPES = new Set([0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f]);
const EXTERNAL_KIND = ['func', 'table', 'memory', 'global', 'tag'];

function blockType(r) {
  const b = r.b[r.pos];
  if (b === 0x40 || VALTYPES.has(b)) r.pos++;
  else r.skipLeb(); /* s33 type index */
}

function memarg(r) {
  const align = r.u32();
  if (align & 0x40) r.u32(); /* multi-memory: explicit memory index */
  r.u32(); /* offset */
}

/* SIMD sub-opcodes (after 0xFD) and their immediates. */
function simdImmediates(r, sub) {
  if (sub <= 11) memarg(r); /* v128.load*, v128.store */
  else if (sub === 12 || sub === 13) r.bytes(16); /* v128.const, i8x16.shuffle */
  else if (sub >= 21 && sub <= 34) r.byte(); /* extract/replace lane */
  else if (sub >= 84 && sub <= 91) {
    memarg(r); /* v128.load*_lane, v128.store*_lane */
    r.byte();
  } else if (sub === 92 || sub === 93) memarg(r); /* v128.load32_zero, load64_zero */
  /* every other SIMD instruction (including relaxed SIMD) has no immediate */
}

function miscImmediates(r, sub) {
  if (sub <= 7) return; /* trunc_sat */
  switch (sub) {
    case 8: /* memory.init */
    case 10: /* memory.copy */
    case 12: /* table.init */
    case 14: /* table.copy */
      r.u32();
      r.u32();
      return;
    case 9: /* data.drop */
    case 11: /* memory.fill */
    case 13: /* elem.drop */
    case 15: /* table.grow */
    case 16: /* table.size */
    case 17: /* table.fill */
      r.u32();
      return;
    default:
      throw new Error(`unknown 0xFC sub-opcode ${sub} at offset ${r.pos}`);
  }
}

/* Decodes one function body's expression; returns its instruction counts. */
function scanBody(r, counts) {
  let depth = 1;
  while (depth > 0) {
    const at = r.pos;
    const op = r.byte();
    counts.instructions++;
    if (op >= 0x45 && op <= 0xc4) continue; /* numeric, no immediates */
    if (op >= 0x28 && op <= 0x3e) {
      memarg(r);
      continue;
    }
    switch (op) {
      case 0x00: case 0x01: case 0x05: case 0x0f: case 0x19: case 0x1a: case 0x1b: case 0xd1:
        break;
      case 0x02: case 0x03: case 0x04: case 0x06: /* block, loop, if, try */
        blockType(r);
        depth++;
        break;
      case 0x0b: /* end */
        depth--;
        break;
      case 0x07: case 0x08: case 0x09: case 0x0c: case 0x0d: case 0x10: case 0x12: case 0xd2:
      case 0x20: case 0x21: case 0x22: case 0x23: case 0x24: case 0x25: case 0x26:
      case 0x3f: case 0x40:
        r.u32();
        break;
      case 0x18: /* delegate: ends the try */
        r.u32();
        depth--;
        break;
      case 0x0e: { /* br_table */
        const n = r.u32();
        for (let i = 0; i <= n; i++) r.u32();
        break;
      }
      case 0x11: case 0x13: /* call_indirect, return_call_indirect */
        r.u32();
        r.u32();
        break;
      case 0x1c: { /* select t* */
        const n = r.u32();
        r.bytes(n);
        break;
      }
      case 0x41: case 0x42:
        r.skipLeb();
        break;
      case 0x43:
        r.bytes(4);
        break;
      case 0x44:
        r.bytes(8);
        break;
      case 0xd0:
        r.byte();
        break;
      case 0xfc:
        miscImmediates(r, r.u32());
        break;
      case 0xfd: {
        const sub = r.u32();
        simdImmediates(r, sub);
        counts.simd++;
        counts.simdOps.set(sub, (counts.simdOps.get(sub) || 0) + 1);
        break;
      }
      case 0xfe: { /* atomics */
        const sub = r.u32();
        if (sub === 0x03) r.byte();
        else memarg(r);
        break;
      }
      default:
        throw new Error(`unknown opcode 0x${op.toString(16)} at offset ${at}`);
    }
  }
}

/**
 * Decodes a wasm binary.
 * @param {Uint8Array} bytes
 * @returns {{imports: {module: string, name: string, kind: string}[],
 *   exports: {name: string, kind: string}[], memory: {min: number, max: number|null, exported: boolean, imported: boolean}|null,
 *   functions: number, functionsWithSimd: number, instructions: number, simd: number,
 *   simdOps: Record<string, number>, size: number}}
 */
export function analyzeWasm(bytes) {
  const b = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  const r = new Reader(b);
  const magic = r.bytes(4);
  if (magic[0] !== 0 || magic[1] !== 0x61 || magic[2] !== 0x73 || magic[3] !== 0x6d)
    throw new Error('not a WebAssembly binary (bad magic)');
  const version = r.bytes(4);
  if (version[0] !== 1) throw new Error(`unsupported WebAssembly version ${version[0]}`);

  const imports = [];
  const exports = [];
  let memory = null;
  const counts = { instructions: 0, simd: 0, simdOps: new Map() };
  let functions = 0;
  let functionsWithSimd = 0;

  while (!r.eof()) {
    const id = r.byte();
    const size = r.u32();
    const s = new Reader(b, r.pos, r.pos + size);
    r.pos += size;
    if (id === 2) { /* imports */
      for (let n = s.u32(), i = 0; i < n; i++) {
        const module = s.name();
        const name = s.name();
        const kind = s.byte();
        if (kind === 0) s.u32();
        else if (kind === 1) {
          s.byte();
          s.limits();
        } else if (kind === 2) {
          const lim = s.limits();
          memory = { min: lim.min, max: lim.max, exported: false, imported: true };
        } else if (kind === 3) {
          s.byte();
          s.byte();
        } else if (kind === 4) {
          s.byte();
          s.u32();
        } else throw new Error(`unknown import kind ${kind}`);
        imports.push({ module, name, kind: EXTERNAL_KIND[kind] });
      }
    } else if (id === 5) { /* memories */
      const n = s.u32();
      if (n > 0) {
        const lim = s.limits();
        memory = { min: lim.min, max: lim.max, exported: false, imported: false };
      }
    } else if (id === 7) { /* exports */
      for (let n = s.u32(), i = 0; i < n; i++) {
        const name = s.name();
        const kind = s.byte();
        s.u32();
        exports.push({ name, kind: EXTERNAL_KIND[kind] ?? String(kind) });
        if (kind === 2 && memory) memory.exported = true;
      }
    } else if (id === 10) { /* code */
      functions = s.u32();
      for (let i = 0; i < functions; i++) {
        const bodySize = s.u32();
        const body = new Reader(b, s.pos, s.pos + bodySize);
        s.pos += bodySize;
        for (let nl = body.u32(), j = 0; j < nl; j++) {
          body.u32();
          body.byte();
        }
        const before = counts.simd;
        scanBody(body, counts);
        if (body.pos !== body.end)
          throw new Error(`function ${i}: body decoded to ${body.pos - (body.end - bodySize)} of ${bodySize} bytes`);
        if (counts.simd > before) functionsWithSimd++;
      }
    }
  }
  const simdOps = {};
  for (const [k, v] of [...counts.simdOps].sort((a, b) => b[1] - a[1])) simdOps[`0xfd ${k}`] = v;
  return {
    imports,
    exports,
    memory,
    functions,
    functionsWithSimd,
    instructions: counts.instructions,
    simd: counts.simd,
    simdOps,
    size: b.length,
  };
}

function main(argv) {
  const args = { file: null, minSimd: 1, maxPages: null, requireExport: [], allowImport: null, json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--min-simd') args.minSimd = Number(argv[++i]);
    else if (a === '--max-pages') args.maxPages = Number(argv[++i]);
    else if (a === '--require-export') args.requireExport.push(...argv[++i].split(',').filter(Boolean));
    else if (a === '--allow-import') args.allowImport = argv[++i].split(',').filter(Boolean);
    else if (a === '--json') args.json = true;
    else if (!args.file) args.file = a;
    else throw new Error(`unexpected argument ${a}`);
  }
  if (!args.file) throw new Error('usage: check-wasm.mjs FILE.wasm [--min-simd N] [--max-pages N] [--require-export a,b] [--allow-import mod.name,...] [--json]');

  const info = analyzeWasm(readFileSync(args.file));
  const problems = [];
  if (info.simd < args.minSimd)
    problems.push(`${info.simd} SIMD instructions, expected at least ${args.minSimd}: was it built with -msimd128 and the wasmsimd kernels?`);
  const exported = new Set(info.exports.map((e) => e.name));
  for (const name of args.requireExport) if (!exported.has(name)) problems.push(`missing export ${name}`);
  if (args.maxPages !== null && (!info.memory || info.memory.max !== args.maxPages))
    problems.push(`memory maximum is ${info.memory ? info.memory.max : 'absent'} pages, expected ${args.maxPages}`);
  if (args.allowImport) {
    const allowed = new Set(args.allowImport);
    for (const imp of info.imports)
      if (!allowed.has(`${imp.module}.${imp.name}`)) problems.push(`unexpected import ${imp.module}.${imp.name}`);
  }

  if (args.json) console.log(JSON.stringify({ ...info, problems }, null, 2));
  else {
    const kib = (info.size / 1024).toFixed(1);
    console.log(`check-wasm: ${args.file}: ${kib} KiB, ${info.functions} functions, ${info.instructions} instructions`);
    console.log(`check-wasm: ${info.simd} SIMD instructions in ${info.functionsWithSimd} functions`);
    console.log(`check-wasm: imports: ${info.imports.map((i) => `${i.module}.${i.name}`).join(', ') || '(none)'}`);
    if (info.memory) console.log(`check-wasm: memory: ${info.memory.min} pages initial, ${info.memory.max ?? 'no'} maximum`);
  }
  if (problems.length) {
    for (const p of problems) console.error(`check-wasm: FAILED: ${p}`);
    return 1;
  }
  return 0;
}

const invokedDirectly = (() => {
  try {
    return !!process.argv[1] && realpathSync(resolve(process.argv[1])) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
})();
if (invokedDirectly) {
  try {
    process.exitCode = main(process.argv.slice(2));
  } catch (e) {
    console.error(`check-wasm: FAILED: ${e.message}`);
    process.exitCode = 1;
  }
}
