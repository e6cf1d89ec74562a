import type { Readable, Writable } from 'node:stream';

const kTo = Symbol('skein.relay.to');
const kFrom = Symbol('skein.relay.from');
type Src = Readable & { [kTo]?: Writable };
type Dst = Writable & { [kFrom]?: Readable };

/**
 * Moves a body from `src` to `dst` with backpressure, like `src.pipe(dst)` but with three
 * listeners that are shared functions (no closures per request). Ends `dst` when `src` ends.
 * Errors and resets are not handled here: the exchange owning both streams handles 'close'.
 * A stream can be the source of one relay and the destination of another (a proxy stream is both).
 */
export function relay(src: Readable, dst: Writable): void {
  (src as Src)[kTo] = dst;
  (dst as Dst)[kFrom] = src;
  src.on('data', onData);
  src.on('end', onEnd);
  dst.on('drain', onDrain);
}

function onData(this: Src, chunk: Buffer): void {
  const dst = this[kTo]!;
  if (dst.destroyed || dst.writableEnded) return;
  if (!dst.write(chunk)) this.pause();
}

function onEnd(this: Src): void {
  const dst = this[kTo]!;
  if (!dst.destroyed && !dst.writableEnded) dst.end();
}

function onDrain(this: Dst): void {
  const src = this[kFrom];
  if (src !== undefined && src.isPaused()) src.resume();
}
