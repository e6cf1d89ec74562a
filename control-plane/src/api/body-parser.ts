import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { ErrorCodes, MeshError } from '../../../shared/src/errors';
import type { ErrorCode } from '../../../shared/src/errors';
import type { ParseAnswer } from './parse-worker';

/** Longest a body may take to parse; then the worker is replaced and the request refused. */
export const PARSE_TIMEOUT_MS = 20_000;
/** Heap of the parser's worker: a body that needs more is refused, the API lives on. */
const WORKER_HEAP_MB = 256;

interface Job { id: number; text: string; resolve: (docs: unknown[]) => void; reject: (e: MeshError) => void }

/**
 * Parses config bodies (YAML/JSON documents) on a worker thread, one at a time. YAML parsing
 * runs at about 1 MB/s, so a large body parsed on the event loop would stall every other
 * request and the ADS streams for seconds. The worker also checks each document on its own
 * (shared/src/config validation), so what comes back is bounded by the config limits.
 */
export class BodyParser {
  private worker: Worker | undefined;
  private readonly queue: Job[] = [];
  private current: (Job & { timer: NodeJS.Timeout }) | undefined;
  private seq = 0;

  parse(text: string): Promise<unknown[]> {
    return new Promise((resolve, reject) => {
      this.queue.push({ id: ++this.seq, text, resolve, reject });
      this.next();
    });
  }

  async close(): Promise<void> {
    for (const j of this.queue.splice(0)) j.reject(new MeshError(ErrorCodes.INTERNAL, 'the API is shutting down'));
    const w = this.worker;
    this.worker = undefined;
    if (w !== undefined) await w.terminate();
  }

  private next(): void {
    if (this.current !== undefined) return;
    const job = this.queue.shift();
    if (job === undefined) return;
    const worker = this.spawn();
    const timer = setTimeout(() => this.fail(`body: took longer than ${PARSE_TIMEOUT_MS / 1000}s to parse`), PARSE_TIMEOUT_MS);
    this.current = { ...job, timer };
    worker.postMessage({ id: job.id, text: job.text });
  }

  private spawn(): Worker {
    if (this.worker !== undefined) return this.worker;
    const w = new Worker(path.join(__dirname, 'parse-worker.js'), { resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MB } });
    w.unref();
    w.on('message', (a: ParseAnswer) => {
      const job = this.current;
      if (job === undefined || job.id !== a.id) return;
      clearTimeout(job.timer);
      this.current = undefined;
      if ('docs' in a) job.resolve(a.docs);
      else job.reject(new MeshError(a.error.code as ErrorCode, a.error.message, { details: a.error.details }));
      this.next();
    });
    // A worker that dies (out of heap on a hostile body) fails only the body it was parsing.
    w.on('error', (e) => { if (this.worker === w) this.fail(`body: cannot be parsed: ${e.message}`); });
    w.on('exit', () => { if (this.worker === w) this.fail('body: cannot be parsed: the parser stopped'); });
    this.worker = w;
    return w;
  }

  /** Fails the current job and replaces the worker. */
  private fail(message: string): void {
    const job = this.current;
    const w = this.worker;
    this.worker = undefined;
    this.current = undefined;
    if (w !== undefined) void w.terminate();
    if (job !== undefined) {
      clearTimeout(job.timer);
      job.reject(new MeshError(ErrorCodes.MALFORMED_INPUT, message));
    }
    this.next();
  }
}
