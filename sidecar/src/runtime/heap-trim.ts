import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import type { Clock, TimerHandle } from '../../../shared/src/clock';
import type { Logger } from '../../../shared/src/log';

/** The default of --heap-trim-idle. */
export const DEFAULT_HEAP_TRIM_IDLE_MS = 10_000;

/** Free heap (heapTotal - heapUsed) under this is not worth a collection. */
export const HEAP_TRIM_MIN_SLACK_BYTES = 4 * 1024 * 1024;

export interface HeapTrimOptions {
  clock: Clock;
  /** How long without a request before the heap is trimmed, and how often that is checked (ms). */
  idleMs: number;
  /** A count that grows with every request the sidecar takes (its listeners' downstream_rq_total). */
  activity: () => number;
  log: Logger;
  /** Runs a full, compacting collection. Default: V8's (heapTrimGc). */
  gc?: () => void;
  /** The heap's size and use, in bytes. Default: process.memoryUsage(). */
  heap?: () => { total: number; used: number };
}

/**
 * Gives back to the system the heap a sidecar no longer uses. V8 grows its heap to the busiest
 * moment it has seen (start-up: loading protos, the first config; a burst of traffic) and, with
 * nothing telling it the process went quiet, keeps it: an idle sidecar held twice the heap it
 * used. One full collection `idleMs` after start-up (once the first config is in, whatever the
 * traffic), and one after each `idleMs` with no request, each only when more than
 * HEAP_TRIM_MIN_SLACK_BYTES is free, returns it. An idle sidecar pays one collection (a few ms)
 * per burst; a busy one, the start-up one only.
 */
export class HeapTrimmer {
  private timer: TimerHandle | undefined;
  private seen = -1;
  private readonly gc: () => void;
  private readonly heap: () => { total: number; used: number };
  /** Collections run, for /stats (runtime.heap_trims). */
  trims = 0;

  constructor(private readonly opts: HeapTrimOptions) {
    this.gc = opts.gc ?? heapTrimGc();
    this.heap = opts.heap ?? (() => { const m = process.memoryUsage(); return { total: m.heapTotal, used: m.heapUsed }; });
  }

  /** Trims `idleMs` from now, then after each `idleMs` with no request. */
  start(): void {
    this.seen = -1; // the first check trims: start-up's garbage
    this.schedule();
  }

  close(): void { this.timer?.cancel(); this.timer = undefined; }

  private schedule(): void {
    this.timer = this.opts.clock.setTimer(this.opts.idleMs, () => {
      const now = this.opts.activity();
      if (now === this.seen || this.seen === -1) this.trim(this.seen === -1 ? 'start-up' : 'idle');
      this.seen = now;
      this.schedule();
    });
  }

  private trim(why: string): void {
    const before = this.heap();
    if (before.total - before.used < HEAP_TRIM_MIN_SLACK_BYTES) return;
    this.gc();
    this.trims++;
    const after = this.heap();
    this.opts.log.debug({ why, heapTotalBefore: before.total, heapTotalAfter: after.total, heapUsed: after.used }, 'heap trimmed');
  }
}

let gcFn: (() => void) | undefined;

/**
 * V8's full collection, without starting Node with --expose-gc: the flag is set at run time and
 * `gc` taken from a new context (the flag applies to contexts created after it), then unset, so
 * no global `gc` appears in the sidecar's own context.
 */
export function heapTrimGc(): () => void {
  if (gcFn === undefined) {
    v8.setFlagsFromString('--expose-gc');
    gcFn = vm.runInNewContext('gc') as () => void;
    v8.setFlagsFromString('--no-expose-gc');
  }
  return gcFn;
}
