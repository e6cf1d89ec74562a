/**
 * The functions a V8 CPU profile (`node --cpu-prof`, a .cpuprofile file) spent the most self time
 * in: what `npm run bench -- --profile` prints per sidecar. Plain JSON, no dependency.
 *
 * A profile is a call tree (`nodes`, each a call frame) and a list of samples: `samples[i]` is the
 * id of the node on top of the stack at sample i, `timeDeltas[i]` the microseconds since the
 * previous sample (the first since `startTime`). As in Chrome DevTools, a sample stands for the
 * time until the next one (the last one's until `endTime`). A function's self time sums its
 * samples over every node of the tree with the same name, script and line (it is called from
 * many places). V8's own entries are kept as it names them: `(program)` (native code, the event
 * loop), `(garbage collector)`, `(idle)` (when the embedder reports idle time). Shares are given
 * of the whole profile and of its busy time (the whole minus `(idle)`).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ErrorCodes, MeshError } from '../shared/src/errors';

/** The parts of a .cpuprofile this reads. */
export interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number; columnNumber?: number } }[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileEntry {
  /** As V8 names it; `(anonymous)` for a function without a name. */
  functionName: string;
  /** `path:line` (path relative to the root given, else absolute; `node:internal/...` as is), or `` for V8's own entries. */
  location: string;
  selfMs: number;
  /** Share of the whole profile, 0..1. */
  shareOfTotal: number;
  /** Share of the busy time (the whole minus `(idle)`), 0..1; null for `(idle)` itself. */
  shareOfBusy: number | null;
}

export interface ProfileSummary {
  totalMs: number;
  /** totalMs minus `(idle)`'s self time. */
  busyMs: number;
  samples: number;
  /** The top entries by self time, most first. */
  top: ProfileEntry[];
}

/** Reads and checks a .cpuprofile file. */
export function readProfile(file: string): CpuProfile {
  let p: Partial<CpuProfile>;
  try {
    p = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<CpuProfile>;
  } catch (e) {
    throw new MeshError(ErrorCodes.MALFORMED_INPUT, `${file}: not a JSON CPU profile: ${(e as Error).message}`, { cause: e });
  }
  if (!Array.isArray(p.nodes) || !Array.isArray(p.samples) || !Array.isArray(p.timeDeltas) || typeof p.startTime !== 'number' || typeof p.endTime !== 'number') {
    throw new MeshError(ErrorCodes.MALFORMED_INPUT, `${file}: not a V8 CPU profile (wants nodes[], samples[], timeDeltas[], startTime, endTime)`);
  }
  if (p.samples.length !== p.timeDeltas.length) throw new MeshError(ErrorCodes.MALFORMED_INPUT, `${file}: ${p.samples.length} samples but ${p.timeDeltas.length} timeDeltas`);
  return p as CpuProfile;
}

/**
 * The `n` functions with the most self time (every one for n = Infinity). `root`: locations are
 * relative to it, and to its node_modules where that is a symlink (V8 names scripts by real path).
 */
export function summarizeProfile(profile: CpuProfile, opts: { top?: number; root?: string } = {}): ProfileSummary {
  const roots = opts.root === undefined ? [] : rootsOf(opts.root);
  const keyOf = new Map<number, string>();
  const entries = new Map<string, { functionName: string; location: string; us: number }>();
  for (const n of profile.nodes) {
    const f = n.callFrame;
    const key = `${f.functionName}\0${f.url}\0${f.lineNumber}`;
    keyOf.set(n.id, key);
    if (!entries.has(key)) entries.set(key, { functionName: f.functionName === '' ? '(anonymous)' : f.functionName, location: location(f.url, f.lineNumber, roots), us: 0 });
  }
  // Sample i lasts until sample i+1 (the last until endTime). A negative time delta (Chrome
  // DevTools guards against them too) counts as 0, so no function's time goes below zero.
  let at = profile.startTime;
  const times = profile.timeDeltas.map((d) => (at += d));
  let totalUs = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const us = Math.max(0, (i + 1 < times.length ? times[i + 1]! : Math.max(profile.endTime, times[i]!)) - times[i]!);
    const key = keyOf.get(profile.samples[i]!);
    if (key === undefined) throw new MeshError(ErrorCodes.MALFORMED_INPUT, `CPU profile: sample ${i} names node ${profile.samples[i]}, which is not in nodes[]`);
    entries.get(key)!.us += us;
    totalUs += us;
  }
  const idleUs = [...entries.values()].filter((e) => e.functionName === '(idle)').reduce((s, e) => s + e.us, 0);
  const busyUs = totalUs - idleUs;
  const top = [...entries.values()].filter((e) => e.us > 0).sort((a, b) => b.us - a.us).slice(0, opts.top ?? 10).map((e): ProfileEntry => ({
    functionName: e.functionName, location: e.location, selfMs: e.us / 1000,
    shareOfTotal: totalUs > 0 ? e.us / totalUs : 0,
    shareOfBusy: e.functionName === '(idle)' ? null : busyUs > 0 ? e.us / busyUs : 0,
  }));
  return { totalMs: totalUs / 1000, busyMs: busyUs / 1000, samples: profile.samples.length, top };
}

/** [real folder, what to call it] pairs: the root's node_modules by its real path, then the root. */
function rootsOf(root: string): [string, string][] {
  const modules = path.join(root, 'node_modules');
  let real: string | undefined;
  try { real = fs.realpathSync(modules); } catch { /* none */ }
  return [...(real === undefined || real === modules ? [] : [[real, 'node_modules'] as [string, string]]), [root, '']];
}

/** `path:line` (1-based) for a call frame's script URL and 0-based line. */
function location(url: string, lineNumber: number, roots: [string, string][]): string {
  if (url === '') return '';
  let file = url;
  if (url.startsWith('file://')) file = fileURLToPath(url);
  for (const [dir, name] of path.isAbsolute(file) ? roots : []) {
    const rel = path.relative(dir, file);
    if (rel.startsWith('..') || path.isAbsolute(rel)) continue;
    file = path.join(name, rel).split(path.sep).join('/');
    break;
  }
  return `${file}:${lineNumber + 1}`;
}

const pct = (x: number | null): string => (x === null ? '-' : `${(x * 100).toFixed(1)}%`);

/** A text table of a summary, headed `top N self time: <name>`. */
export function formatSummary(name: string, s: ProfileSummary): string {
  const rows = s.top.map((e) => [e.selfMs.toFixed(1), pct(e.shareOfTotal), pct(e.shareOfBusy), e.functionName, e.location]);
  const head = ['self ms', '% total', '% busy', 'function', 'location'];
  const width = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (i < 3 ? c.padStart(width[i]!) : c.padEnd(width[i]!))).join('  ').trimEnd();
  return `top ${s.top.length} self time: ${name} (${s.totalMs.toFixed(0)} ms profiled, ${s.busyMs.toFixed(0)} ms busy, ${s.samples} samples)\n${[head, ...rows].map(line).join('\n')}\n`;
}

/** The same summary as a Markdown table. */
export function summaryMarkdown(name: string, s: ProfileSummary): string {
  const rows = s.top.map((e) => `| ${e.selfMs.toFixed(1)} | ${pct(e.shareOfTotal)} | ${pct(e.shareOfBusy)} | \`${e.functionName}\` | ${e.location === '' ? '-' : `\`${e.location}\``} |`);
  return `Top ${s.top.length} self time: ${name} (${s.totalMs.toFixed(0)} ms profiled, ${s.busyMs.toFixed(0)} ms busy)\n\n| self ms | % total | % busy | function | location |\n|---|---|---|---|---|\n${rows.join('\n')}\n`;
}

/**
 * The profiles `node --cpu-prof` wrote into `dir` since `sinceMs` (epoch ms), by process id. Node
 * names them CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile; the main thread's is kept.
 */
export function profilesByPid(dir: string, sinceMs: number): Map<number, string> {
  const found = new Map<number, { file: string; thread: number }>();
  for (const name of fs.readdirSync(dir)) {
    const m = /^CPU\.\d{8}\.\d{6}\.(\d+)\.(\d+)\.\d+\.cpuprofile$/.exec(name);
    if (m === null) continue;
    const file = path.join(dir, name);
    if (fs.statSync(file).mtimeMs < sinceMs) continue;
    const pid = Number(m[1]);
    const thread = Number(m[2]);
    const prev = found.get(pid);
    if (prev === undefined || thread < prev.thread) found.set(pid, { file, thread });
  }
  return new Map([...found].map(([pid, f]) => [pid, f.file]));
}
