// The demo page: reads the controls (or URL parameters), runs the worker and
// draws what it posts. ?auto=1 runs at once with the URL's configuration
// (e.g. ?auto=1&T=4096&seed=1); ?report=1 additionally POSTs the displayed
// numbers, the errors seen and the requests made to /demo-report (the
// browser test uses it; demo/serve.mjs answers 204 unless a test hooks it)
// and sets window.__vashistaReport to the same object (the only channel on
// file://, for the single-file build).
import { DEFAULTS, configFrom, estimateBytes, formatBytes, MAX_BYTES } from './shared.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const errors = [];
window.addEventListener('error', (e) => errors.push(`error: ${e.message} at ${e.filename}:${e.lineno}`));
window.addEventListener('unhandledrejection', (e) => errors.push(`unhandled rejection: ${e.reason?.message ?? e.reason}`));
const consoleError = console.error.bind(console);
console.error = (...a) => { errors.push(`console.error: ${a.join(' ')}`); consoleError(...a); };

const form = $('controls');
const fields = ['T', 'heads', 'kvHeads', 'd', 'pageSize', 'P', 'Kc', 'solver', 'routing', 'tolerance', 'eps', 'maxIter', 'solverTol', 'workload', 'seed'];
function writeForm(cfg) {
  for (const k of fields) form.elements[k].value = cfg[k];
  if (params.has('heatmap')) form.elements.heatmap.checked = params.get('heatmap') !== '0';
}
function readForm() {
  const cfg = configFrom({ get: (k) => form.elements[k]?.value ?? null });
  cfg.heatmap = form.elements.heatmap.checked;
  cfg.noTiming = params.get('noTiming') === '1';
  return cfg;
}
function validate(cfg) {
  const bad = [];
  for (const k of ['T', 'heads', 'kvHeads', 'd', 'pageSize', 'P', 'Kc']) if (!Number.isInteger(cfg[k]) || cfg[k] < 1) bad.push(`${k} must be a positive integer`);
  if (cfg.heads % cfg.kvHeads) bad.push('heads must be a multiple of KV heads');
  if (!['flat', 'tree'].includes(cfg.routing)) bad.push('routing must be flat or tree');
  if (cfg.d > 512) bad.push('d is at most 512');
  if (!(cfg.tolerance >= 0)) bad.push('tolerance must be >= 0');
  if (!(cfg.eps >= 1e-9 && cfg.eps <= 1e9)) bad.push('eps must be in [1e-9, 1e9]');
  if (!Number.isInteger(cfg.maxIter) || cfg.maxIter < 1) bad.push('max iterations must be a positive integer');
  if (!(cfg.solverTol > 0 && Number.isFinite(cfg.solverTol))) bad.push('solver tolerance must be > 0');
  if (!Number.isInteger(cfg.seed) || cfg.seed < 0) bad.push('seed must be a non-negative integer');
  return bad;
}
function showMemory() {
  const cfg = readForm();
  const bad = validate(cfg);
  const m = $('memory');
  if (bad.length) { m.className = 'error'; m.textContent = bad.join('; '); return false; }
  const b = estimateBytes(cfg);
  if (b > MAX_BYTES) {
    m.className = 'error';
    m.textContent = `This needs about ${formatBytes(b)} of WebAssembly memory: over the ~3.5 GiB a wasm32 module can use. Lower T, KV heads or d.`;
    return false;
  }
  m.className = 'muted';
  m.textContent = `Will allocate about ${formatBytes(b)} (keys + values: T × KV heads × 2d × 4 B, plus page summaries) in the worker's wasm memory.`;
  return true;
}

let worker = null;
let running = false;
let ready = false;
const state = { checkpoints: [], result: null, heatmap: null };

function startWorker() {
  /* the single-file build (demo/build-single.mjs) sets a Blob URL of a classic-script worker
     (file:// pages cannot start module workers, from files or from Blob URLs) */
  const single = window.VASHISTA_WORKER_URL;
  worker = single ? new Worker(single) : new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
  worker.onerror = (e) => { errors.push(`worker error: ${e.message ?? 'failed to load'}`); setStatus(`The worker failed: ${e.message ?? 'could not load'}`, true); finish(); };
  worker.onmessage = (e) => onMessage(e.data);
}
function setStatus(text, isError = false) {
  $('status').textContent = text;
  $('status').className = isError ? 'error' : 'muted';
}

function run() {
  if (running || !ready || !showMemory()) return;
  const cfg = readForm();
  running = true;
  $('run').disabled = true;
  state.checkpoints = []; state.result = null; state.heatmap = null;
  drawLatency(); $('attention').innerHTML = ''; $('diag').innerHTML = ''; $('headline').innerHTML = '';
  $('heatmap').textContent = cfg.heatmap ? 'waiting for the decode…' : 'off';
  $('progress').value = 0;
  setStatus(`filling ${cfg.T} tokens…`);
  worker.postMessage({ type: 'run', cfg });
}
function finish() {
  running = false;
  $('run').disabled = !ready;
}

function onMessage(m) {
  switch (m.type) {
    case 'ready':
      ready = true;
      setStatus(`vashista ${m.version}, kernels: ${m.isa}. Ready.`);
      finish();
      if (params.get('auto') === '1') run();
      break;
    case 'progress':
      $('progress').value = m.done / m.total;
      $('progressText').textContent = `${m.done.toLocaleString('en')} / ${m.total.toLocaleString('en')} tokens`;
      break;
    case 'status':
      setStatus(m.text);
      break;
    case 'checkpoint':
      state.checkpoints.push(m);
      drawLatency();
      break;
    case 'result':
      state.result = m;
      setStatus(`vashista ${m.version} (${m.isa}): filled ${m.config.T.toLocaleString('en')} tokens in ${m.fillMs.toFixed(0)} ms, decoded.`);
      drawHeadline(m); drawAttention(m); drawDiagnostics(m);
      if (!readForm().heatmap || readForm().noTiming) report();
      break;
    case 'heatmap':
      state.heatmap = m;
      drawHeatmap(m);
      report();
      break;
    case 'done':
      finish();
      break;
    case 'error':
      errors.push(`decode error: ${m.code}: ${m.message}`);
      setStatus(`${m.code === 'E_NOMEM' ? 'Out of memory: ' : ''}${m.message}`, true);
      finish();
      report();
      break;
  }
}

let reported = false;
function report() {
  if (params.get('report') !== '1' || reported) return;
  reported = true;
  const r = state.result;
  const shown = r && {
    config: r.config, dense: r.dense, sparse: r.sparse, diagnostics: r.diagnostics,
    candidates: r.candidates, routedPages: r.routedPages, relError: r.relError, markedFound: r.markedFound,
    sparseView: !!r.attention.sparse,
    workerResources: r.workerResources,
    table: [...$('diag').querySelectorAll('tr')].map((tr) => [...tr.children].map((c) => c.textContent)),
    cards: [...$('headline').querySelectorAll('.card')].map((c) => c.textContent),
  };
  const resources = performance.getEntriesByType('resource').map((e) => e.name);
  const body = { ok: !!r, errors, resources, location: location.href, result: shown, heatmap: state.heatmap };
  /* a file:// page cannot POST: the test reads this global over DevTools instead */
  window.__vashistaReport = JSON.parse(JSON.stringify(body));
  if (location.protocol !== 'http:' && location.protocol !== 'https:') return;
  fetch('/demo-report', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
    .catch((e) => consoleError('report failed', e));
}

/* ---- views ---- */
const SVGNS = 'http://www.w3.org/2000/svg';
function el(name, attrs, text) {
  const e = document.createElementNS(SVGNS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}
const fmt = (x, digits = 2) => (x === Infinity ? '∞' : Number.isNaN(x) ? '–' : Math.abs(x) >= 1e4 || (x !== 0 && Math.abs(x) < 0.1) ? x.toExponential(digits - 1) : x.toFixed(digits));

function axes(svg, { x0, x1, y0, y1, W, H, L, B, xlog, ylog, xlabel, ylabel, xticks, yticks }) {
  const sx = (x) => L + ((xlog ? Math.log(x) - Math.log(x0) : x - x0) / (xlog ? Math.log(x1) - Math.log(x0) : x1 - x0)) * (W - L - 10);
  const sy = (y) => H - B - ((ylog ? Math.log(y) - Math.log(y0) : y - y0) / (ylog ? Math.log(y1) - Math.log(y0) : y1 - y0)) * (H - B - 10);
  svg.append(el('line', { x1: L, y1: H - B, x2: W - 10, y2: H - B, stroke: '#888' }), el('line', { x1: L, y1: 10, x2: L, y2: H - B, stroke: '#888' }));
  for (const t of xticks) svg.append(el('text', { x: sx(t), y: H - B + 14, 'text-anchor': 'middle' }, typeof t === 'number' && t >= 1024 ? `${+(t / 1024).toFixed(1)}k` : t));
  for (const t of yticks) {
    svg.append(el('line', { x1: L, x2: W - 10, y1: sy(t), y2: sy(t), stroke: '#eee' }));
    svg.append(el('text', { x: L - 4, y: sy(t) + 4, 'text-anchor': 'end' }, fmt(t, 1)));
  }
  svg.append(el('text', { x: (L + W) / 2, y: H - 4, 'text-anchor': 'middle' }, xlabel));
  svg.append(el('text', { x: 12, y: (H - B) / 2, transform: `rotate(-90 12 ${(H - B) / 2})`, 'text-anchor': 'middle' }, ylabel));
  return { sx, sy };
}
const decades = (lo, hi) => { const t = []; for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) t.push(10 ** e); return t; };

function drawLatency() {
  const svg = $('latency');
  svg.innerHTML = '';
  const pts = state.checkpoints;
  if (!pts.length) { svg.append(el('text', { x: 280, y: 150, 'text-anchor': 'middle', fill: '#888' }, 'measured at checkpoints while the cache fills')); return; }
  const xs = pts.map((p) => p.T);
  const ys = pts.flatMap((p) => [p.denseMs, p.sparseMs]).filter((y) => y > 0);
  const x0 = Math.min(...xs) / 1.3, x1 = Math.max(...xs) * 1.3;
  const y0 = 10 ** Math.floor(Math.log10(Math.min(...ys))), y1 = 10 ** Math.ceil(Math.log10(Math.max(...ys)));
  const { sx, sy } = axes(svg, { x0, x1, y0, y1, W: 560, H: 300, L: 52, B: 34, xlog: true, ylog: true, xlabel: 'tokens in cache', ylabel: 'ms per decode', xticks: xs, yticks: decades(y0, y1).filter((t) => t >= y0 && t <= y1) });
  for (const [key, color, name] of [['denseMs', '#b4431f', 'dense'], ['sparseMs', '#2a62c9', 'sparse']]) {
    const ok = pts.filter((p) => p[key] > 0);
    svg.append(el('polyline', { points: ok.map((p) => `${sx(p.T)},${sy(p[key])}`).join(' '), fill: 'none', stroke: color, 'stroke-width': 2 }));
    for (const p of ok) svg.append(el('circle', { cx: sx(p.T), cy: sy(p[key]), r: 3, fill: color }));
    const last = ok[ok.length - 1];
    if (last) svg.append(el('text', { x: sx(last.T) - 6, y: sy(last[key]) - 7, 'text-anchor': 'end', fill: color }, `${name} ${fmt(last[key], 3)} ms`));
  }
}

function drawAttention(r) {
  const svg = $('attention');
  svg.innerHTML = '';
  const T = r.config.T, S = r.config.pageSize;
  const { dense, sparse } = r.attention;
  const bins = dense.length, floor = 1e-7;
  const { sx, sy } = axes(svg, { x0: 0, x1: T, y0: floor, y1: 1, W: 560, H: 300, L: 52, B: 44, xlog: false, ylog: true,
    xlabel: 'position', ylabel: 'attention mass per bin', xticks: [0, T / 4, T / 2, (3 * T) / 4, T].map(Math.round), yticks: [1e-6, 1e-4, 1e-2, 1] });
  for (const p of r.routedPages) svg.append(el('rect', { x: sx(p * S), y: 10, width: Math.max(1, sx(Math.min(T, (p + 1) * S)) - sx(p * S)), height: 300 - 44 - 10, fill: '#2a62c922' }));
  const bw = (560 - 52 - 10) / bins;
  dense.forEach((m, i) => {
    if (m <= floor) return;
    svg.append(el('rect', { x: sx((i * T) / bins), y: sy(m), width: Math.max(0.8, bw - 0.2), height: sy(floor) - sy(m), fill: '#b4431f99' }));
  });
  if (sparse) {
    const pts = [];
    sparse.forEach((m, i) => { if (m > floor) pts.push(`${sx(((i + 0.5) * T) / bins)},${sy(m)}`); });
    for (const p of pts) { const [x, y] = p.split(','); svg.append(el('circle', { cx: x, cy: y, r: 2.2, fill: '#2a62c9' })); }
  }
  const y = 300 - 44;
  for (const c of r.candidates) svg.append(el('line', { x1: sx(c), x2: sx(c), y1: y + 18, y2: y + 24, stroke: '#2a62c9' }));
  for (const c of r.marked) svg.append(el('line', { x1: sx(c), x2: sx(c), y1: y + 25, y2: y + 31, stroke: '#21844a', 'stroke-width': 2 }));
  const solver = r.config.options.solver;
  const leak = r.attention.trueLeak === null ? '' : `true mass outside candidates: ${fmt(r.attention.trueLeak, 2)}; `;
  svg.append(el('text', { x: 560 - 12, y: 22, 'text-anchor': 'end', fill: '#555' },
    `${leak}rho_cert: ${fmt(r.diagnostics[0].rhoCert, 2)}${solver === 'softmax' ? '' : ` (of ${solver} over every token)`}`));
  const dots = solver === 'softmax' ? `sparse${sparse ? '' : ' (n/a)'}` : sparse ? `${solver} weights on the candidates (float64 re-solve)` : `${solver} weights (n/a: too large to re-solve)`;
  svg.append(el('text', { x: 560 - 12, y: 36, 'text-anchor': 'end', fill: '#555' },
    `bars: dense softmax; band: routed pages; ticks: candidates (blue), planted (green)`));
  svg.append(el('text', { x: 560 - 12, y: 50, 'text-anchor': 'end', fill: '#555' }, `dots: ${dots}`));
}

function drawHeadline(r) {
  const maxBound = Math.max(...r.diagnostics.map((d) => d.errorBound / (d.outputNorm || 1)));
  const fallbacks = r.diagnostics.filter((d) => d.fallback !== 'none').length;
  const cards = [
    ['speedup', r.config && Number.isFinite(r.denseMs / r.sparseMs) ? `${(r.denseMs / r.sparseMs).toFixed(1)}×` : '–', `dense ${fmt(r.denseMs, 3)} ms vs sparse ${fmt(r.sparseMs, 3)} ms (${r.config.options.routing} routing)`],
    ['true relative error', fmt(r.relError, 2), r.config.options.solver === 'softmax' ? '‖sparse − dense‖ / ‖dense‖, all heads' : `‖sparse − exact‖ / ‖exact‖, exact: ${r.config.options.solver} over every token`],
    ['certified bound (max head)', fmt(maxBound, 2), 'errorBound / ‖out‖'],
    ['fallbacks', `${fallbacks} / ${r.diagnostics.length}`, 'heads widened or dense'],
    ['planted tokens found', r.marked.length ? `${r.markedFound} / ${r.marked.length}` : '–', 'head 0 candidates'],
    ['memory', formatBytes(r.info.kvBytes + r.info.summaryBytes), `estimated ${formatBytes(r.estimateBytes)}; module ${formatBytes(r.memoryBytes)}`],
  ];
  $('headline').innerHTML = '';
  for (const [name, value, note] of cards) {
    const c = document.createElement('div');
    c.className = 'card';
    c.innerHTML = `<span></span><b></b><span></span>`;
    c.children[0].textContent = name; c.children[1].textContent = value; c.children[2].textContent = note;
    $('headline').append(c);
  }
}

function drawDiagnostics(r) {
  const cols = [['head', (d, h) => h], ['fallback', (d) => d.fallback], ['routed pages', (d) => d.routedPages], ['candidates', (d) => d.candidates],
    ['face', (d) => d.faceSize], ['gap', (d) => fmt(d.gap, 3)], ['leakage bound', (d) => fmt(d.leakageBound, 3)], ['rho_cert', (d) => fmt(d.rhoCert, 3)],
    ['error bound', (d) => fmt(d.errorBound, 3)], ['true error', (d) => fmt(d.trueError, 3)], ['‖out‖', (d) => fmt(d.outputNorm, 3)],
    ['eff. support', (d) => fmt(d.effectiveSupport, 3)], ['iterations', (d) => d.iterations], ['residual', (d) => fmt(d.residual, 2)]];
  const t = $('diag');
  t.innerHTML = '';
  const head = t.insertRow();
  for (const [name] of cols) { const th = document.createElement('th'); th.textContent = name; head.append(th); }
  r.diagnostics.forEach((d, h) => {
    const row = t.insertRow();
    for (const [name, f] of cols) {
      const td = row.insertCell();
      td.textContent = f(d, h);
      if (name === 'fallback') td.className = `fb-${d.fallback}`;
    }
  });
}

function drawHeatmap(m) {
  const all = m.ms.flat();
  const lo = Math.min(...all), hi = Math.max(...all);
  const color = (v) => { const u = hi > lo ? Math.log(v / lo) / Math.log(hi / lo) : 0; return `hsl(${210 - 190 * u} 70% ${88 - 30 * u}%)`; };
  const t = document.createElement('table');
  const head = t.insertRow();
  head.append(Object.assign(document.createElement('th'), { textContent: 'P \\ Kc' }));
  for (const k of m.candidates) head.append(Object.assign(document.createElement('th'), { textContent: k }));
  m.pages.forEach((P, i) => {
    const row = t.insertRow();
    row.append(Object.assign(document.createElement('th'), { textContent: P }));
    m.candidates.forEach((_, j) => {
      const td = row.insertCell();
      td.textContent = (m.ms[i][j] * 1000).toFixed(1);
      td.style.background = color(m.ms[i][j]);
    });
  });
  $('heatmap').innerHTML = '';
  $('heatmap').className = '';
  $('heatmap').append(t);
}

/* ---- start ---- */
writeForm(configFrom(params, DEFAULTS));
form.addEventListener('input', showMemory);
form.addEventListener('submit', (e) => { e.preventDefault(); run(); });
showMemory();
drawLatency();
startWorker();
