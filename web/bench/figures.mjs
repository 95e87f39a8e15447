#!/usr/bin/env node
/*
 * npm run figures: measures and draws the project's figures as self-contained
 * SVG (no external service, font or stylesheet; sans-serif text), readable on
 * GitHub:
 *
 *   decode-time.svg   (a) decode time vs context length T, dense vs sparse,
 *                     native (build/vashista bench) and wasm (bench.mjs's
 *                     runBench, through the JS API), softmax solver, needle
 *                     workload, log-log; sparse with flat routing (a bound
 *                     per page) and tree routing (a bound per node of 16
 *                     pages, the library's default); the native single-thread
 *                     read bandwidth floor for dense decode
 *   heatmap-eg.svg    (b) sparse decode time over (P, Kc) for the EG solver,
 *   heatmap-fw.svg        and for FW (native, page 64, one T; one color scale
 *                         shared by both maps)
 *   leakage.svg       (c) the EG solver's off-face mass on planted-gap
 *                     problems against the face theorem's bound
 *                     (n-|I|)/|I| exp(-Delta/(2 eps)) over Delta/eps (log y),
 *                     with the fitted slope; and the on-face bias vs eps
 *                     (`vashista leakage --json`)
 *   figures.json      the raw numbers, the commands, the date, the CPU model
 *
 * Usage: node bench/figures.mjs [--out DIR] [--quick] [--native PATH] [--no-wasm]
 *          [--reps N] [--T-native LIST] [--T-wasm LIST] [--heatmap-T N]
 *          [--replot FIGURES_JSON]
 *   --out DIR     where to write (default: <repo>/demo/figures; with --quick, a
 *                 new temporary directory, printed at the end)
 *   --quick       a smoke run in seconds: tiny T, a 2x2 grid, a short leakage
 *                 sweep, 3 repetitions (for tests); the numbers mean little
 *   --native PATH the native CLI (default <repo>/build/vashista; required)
 *   --no-wasm     skip the wasm measurements (figure (a) shows native only)
 *   --replot F    measure nothing: redraw the SVGs from a figures.json F (into
 *                 --out, default F's directory)
 * Timings are medians over repetitions (bench's rule); they are noisy on a
 * shared machine: figures.json records the load average before and after.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { median, parseCount } from './common.mjs';

const repo = fileURLToPath(new URL('../..', import.meta.url));

/* ---- arguments ---------------------------------------------------------------- */

function usageError(msg) {
  const e = new Error(msg);
  e.usage = true;
  return e;
}

function parseArgs(argv) {
  const a = {};
  const switches = new Set(['quick', 'no-wasm', 'help']);
  const valued = new Set(['out', 'native', 'reps', 'T-native', 'T-wasm', 'heatmap-T', 'replot']);
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    if (k === '-h') {
      a.help = true;
      continue;
    }
    if (!k.startsWith('--')) throw usageError(`unexpected argument ${k}`);
    const name = k.slice(2);
    if (switches.has(name)) a[name] = true;
    else if (valued.has(name)) {
      if (i + 1 >= argv.length) throw usageError(`${k} needs a value`);
      a[name] = argv[++i];
    } else throw usageError(`unknown option ${k} (try --help)`);
  }
  return a;
}

const USAGE =
  'usage: npm run figures -- [--out DIR] [--quick] [--native PATH] [--no-wasm] [--reps N]\n' +
  '         [--T-native LIST] [--T-wasm LIST] [--heatmap-T N] [--replot FIGURES_JSON]\n' +
  'Writes decode-time.svg, heatmap-eg.svg, heatmap-fw.svg, leakage.svg and figures.json\n' +
  '(default directory: demo/figures; --quick: a fast smoke run into a temporary directory).';

/* decode-time configurations: S:P:Kc:routing (bench's --config syntax). The
   first two differ only in routing: the summary compares them. */
const DECODE_CONFIGS = ['64:16:128:flat', '64:16:128:tree', '16:64:128:flat'];
const FULL = {
  nativeT: '4K,8K,16K,32K,64K,128K,256K,512K,1M',
  wasmT: '4K,8K,16K,32K,64K,128K,256K,512K,1M',
  configs: DECODE_CONFIGS,
  heatT: '128K',
  heatPage: 64,
  heatP: [4, 8, 16, 32, 64],
  heatKc: [32, 64, 128, 256, 512],
  reps: 15,
  bwMib: 512,
  leakageArgs: [],
};
const QUICK = {
  nativeT: '1K,4K',
  wasmT: '1K,4K',
  configs: DECODE_CONFIGS,
  heatT: '4K',
  heatPage: 64,
  heatP: [4, 8],
  heatKc: [32, 64],
  reps: 3,
  bwMib: 0,
  leakageArgs: ['--x', '2,8,16,24,32', '--bias-eps', '0.01,0.02,0.04'],
};
const MAX_CONFIGS = 16; /* per `vashista bench` call */

/* ---- helpers --------------------------------------------------------------------- */

const log = (s) => process.stderr.write(`figures: ${s}\n`);

function fmtT(T) {
  if (T >= 1 << 20 && T % (1 << 20) === 0) return `${T >> 20}M`;
  if (T >= 1024 && T % 1024 === 0) return `${T >> 10}K`;
  return String(T);
}

const shellQuote = (s) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${String(s).replace(/'/g, "'\\''")}'`);
const cmdline = (argv) => argv.map(shellQuote).join(' ');

function cpuModel() {
  try {
    const txt = readFileSync('/proc/cpuinfo', 'utf8');
    const m = /^model name\s*:\s*(.+)$/m.exec(txt);
    if (m) return m[1].trim();
  } catch {
    /* not Linux */
  }
  return os.cpus()[0]?.model ?? 'unknown';
}

/* CPU time (clock ticks) the whole machine was busy, and this process with
   its waited-for children used: their difference over a run is what other
   processes took (Linux /proc; null elsewhere). */
function cpuTicks() {
  try {
    const all = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const total = all.reduce((x, y) => x + y, 0);
    const busy = total - all[3] - (all[4] || 0); /* minus idle and iowait */
    const self = readFileSync('/proc/self/stat', 'utf8');
    const f = self.slice(self.lastIndexOf(')') + 2).split(' ').map(Number); /* f[0] is field 3 */
    const own = f[11] + f[12] + f[13] + f[14]; /* utime stime cutime cstime */
    return { total, busy, own };
  } catch {
    return null;
  }
}

/* Runs the native CLI; returns the parsed JSON. `okCodes`: exit codes whose stdout is still valid. */
function runNative(bin, args, { quiet, okCodes = [0] } = {}) {
  const argv = [...args];
  const t0 = Date.now();
  const r = spawnSync(bin, argv, { encoding: 'utf8', maxBuffer: 256 << 20, stdio: ['ignore', 'pipe', quiet ? 'pipe' : 'inherit'] });
  if (r.error) throw new Error(`${bin}: ${r.error.message}`);
  if (!okCodes.includes(r.status)) {
    const err = quiet ? (r.stderr ?? '').trim().split('\n').slice(-3).join(' / ') : 'see above';
    throw new Error(`'${cmdline([bin, ...argv])}' exited with status ${r.status} (${err})`);
  }
  return { json: JSON.parse(r.stdout), status: r.status, seconds: (Date.now() - t0) / 1e3 };
}

/* ---- SVG ------------------------------------------------------------------------- */

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const r2 = (x) => Math.round(x * 100) / 100;
const FONT = 'font-family="sans-serif"';

class Svg {
  constructor(w, h) {
    this.w = w;
    this.h = h;
    this.parts = [];
  }
  add(s) {
    this.parts.push(s);
  }
  text(x, y, s, { size = 12, anchor = 'start', weight = 'normal', fill = '#222', rotate = 0, baseline = null } = {}) {
    const tr = rotate ? ` transform="rotate(${rotate} ${r2(x)} ${r2(y)})"` : '';
    const bl = baseline ? ` dominant-baseline="${baseline}"` : '';
    this.add(`<text x="${r2(x)}" y="${r2(y)}" font-size="${size}" text-anchor="${anchor}" font-weight="${weight}" fill="${fill}"${bl}${tr}>${s}</text>`);
  }
  line(x1, y1, x2, y2, { stroke = '#222', width = 1, dash = null } = {}) {
    this.add(`<line x1="${r2(x1)}" y1="${r2(y1)}" x2="${r2(x2)}" y2="${r2(y2)}" stroke="${stroke}" stroke-width="${width}"${dash ? ` stroke-dasharray="${dash}"` : ''}/>`);
  }
  rect(x, y, w, h, { fill = 'none', stroke = 'none', width = 1 } = {}) {
    this.add(`<rect x="${r2(x)}" y="${r2(y)}" width="${r2(w)}" height="${r2(h)}" fill="${fill}" stroke="${stroke}" stroke-width="${width}"/>`);
  }
  polyline(pts, { stroke = '#222', width = 2, dash = null } = {}) {
    if (pts.length < 2) return;
    const d = pts.map(([x, y], i) => `${i ? 'L' : 'M'}${r2(x)},${r2(y)}`).join(' ');
    this.add(`<path d="${d}" fill="none" stroke="${stroke}" stroke-width="${width}" stroke-linejoin="round"${dash ? ` stroke-dasharray="${dash}"` : ''}/>`);
  }
  marker(x, y, kind, color, open) {
    const fill = open ? 'white' : color;
    if (kind === 'circle') this.add(`<circle cx="${r2(x)}" cy="${r2(y)}" r="4" fill="${fill}" stroke="${color}" stroke-width="1.5"/>`);
    else if (kind === 'square') this.rect(x - 3.8, y - 3.8, 7.6, 7.6, { fill, stroke: color, width: 1.5 });
    else if (kind === 'diamond')
      this.add(`<path d="M${r2(x)},${r2(y - 5)} L${r2(x + 5)},${r2(y)} L${r2(x)},${r2(y + 5)} L${r2(x - 5)},${r2(y)} Z" fill="${fill}" stroke="${color}" stroke-width="1.5"/>`);
    else if (kind === 'cross') {
      this.line(x - 4, y - 4, x + 4, y + 4, { stroke: color, width: 1.8 });
      this.line(x - 4, y + 4, x + 4, y - 4, { stroke: color, width: 1.8 });
    }
  }
  toString() {
    return (
      `<svg xmlns="http://www.w3.org/2000/svg" width="${this.w}" height="${this.h}" viewBox="0 0 ${this.w} ${this.h}" ${FONT}>\n` +
      `<rect x="0" y="0" width="${this.w}" height="${this.h}" fill="white"/>\n` +
      this.parts.join('\n') +
      '\n</svg>\n'
    );
  }
}

/* 10^k as text with a superscript exponent (1 and 10 written plainly). */
function pow10Label(k) {
  if (k === 0) return '1';
  if (k === 1) return '10';
  return `10<tspan dy="-6" font-size="9">${k}</tspan>`;
}

function niceStep(span, n) {
  const raw = span / n;
  const p = 10 ** Math.floor(Math.log10(raw));
  const f = raw / p;
  return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * p;
}

const fmtX = (x) => `${x.toFixed(x < 10 ? 1 : 0)}x`;

function fmtNum(v) {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e4 || a < 1e-3) return v.toExponential(0);
  return String(Number(v.toPrecision(3)));
}

/* An axis: kind 'lin' | 'log' | 'log2'; domain [lo, hi] -> range [a, b] pixels. */
class Axis {
  constructor(kind, lo, hi, a, b) {
    Object.assign(this, { kind, lo, hi, a, b });
  }
  f(v) {
    return this.kind === 'lin' ? v : this.kind === 'log2' ? Math.log2(v) : Math.log10(v);
  }
  map(v) {
    const t = (this.f(v) - this.f(this.lo)) / (this.f(this.hi) - this.f(this.lo));
    return this.a + t * (this.b - this.a);
  }
  /* { major: [{ v, label }], minor: [v] } */
  ticks({ target = 6, labelT = null } = {}) {
    const major = [];
    const minor = [];
    if (this.kind === 'lin') {
      const step = niceStep(this.hi - this.lo, target);
      for (let v = Math.ceil(this.lo / step - 1e-9) * step; v <= this.hi + step * 1e-9; v += step) major.push({ v, label: fmtNum(Number(v.toPrecision(12))) });
    } else if (this.kind === 'log2') {
      for (let k = Math.ceil(Math.log2(this.lo) - 1e-9); k <= Math.log2(this.hi) + 1e-9; k++) {
        const v = 2 ** k;
        major.push({ v, label: labelT ? labelT(v) : String(v) });
      }
    } else if (Math.log10(this.hi / this.lo) <= 2.2) {
      /* a narrow log axis: label 1, 2, 5 x 10^k, minor lines at the other integers */
      for (let k = Math.floor(Math.log10(this.lo)) - 1; k <= Math.ceil(Math.log10(this.hi)); k++)
        for (let m = 1; m <= 9; m++) {
          const v = Number((m * 10 ** k).toPrecision(6));
          if (v < this.lo * (1 - 1e-9) || v > this.hi * (1 + 1e-9)) continue;
          if (m === 1 || m === 2 || m === 5) major.push({ v, label: fmtNum(v) });
          else minor.push(v);
        }
    } else {
      const k0 = Math.floor(Math.log10(this.lo) + 1e-9);
      const k1 = Math.ceil(Math.log10(this.hi) - 1e-9);
      const every = [1, 2, 4, 5, 10, 20].find((e) => (k1 - k0) / e <= target) ?? Math.ceil((k1 - k0) / target);
      for (let k = k0; k <= k1; k++) {
        const v = 10 ** k;
        if (v >= this.lo * (1 - 1e-9) && v <= this.hi * (1 + 1e-9)) {
          if (k % every === 0) major.push({ v, label: pow10Label(k) });
          else minor.push(v);
        }
        if (every === 1)
          for (let m = 2; m <= 9; m++) {
            const u = m * v;
            if (u > this.lo && u < this.hi) minor.push(u);
          }
      }
    }
    return { major, minor };
  }
}

/* A plot panel: frame, grid, ticks, labels, series, legend. */
function panel(svg, { x0, y0, w, h, xa, ya, xlabel, ylabel, series, legend = 'top-left', xticks = {}, yticks = {}, bands = [] }) {
  const X = new Axis(xa.kind, xa.lo, xa.hi, x0, x0 + w);
  const Y = new Axis(ya.kind, ya.lo, ya.hi, y0 + h, y0);
  svg.rect(x0, y0, w, h, { fill: '#fcfcfc' });
  const xt = X.ticks(xticks);
  const yt = Y.ticks(yticks);
  for (const v of xt.minor) svg.line(X.map(v), y0, X.map(v), y0 + h, { stroke: '#f0f0f0' });
  for (const v of yt.minor) svg.line(x0, Y.map(v), x0 + w, Y.map(v), { stroke: '#f0f0f0' });
  for (const { v } of xt.major) svg.line(X.map(v), y0, X.map(v), y0 + h, { stroke: '#dcdcdc' });
  for (const { v } of yt.major) svg.line(x0, Y.map(v), x0 + w, Y.map(v), { stroke: '#dcdcdc' });
  for (const b of bands) b(svg, X, Y);
  svg.rect(x0, y0, w, h, { stroke: '#444' });
  for (const { v, label } of xt.major) {
    const px = X.map(v);
    svg.line(px, y0 + h, px, y0 + h + 5, { stroke: '#444' });
    svg.text(px, y0 + h + 19, label, { size: 12, anchor: 'middle' });
  }
  for (const { v, label } of yt.major) {
    const py = Y.map(v);
    svg.line(x0 - 5, py, x0, py, { stroke: '#444' });
    svg.text(x0 - 8, py + 4, label, { size: 12, anchor: 'end' });
  }
  svg.text(x0 + w / 2, y0 + h + 40, esc(xlabel), { size: 13, anchor: 'middle' });
  svg.text(x0 - 56, y0 + h / 2, esc(ylabel), { size: 13, anchor: 'middle', rotate: -90 });
  /* series, clipped to the domain */
  const inside = ([x, y]) => x >= xa.lo && x <= xa.hi && y >= ya.lo && y <= ya.hi && Number.isFinite(y);
  for (const s of series) {
    const pts = s.points.filter(inside).map(([x, y]) => [X.map(x), Y.map(y)]);
    if (s.line !== false) svg.polyline(pts, { stroke: s.color, width: s.width ?? 2, dash: s.dash });
    if (s.marker && s.marker !== 'none') for (const [px, py] of pts) svg.marker(px, py, s.marker, s.color, s.open);
  }
  /* legend */
  const entries = series.filter((s) => s.name);
  if (entries.length && legend) {
    const lw = Math.max(...entries.map((s) => s.name.length)) * 6.6 + 52;
    const lh = entries.length * 18 + 10;
    const lx = typeof legend === 'object' ? legend.x : legend.endsWith('left') ? x0 + 10 : x0 + w - lw - 10;
    const ly = typeof legend === 'object' ? legend.y : legend.startsWith('top') ? y0 + 10 : y0 + h - lh - 10;
    if (typeof legend === 'object') legend.bottom = ly + lh;
    svg.rect(lx, ly, lw, lh, { fill: 'white', stroke: '#bbb' });
    entries.forEach((s, i) => {
      const yy = ly + 15 + i * 18;
      if (s.line !== false) svg.line(lx + 8, yy, lx + 38, yy, { stroke: s.color, width: s.width ?? 2, dash: s.dash });
      if (s.marker && s.marker !== 'none') svg.marker(lx + 23, yy, s.marker, s.color, s.open);
      svg.text(lx + 46, yy + 4, esc(s.name), { size: 11.5 });
    });
  }
  return { X, Y };
}

function header(svg, title, lines) {
  svg.text(20, 26, esc(title), { size: 16, weight: 'bold' });
  lines.forEach((l, i) => svg.text(20, 45 + i * 15, esc(l), { size: 11, fill: '#555' }));
}

/* viridis, 9 stops */
const VIRIDIS = ['#440154', '#472d7b', '#3b528b', '#2c728e', '#21918c', '#28ae80', '#5ec962', '#addc30', '#fde725'];
function colormap(t) {
  t = Math.min(1, Math.max(0, t));
  const x = t * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(x));
  const f = x - i;
  const c = (hex) => [1, 3, 5].map((k) => parseInt(hex.slice(k, k + 2), 16));
  const a = c(VIRIDIS[i]);
  const b = c(VIRIDIS[i + 1]);
  return `rgb(${a.map((v, k) => Math.round(v + f * (b[k] - v))).join(',')})`;
}

/* ---- figure (a): decode time vs T ------------------------------------------------ */

/* A bench row's configuration with its routing: S:P:Kc:flat, S:P:Kc:tree, S:P:Kc:treeE.
   Rows and configurations from before routing existed (no routing field or
   suffix) were flat: the only routing then. */
const rowConfig = (r) => `${r.page_size}:${r.pages}:${r.candidates}:${r.routing ?? 'flat'}${r.routing === 'tree' && r.expand ? r.expand : ''}`;
const normConfig = (c) => (/:(flat|tree\d*)$/.test(c) ? c : `${c}:flat`);
/* '64:16:128:tree' -> '64:16:128 tree' (legend and notes) */
const showConfig = (c) => c.replace(/:(flat|tree\d*)$/, ' $1');

function figDecodeTime(data, meta) {
  const svg = new Svg(1060, 730);
  const nat = data.native.results;
  const wasm = data.wasm?.results ?? [];
  const configs = data.configs.map(normConfig);
  const palette = ['#c0392b', '#8e44ad', '#1e8449', '#d68910', '#17a589'];
  /* a tree configuration takes purple, its flat twin (same S:P:Kc) red */
  const colors = { dense: '#1f4e9c' };
  const treeColor = '#8e44ad';
  let next = 0;
  for (const c of configs) {
    if (/:tree\d*$/.test(c)) colors[c] = treeColor;
    else {
      while (palette[next] === treeColor) next++;
      colors[c] = palette[next++ % palette.length];
    }
  }
  const series = [];
  const byCfg = (rows, c) => rows.filter((r) => rowConfig(r) === c).sort((p, q) => p.T - q.T);
  const denseRows = (rows) => byCfg(rows, configs[0]);
  const add = (rows, platform) => {
    if (!rows.length) return;
    const open = platform === 'wasm';
    const dash = open ? '7 4' : null;
    const marker = open ? 'square' : 'circle';
    series.push({ name: `${platform} dense`, points: denseRows(rows).map((r) => [r.T, r.dense_ms]), color: colors.dense, dash, marker, open });
    for (const c of configs) series.push({ name: `${platform} sparse ${showConfig(c)}`, points: byCfg(rows, c).map((r) => [r.T, r.sparse_ms]), color: colors[c], dash, marker, open });
  };
  add(nat, 'native');
  add(wasm, 'wasm');
  const bw = data.native.read_bandwidth_gbs;
  const Ts = [...new Set([...nat, ...wasm].map((r) => r.T))].sort((p, q) => p - q);
  if (bw) {
    const bytesPerToken = data.native.workload.kv_heads * (data.native.workload.head_dim + data.native.workload.value_dim) * 4;
    series.push({ name: `dense at read bandwidth, ${bw.toFixed(1)} GB/s`, points: Ts.map((T) => [T, ((T * bytesPerToken) / (bw * 1e9)) * 1e3]), color: '#888', dash: '2 3', width: 1.5, marker: 'none' });
  }
  const ys = series.flatMap((s) => s.points.map((p) => p[1])).filter((v) => v > 0 && Number.isFinite(v));
  const ylo = 10 ** Math.floor(Math.log10(Math.min(...ys)));
  const yhi = 10 ** Math.ceil(Math.log10(Math.max(...ys)));
  const x0 = 90;
  const y0 = 118;
  const w = 600;
  const h = 520;
  const legendBox = { x: x0 + w + 20, y: y0 };
  header(svg, `Decode time vs context length: dense vs sparse (flat, tree routing), native and wasm (${data.workloadDesc})`, [
    `native: ${data.commands.native}`,
    data.wasm ? `wasm:   ${data.commands.wasm}` : `wasm:   not measured (${data.wasmNote ?? 'skipped'})`,
    `${meta.date}, ${meta.cpu}, ${meta.cores} cores; medians of >= ${data.native.min_reps} decodes (>= 0.3 s); one query head, d = dv = 128.`,
  ]);
  panel(svg, {
    x0, y0, w, h,
    xa: { kind: 'log2', lo: Ts[0], hi: Ts[Ts.length - 1] },
    ya: { kind: 'log', lo: ylo, hi: yhi },
    xticks: { labelT: fmtT },
    xlabel: 'context length T (tokens, log scale)',
    ylabel: 'time per decode (ms, log scale)',
    series,
    legend: legendBox,
  });

  /* side notes: [bold heading, lines] blocks */
  const blocks = [];
  const ms = (v) => `${v.toPrecision(3)} ms`;
  const maxT = (rows) => Math.max(...rows.map((r) => r.T));
  /* sparse vs dense at the largest T of each platform (and native at wasm's largest T when that is smaller) */
  const atT = (rows, platform, Tm) => {
    const lines = [];
    const dense = rows.find((r) => r.T === Tm);
    if (!dense) return;
    lines.push(`${platform} dense ${ms(dense.dense_ms)}; sparse:`);
    for (const c of configs) {
      const r = rows.find((q) => q.T === Tm && rowConfig(q) === c);
      if (r) lines.push(`  ${showConfig(c)}: ${ms(r.sparse_ms)} (${fmtX(r.dense_ms / r.sparse_ms)} faster)`);
    }
    blocks.push([`Sparse vs dense, ${platform}, T = ${fmtT(Tm)}:`, lines.slice(1), lines[0]]);
  };
  if (nat.length) atT(nat, 'native', maxT(nat));
  if (wasm.length) {
    if (nat.length && maxT(wasm) < maxT(nat)) atT(nat, 'native', maxT(wasm));
    atT(wasm, 'wasm', maxT(wasm));
  }
  /* growth of the sparse time with T: t(largest)/t(8K), or the smallest T when 8K was not measured */
  const growth = [];
  let growthHead = null;
  for (const [rows, platform] of [[nat, 'native'], [wasm, 'wasm']]) {
    if (!rows.length) continue;
    const hi = maxT(rows);
    const lo = rows.some((r) => r.T === 8192) && hi > 8192 ? 8192 : Math.min(...rows.map((r) => r.T));
    if (hi === lo) continue;
    const parts = [];
    for (const c of configs) {
      const a = rows.find((r) => r.T === lo && rowConfig(r) === c);
      const b = rows.find((r) => r.T === hi && rowConfig(r) === c);
      if (a && b) parts.push(`${showConfig(c)} ${fmtX(b.sparse_ms / a.sparse_ms)}`);
    }
    const range = `t(${fmtT(hi)}) / t(${fmtT(lo)})`;
    growthHead ??= range;
    const label = range === growthHead ? platform : `${platform}, ${range}`;
    if (parts.length) growth.push(`${label}: ${parts.slice(0, 2).join(', ')}`, ...(parts.length > 2 ? [`  ${parts.slice(2).join(', ')}`] : []));
  }
  if (growth.length) blocks.push([`Sparse time growth, ${growthHead}:`, growth]);
  /* wasm / native at wasm's largest T */
  if (wasm.length && nat.length) {
    const Tm = maxT(wasm);
    const lines = [];
    const d0 = wasm.find((r) => r.T === Tm && rowConfig(r) === configs[0]);
    const n0 = nat.find((r) => r.T === Tm && rowConfig(r) === configs[0]);
    if (d0 && n0) lines.push(`dense ${(d0.dense_ms / n0.dense_ms).toFixed(2)}x; sparse:`);
    for (const c of configs) {
      const r = wasm.find((q) => q.T === Tm && rowConfig(q) === c);
      const n = nat.find((q) => q.T === Tm && rowConfig(q) === c);
      if (r && n) lines.push(`  ${showConfig(c)}: ${(r.sparse_ms / n.sparse_ms).toFixed(2)}x`);
    }
    if (lines.length) blocks.push([`wasm / native time, T = ${fmtT(Tm)}:`, lines]);
  }
  let yy = legendBox.bottom + 24;
  const nx = x0 + w + 20;
  for (const [head, lines, first] of blocks) {
    svg.text(nx, yy, esc(head), { size: 12, weight: 'bold' });
    for (const l of first ? [first, ...lines] : lines) {
      yy += 15;
      svg.text(nx + (l.startsWith('  ') ? 12 : 0), yy, esc(l.trim()), { size: 11, fill: '#333' });
    }
    yy += 22;
  }
  yy += 4;
  const expl = [
    'sparse S:P:Kc = page size : routed pages',
    '(plus 1 sink and 1 recent page) : candidates;',
    'softmax over the candidates, certified',
    'error bound; needle workload (4 needles,',
    'margin 12), recall 100% unless noted.',
    ...(configs.some((c) => /:tree\d*$/.test(c))
      ? [
          'flat routing: a score bound for every page,',
          'then the top P pages.',
          'tree routing (the default): a bound for every',
          'node of 16 pages, the top max(32, 2P/16) nodes',
          'expanded, the top P of their pages; the nodes',
          'not expanded are certified by their node bound',
          '(a guarantee still, but looser).',
        ]
      : ['flat routing: a score bound for every page.']),
    'Solid/filled: native AVX2 (build/vashista).',
    'Dashed/open: wasm SIMD in Node through the',
    'JS API (inputs copied in, outputs out).',
    ...(bw ? ['Dotted: native dense time if it read K and V', `at the machine's single-thread read bandwidth.`] : []),
  ];
  if (data.recallNote) expl.push(data.recallNote);
  for (const l of expl) {
    svg.text(nx, yy, esc(l), { size: 11, fill: '#444' });
    yy += 15;
  }
  svg.h = Math.max(svg.h, Math.ceil(yy + 10));
  return svg.toString();
}

/* ---- figure (b): heatmaps ---------------------------------------------------------- */

function figHeatmap(solver, hm, range, meta) {
  const P = hm.P;
  const Kc = hm.Kc;
  const cw = 104;
  const ch = 62;
  const x0 = 110;
  const y0 = 126;
  const W = x0 + cw * Kc.length + 190;
  const H = y0 + ch * P.length + 120;
  const svg = new Svg(Math.max(W, 760), H);
  const name = solver === 'eg' ? 'EG (entropic projection, exponentiated gradient)' : 'FW (projection, Frank-Wolfe)';
  header(svg, `Sparse decode time over (P, Kc): ${name}`, [
    hm.commands.length === 1 && hm.commands[0].length < 150
      ? hm.commands[0]
      : `${hm.commands[0].replace(/--config \S+/, `--config ${hm.page}:P:Kc,...`)}  (${hm.commands.length} calls; figures.json)`,
    `native ${hm.isa}, T = ${fmtT(hm.T)}, page 64, ${hm.options.routing ?? 'flat'} routing${hm.options.routing === 'tree' ? ` (expand ${hm.options.expand || 'auto'})` : ''}, needle workload, solver ${solver} (${solver === 'eg' ? `eps ${Number(hm.options.eps.toPrecision(3))}, ` : ''}max_iter ${hm.options.max_iter}, solver_tol ${Number(hm.options.solver_tol.toPrecision(3))})`,
    `${meta.date}, ${meta.cpu}; cell: median ms per decode; second line: speedup over dense (${hm.dense_ms.toPrecision(3)} ms)`,
  ]);
  const [lo, hi] = range;
  const tOf = (v) => (Math.log(v) - Math.log(lo)) / (Math.log(hi) - Math.log(lo));
  for (let i = 0; i < P.length; i++)
    for (let j = 0; j < Kc.length; j++) {
      const r = hm.cells.find((c) => c.pages === P[i] && c.candidates === Kc[j]);
      const x = x0 + j * cw;
      const y = y0 + i * ch;
      if (!r) {
        svg.rect(x, y, cw, ch, { fill: '#eee', stroke: 'white', width: 2 });
        svg.text(x + cw / 2, y + ch / 2 + 4, 'n/a', { size: 12, anchor: 'middle', fill: '#888' });
        continue;
      }
      const t = tOf(r.sparse_ms);
      svg.rect(x, y, cw, ch, { fill: colormap(t), stroke: 'white', width: 2 });
      const fg = t > 0.62 ? '#111' : '#fff';
      svg.text(x + cw / 2, y + ch / 2 - 2, r.sparse_ms.toPrecision(3), { size: 15, anchor: 'middle', weight: 'bold', fill: fg });
      const sp = r.dense_ms / r.sparse_ms;
      let sub = `${sp.toFixed(sp < 10 ? 1 : 0)}x`;
      if (r.mean_candidates < r.candidates - 0.5) sub += `, |C| ${Math.round(r.mean_candidates)}`;
      if (r.recall !== null && r.recall < 1) sub += `, recall ${(100 * r.recall).toFixed(0)}%`;
      svg.text(x + cw / 2, y + ch / 2 + 15, esc(sub), { size: 10.5, anchor: 'middle', fill: fg });
    }
  for (let j = 0; j < Kc.length; j++) svg.text(x0 + j * cw + cw / 2, y0 + P.length * ch + 18, String(Kc[j]), { size: 13, anchor: 'middle' });
  for (let i = 0; i < P.length; i++) svg.text(x0 - 10, y0 + i * ch + ch / 2 + 5, String(P[i]), { size: 13, anchor: 'end' });
  svg.text(x0 + (cw * Kc.length) / 2, y0 + P.length * ch + 40, 'Kc: candidate tokens kept after exact scoring', { size: 13, anchor: 'middle' });
  svg.text(x0 - 46, y0 + (P.length * ch) / 2, 'P: routed pages (+ sink + recent)', { size: 13, anchor: 'middle', rotate: -90 });
  /* color bar (log scale), shared by the EG and FW maps */
  const bx = x0 + Kc.length * cw + 34;
  const by = y0;
  const bh = P.length * ch;
  const steps = 64;
  for (let k = 0; k < steps; k++) svg.rect(bx, by + bh - ((k + 1) * bh) / steps, 20, bh / steps + 0.6, { fill: colormap((k + 0.5) / steps) });
  svg.rect(bx, by, 20, bh, { stroke: '#444' });
  const A = new Axis('log', lo, hi, by + bh, by);
  const ticks = [];
  for (let k = Math.floor(Math.log10(lo)); k <= Math.ceil(Math.log10(hi)); k++)
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** k;
      if (v >= lo * 0.999 && v <= hi * 1.001) ticks.push(v);
    }
  if (ticks.length < 2) ticks.push(lo, hi);
  for (const v of ticks) {
    const py = A.map(v);
    svg.line(bx + 20, py, bx + 25, py, { stroke: '#444' });
    svg.text(bx + 28, py + 4, fmtNum(Number(v.toPrecision(3))), { size: 11 });
  }
  svg.text(bx + 10, by - 10, 'ms (log)', { size: 11, anchor: 'middle' });
  const foot = [
    `One color scale for the EG and FW maps: ${lo.toPrecision(3)} .. ${hi.toPrecision(3)} ms. |C|: mean candidates when the routed pages hold fewer than Kc tokens.`,
    `Needle recall 100% in every cell unless shown. Dense decode over all ${fmtT(hm.T)} tokens: ${hm.dense_ms.toPrecision(3)} ms (median over the calls).`,
  ];
  foot.forEach((l, i) => svg.text(20, H - 34 + i * 15, esc(l), { size: 10.5, fill: '#555' }));
  return svg.toString();
}

/* ---- figure (c): leakage ------------------------------------------------------------- */

function figLeakage(L, meta) {
  const svg = new Svg(1080, 620);
  const sw = L.sweeps;
  const pm = L.problem;
  header(svg, 'EG off-face leakage on planted-gap problems vs the face theorem\u2019s bound', [
    `${L.command_line}    (${meta.date}, ${meta.cpu}, isa ${L.isa})`,
    `m = ${pm.face_keys} face keys (alpha* = ${pm.alpha_star.map((v) => v.toPrecision(3)).join(', ')}), n = ${pm.keys} keys, d = ${pm.dim}; every off-face KKT multiplier = Delta; EG stopped at duality gap <= ${L.solver.tol}.`,
    `Bound (DESIGN section 2): (n-|I|)/|I| exp(-Delta/(2 eps)). Measured: sum of alpha off the face. Fit: least squares of log(mass) over Delta/eps >= ${L.fit_from}.`,
  ]);
  const xs = sw.flatMap((s) => s.points.map((p) => p.x));
  const xhi = Math.max(...xs);
  const masses = sw.flatMap((s) => s.points.map((p) => p.mass)).filter((v) => v > 0);
  const ylo = 10 ** Math.floor(Math.log10(Math.min(...masses)) - 0.5);
  const series = [];
  const s0 = sw.find((s) => s.varied === 'eps');
  const s1 = sw.find((s) => s.varied === 'delta');
  const grid = Array.from({ length: 141 }, (_, i) => (xhi * i) / 140);
  const nm = (pm.keys - pm.face_keys) / pm.face_keys;
  series.push({ name: 'bound (n-|I|)/|I| exp(-Delta/(2 eps)): slope -1/2', points: grid.map((x) => [x, nm * Math.exp(-x / 2)]), color: '#c0392b', width: 2.2, marker: 'none' });
  if (s0)
    series.push({ name: 'solver\u2019s own leakage_bound (eps sweep)', points: s0.points.filter((p) => p.leakage_bound > 0).map((p) => [p.x, p.leakage_bound]), color: '#e59866', dash: '5 3', width: 1.5, marker: 'diamond', open: true });
  if (s0) series.push({ name: `measured, eps varied (Delta = ${s0.delta})`, points: s0.points.map((p) => [p.x, p.mass]), color: '#1f4e9c', line: false, marker: 'circle' });
  if (s1) series.push({ name: `measured, Delta varied (eps = ${s1.eps})`, points: s1.points.map((p) => [p.x, p.mass]), color: '#1e8449', line: false, marker: 'cross' });
  const fitS = s0 ?? s1;
  if (fitS && Number.isFinite(fitS.slope)) {
    const fx = grid.filter((x) => x >= L.fit_from * 0.6);
    series.push({ name: `fit: log(mass) = ${fitS.intercept.toFixed(2)} ${fitS.slope < 0 ? '-' : '+'} ${Math.abs(fitS.slope).toFixed(4)} Delta/eps`, points: fx.map((x) => [x, Math.exp(fitS.intercept + fitS.slope * x)]), color: '#1f4e9c', width: 1.2, dash: '1 3', marker: 'none' });
  }
  const x0 = 90;
  const y0 = 110;
  const w = 560;
  const h = 420;
  panel(svg, {
    x0, y0, w, h,
    xa: { kind: 'lin', lo: 0, hi: xhi },
    ya: { kind: 'log', lo: ylo, hi: 10 },
    xlabel: 'Delta / eps',
    ylabel: 'off-face mass (log scale)',
    series,
    legend: 'bottom-left',
    yticks: { target: 8 },
  });
  const slopes = sw.map((s) => `${s.varied === 'eps' ? 'eps sweep' : 'Delta sweep'}: ${Number.isFinite(s.slope) ? s.slope.toFixed(4) : 'n/a'}`).join(', ');
  svg.text(x0 + w - 8, y0 + 20, esc(`fitted slope of log(mass) vs Delta/eps: ${slopes}`), { size: 11.5, anchor: 'end', weight: 'bold' });
  svg.text(x0 + w - 8, y0 + 36, esc('fixed point alpha_j/alpha_i = exp(-(g_j - g_i)/eps) predicts -1; the bound decays at -1/2'), { size: 11, anchor: 'end', fill: '#444' });
  svg.text(x0 + w - 8, y0 + 52, esc(`bound violations: ${L.bound_violations}`), { size: 11, anchor: 'end', fill: '#444' });

  /* right: on-face bias vs eps */
  const B = L.bias;
  const bx0 = 760;
  const bw = 280;
  if (B && B.points.length) {
    const e = B.points.map((p) => p.eps);
    const b = B.points.map((p) => p.bias).filter((v) => v > 0);
    const elo = Math.min(...e) / 1.4;
    const ehi = Math.max(...e) * 1.4;
    const blo = Math.min(...b) / 1.5;
    const bhi = Math.max(...b) * 1.5;
    const ef = [Math.min(...e), Math.max(...e)];
    const fit = Number.isFinite(B.slope) ? ef.map((x) => [x, Math.exp(B.intercept + B.slope * Math.log(x))]) : [];
    panel(svg, {
      x0: bx0, y0, w: bw, h,
      xa: { kind: 'log', lo: elo, hi: ehi },
      ya: { kind: 'log', lo: blo, hi: bhi },
      xlabel: 'eps (log scale)',
      ylabel: 'on-face bias ||alpha_eps - alpha_FW||_1',
      series: [
        { name: `fit: slope ${B.slope.toFixed(3)} (theory 1)`, points: fit, color: '#7d3c98', width: 1.2, dash: '4 3', marker: 'none' },
        { name: `measured (Delta = ${B.delta})`, points: B.points.map((p) => [p.eps, p.bias]), color: '#7d3c98', line: false, marker: 'circle' },
      ],
      legend: 'top-left',
    });
    svg.text(bx0, y0 - 8, 'On-face bias: linear in eps', { size: 12, weight: 'bold' });
  }
  svg.text(x0, y0 - 8, 'Off-face mass (log) vs Delta / eps', { size: 12, weight: 'bold' });
  return svg.toString();
}


const FIGURES = ['decode-time.svg', 'heatmap-eg.svg', 'heatmap-fw.svg', 'leakage.svg'];

/* The SVGs of a figures.json document: { file name: text }. */
function render(summary) {
  const meta = { date: summary.date.slice(0, 10), cpu: summary.machine.cpu_model, cores: summary.machine.logical_cpus };
  const dt = summary.decode_time;
  const recallBad = [...dt.native.results, ...(dt.wasm?.results ?? [])].filter((r) => r.recall !== null && r.recall < 1);
  const data = {
    native: dt.native,
    wasm: dt.wasm,
    wasmNote: dt.wasm_note,
    configs: (dt.configs ?? [...new Set(dt.native.results.map(rowConfig))]).map(normConfig),
    workloadDesc: 'needle workload, softmax',
    recallNote: recallBad.length ? `Recall < 100% at: ${recallBad.map((r) => `${fmtT(r.T)} ${showConfig(rowConfig(r))}`).join(', ')}` : null,
    commands: dt.commands,
  };
  const heat = summary.heatmaps;
  const allMs = ['eg', 'fw'].flatMap((s) => heat[s].cells.map((c) => c.sparse_ms)).filter((v) => v > 0);
  const range = [Math.min(...allMs), Math.max(...allMs)];
  if (!(range[1] > range[0])) range[1] = range[0] * 2;
  return {
    'decode-time.svg': figDecodeTime(data, meta),
    'heatmap-eg.svg': figHeatmap('eg', heat.eg, range, meta),
    'heatmap-fw.svg': figHeatmap('fw', heat.fw, range, meta),
    'leakage.svg': figLeakage(summary.leakage, meta),
  };
}

/* ---- main ------------------------------------------------------------------------------ */

async function main() {
  const a = parseArgs(process.argv.slice(2));
  if (a.help) {
    console.log(USAGE);
    return;
  }
  if (a.replot) {
    const summary = JSON.parse(readFileSync(a.replot, 'utf8'));
    const dir = a.out ? resolve(a.out) : dirname(resolve(a.replot));
    mkdirSync(dir, { recursive: true });
    const files = render(summary);
    for (const [f, text] of Object.entries(files)) writeFileSync(join(dir, f), text);
    log(`redrew ${Object.keys(files).join(', ')} in ${dir} from ${a.replot} (measured ${summary.date})`);
    console.log(dir);
    return;
  }
  const t0 = Date.now();
  const cfg = { ...(a.quick ? QUICK : FULL) };
  if (a.reps) cfg.reps = Number(a.reps);
  if (a['T-native']) cfg.nativeT = a['T-native'];
  if (a['T-wasm']) cfg.wasmT = a['T-wasm'];
  if (a['heatmap-T']) cfg.heatT = a['heatmap-T'];
  const out = a.out ? resolve(a.out) : a.quick ? mkdtempSync(join(os.tmpdir(), 'vashista-figures-')) : join(repo, 'demo', 'figures');
  const bin = a.native ? resolve(a.native) : join(repo, 'build', 'vashista');
  if (!existsSync(bin))
    throw new Error(`no native CLI at ${bin}: build it first (cd ${repo} && cmake -S . -B build && cmake --build build -j2), or pass --native PATH`);
  {
    const r = spawnSync(bin, ['leakage', '--help'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${bin} has no 'leakage' subcommand: rebuild it (cmake --build ${join(repo, 'build')} -j2)`);
  }
  mkdirSync(out, { recursive: true });
  const quiet = !!a.quick;
  const cpu = cpuModel();
  const date = new Date();
  const meta = { date: date.toISOString().slice(0, 10), cpu, cores: os.cpus().length };
  const load0 = os.loadavg();
  const ticks0 = cpuTicks();
  const binShown = bin.startsWith(repo) ? bin.slice(repo.length) : bin;

  /* (a) native */
  log(`(a) native decode time, T = ${cfg.nativeT}, configs ${cfg.configs.join(',')}`);
  const natArgs = ['bench', '--json', '--T', cfg.nativeT, '--config', cfg.configs.join(','), '--solver', 'softmax', '--workload', 'needle', '--reps', String(cfg.reps), '--bw-mib', String(cfg.bwMib)];
  if (quiet) natArgs.push('--quiet');
  const nat = runNative(bin, natArgs, { quiet });
  log(`    ${nat.seconds.toFixed(1)} s`);

  /* (a) wasm */
  let wasm = null;
  let wasmNote = null;
  let wasmSeconds = 0;
  const wasmArgv = ['--T', cfg.wasmT, '--config', cfg.configs.join(','), '--solver', 'softmax', '--workload', 'needle', '--reps', String(cfg.reps), '--native', 'none', '--json'];
  if (a['no-wasm']) wasmNote = 'skipped (--no-wasm)';
  else {
    log(`(a) wasm decode time, T = ${cfg.wasmT}`);
    const tw = Date.now();
    try {
      const { parseArgs: benchArgs, runBench } = await import('./bench.mjs');
      wasm = (await runBench(benchArgs(wasmArgv))).report;
    } catch (e) {
      wasmNote = `wasm benchmark failed: ${e.code ? `${e.code}: ` : ''}${e.message}`;
      log(`    ${wasmNote}; figure (a) shows native only`);
    }
    wasmSeconds = (Date.now() - tw) / 1e3;
    log(`    ${wasmSeconds.toFixed(1)} s`);
  }

  /* (b) heatmaps */
  const heat = {};
  const grid = cfg.heatP.flatMap((P) => cfg.heatKc.map((Kc) => `${cfg.heatPage}:${P}:${Kc}`));
  for (const solver of ['eg', 'fw']) {
    log(`(b) ${solver} heatmap, T = ${cfg.heatT}, P ${cfg.heatP.join(',')} x Kc ${cfg.heatKc.join(',')}`);
    const cells = [];
    const dense = [];
    const commands = [];
    const raw = [];
    let options = null;
    let isa = null;
    let seconds = 0;
    for (let i = 0; i < grid.length; i += MAX_CONFIGS) {
      const chunk = grid.slice(i, i + MAX_CONFIGS);
      const args = ['bench', '--json', '--T', cfg.heatT, '--solver', solver, '--workload', 'needle', '--config', chunk.join(','), '--reps', String(cfg.reps), '--bw-mib', '0'];
      if (quiet) args.push('--quiet');
      const r = runNative(bin, args, { quiet });
      seconds += r.seconds;
      commands.push(cmdline([binShown.replace(/^\//, ''), ...args]));
      raw.push(r.json);
      options = r.json.options;
      isa = r.json.isa;
      for (const row of r.json.results) {
        cells.push(row);
        dense.push(row.dense_ms);
      }
    }
    heat[solver] = { solver, T: parseCount(cfg.heatT), P: cfg.heatP, Kc: cfg.heatKc, page: cfg.heatPage, cells, dense_ms: median(dense), options, isa, commands, raw, seconds };
    log(`    ${seconds.toFixed(1)} s`);
  }

  /* (c) leakage */
  log('(c) leakage sweep');
  const lkArgs = ['leakage', '--json', ...cfg.leakageArgs];
  if (quiet) lkArgs.push('--quiet');
  const lk = runNative(bin, lkArgs, { quiet, okCodes: [0, 1] });
  const leakage = { ...lk.json, command_line: cmdline([binShown.replace(/^\//, ''), ...lkArgs]) };
  if (lk.status === 1) log(`    WARNING: ${lk.json.bound_violations} measured masses exceed the bound`);
  log(`    ${lk.seconds.toFixed(1)} s`);

  const load1 = os.loadavg();
  const ticks1 = cpuTicks();
  const ncpu = os.cpus().length;
  const others =
    ticks0 && ticks1 && ticks1.total > ticks0.total
      ? Math.max(0, (ticks1.busy - ticks0.busy - (ticks1.own - ticks0.own)) / (ticks1.total - ticks0.total)) * ncpu
      : null;
  if (others !== null && others > 0.25) log(`note: other processes kept ${others.toFixed(2)} of ${ncpu} CPUs busy on average during the run; timings may be inflated`);
  const runtime = (Date.now() - t0) / 1e3;
  const summary = {
    generator: 'web/bench/figures.mjs',
    command: `cd web && npm run figures${process.argv.length > 2 ? ` -- ${cmdline(process.argv.slice(2))}` : ''}`,
    quick: !!a.quick,
    date: date.toISOString(),
    machine: {
      cpu_model: cpu,
      logical_cpus: os.cpus().length,
      memory_gib: Number((os.totalmem() / 2 ** 30).toFixed(1)),
      platform: `${os.type()} ${os.release()} ${os.arch()}`,
      node: process.versions.node,
      loadavg_before: load0.map((v) => Number(v.toFixed(2))),
      loadavg_after: load1.map((v) => Number(v.toFixed(2))),
      other_processes_cpus_busy: others === null ? null : Number(others.toFixed(2)),
      note:
        'Single-threaded timings (medians). other_processes_cpus_busy: the average number of CPUs other processes kept busy during the run (from /proc/stat); ' +
        'anything above ~0.2 on this 2-CPU machine competes for memory bandwidth and a core. Benchmarks are noisy: expect a few to tens of percent between runs.',
    },
    runtime_s: Number(runtime.toFixed(1)),
    decode_time: {
      configs: cfg.configs,
      commands: {
        native: cmdline([binShown.replace(/^\//, ''), ...natArgs]),
        wasm: `cd web && npm run bench -- ${cmdline(wasmArgv)}`,
      },
      native: nat.json,
      native_seconds: nat.seconds,
      wasm,
      wasm_note: wasmNote,
      wasm_seconds: wasmSeconds,
    },
    heatmaps: heat,
    leakage,
    files: [...FIGURES, 'figures.json'],
  };
  const files = render(summary);
  for (const [f, text] of Object.entries(files)) writeFileSync(join(out, f), text);
  writeFileSync(join(out, 'figures.json'), `${JSON.stringify(summary, null, 2)}\n`);
  log(`wrote ${[...Object.keys(files), 'figures.json'].join(', ')} to ${out} in ${runtime.toFixed(1)} s`);
  console.log(out);
}

main().catch((e) => {
  console.error(`figures: ${e.message}`);
  process.exitCode = e.usage ? 2 : 1;
});
