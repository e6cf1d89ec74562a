import { performance } from 'node:perf_hooks';

/**
 * Cooperative time slicing for long loops on the event loop (validating, diffing, translating
 * and encoding a whole config). A loop calls `await slicer.point()` between items; once
 * `budgetMs` of work has run since the last yield, it yields (setImmediate), so timers, sockets
 * and other requests (a /healthz probe, an ADS stream) get a turn. This measures CPU work, not
 * time that matters to behaviour, so it reads the monotonic clock directly, not the injected Clock.
 */
export class TimeSlicer {
  private since = performance.now();

  constructor(private readonly budgetMs = 8) {}

  /** Yields if this slice has used its budget. Cheap when it does not. */
  point(): Promise<void> | undefined {
    if (performance.now() - this.since < this.budgetMs) return undefined;
    return new Promise<void>((resolve) => setImmediate(() => { this.since = performance.now(); resolve(); }));
  }
}

/** A slicer that never yields: for callers that need the synchronous result (tests, start-up). */
export const NO_YIELD = { point: (): undefined => undefined } as Pick<TimeSlicer, 'point'>;
export type Slicer = Pick<TimeSlicer, 'point'>;
