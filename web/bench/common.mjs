/*
 * What the benchmark scripts (bench.mjs, pool.mjs, peer.mjs, figures.mjs,
 * soak.mjs) share: --name value arguments, T lists with K/M suffixes, the
 * repetition rule and its medians, the TTY progress line, running as a script.
 */
import { realpathSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

/** --name value pairs; the names in `switches` take no value. */
export function parseArgs(argv, switches = ['json', 'help']) {
  const a = {};
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    if (!k.startsWith('--')) throw new Error(`unexpected argument ${k}`);
    const name = k.slice(2);
    if (switches.includes(name)) a[name] = true;
    else if (i + 1 < argv.length) a[name] = argv[++i];
    else throw new Error(`${k} needs a value`);
  }
  return a;
}

/** A count with an optional K (1024) or M (1024 * 1024) suffix: '4K' -> 4096. */
export function parseCount(s) {
  const m = /^(\d+)([KkMm]?)$/.exec(String(s).trim());
  if (!m) throw new Error(`bad count '${s}'`);
  return Number(m[1]) * (m[2] === '' ? 1 : /k/i.test(m[2]) ? 1024 : 1024 * 1024);
}

/** A comma-separated list of counts: '4K,32K' -> [4096, 32768]. */
export const parseCounts = (list) => String(list).split(',').map(parseCount);

export function median(xs) {
  const s = [...xs].sort((x, y) => x - y);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* The native rule (src/cli/main.c, cmd_bench): repetitions until (>= minReps
   and >= minSeconds) or (>= 5 and >= 5 s). */
export const enoughReps = (n, totalSeconds, minReps, minSeconds = 0.3) =>
  (n >= minReps && totalSeconds >= minSeconds) || (n >= 5 && totalSeconds >= 5) || n >= 100000;

/** Per-repetition times (s) -> { medianMs, minMs, reps }. */
export const repStats = (t) => ({ medianMs: 1e3 * median(t), minMs: 1e3 * Math.min(...t), reps: t.length });

/* One warm-up run(0), then run(i) until enoughReps; after(i), if given, runs
   after each timed call, outside the timing. */
export function timeReps(run, after, minReps, minSeconds = 0.3) {
  run(0);
  const t = [];
  let total = 0;
  for (;;) {
    const t0 = performance.now();
    run(t.length);
    const dt = (performance.now() - t0) / 1e3;
    if (after) after(t.length);
    t.push(dt);
    total += dt;
    if (enoughReps(t.length, total, minReps, minSeconds)) break;
  }
  return repStats(t);
}

/* timeReps for a run that returns a promise (awaited inside the timing). */
export async function timeRepsAsync(run, after, minReps, minSeconds = 0.3) {
  await run(0);
  const t = [];
  let total = 0;
  for (;;) {
    const t0 = performance.now();
    await run(t.length);
    const dt = (performance.now() - t0) / 1e3;
    if (after) await after(t.length);
    t.push(dt);
    total += dt;
    if (enoughReps(t.length, total, minReps, minSeconds)) break;
  }
  return repStats(t);
}

/* A one-line progress message on stderr, only on a terminal. */
export function progress(s) {
  if (process.stderr.isTTY) process.stderr.write(`\r\x1b[K${s}`);
}

export function endProgress() {
  progress('');
  if (process.stderr.isTTY) process.stderr.write('\r\x1b[K');
}

export const printJson = (report) => console.log(JSON.stringify(report, null, 2));

/* Parses the command line (the names in `switches` take no value) and runs
   main(args), or with --help prints `usage`; an error prints `name: message`
   and sets exit code 1. */
export function runMain(name, main, { usage, switches } = {}) {
  (async () => {
    const a = parseArgs(process.argv.slice(2), switches);
    if (a.help) console.log(usage);
    else await main(a);
  })().catch((e) => {
    console.error(`${name}: ${e.message}`);
    process.exitCode = 1;
  });
}

/* runMain when the module at `moduleUrl` is the script node was started with (not when it is imported). */
export function runIfMain(moduleUrl, name, main, options) {
  let invoked = '';
  try {
    invoked = process.argv[1] ? realpathSync(process.argv[1]) : '';
  } catch {
    invoked = '';
  }
  if (invoked === realpathSync(fileURLToPath(moduleUrl))) runMain(name, main, options);
}
