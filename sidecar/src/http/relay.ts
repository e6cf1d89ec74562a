import type { Readable, Writable } from 'node:stream';

const kTo = Symbol('skein.relay.to');
const kFrom = Symbol('skein.relay.from');
const kOwner = Symbol('skein.relay.owner');
/** Whoever wants to know that bytes moved (the stream idle timeout's activity count). */
export interface RelayOwner { activity: number }
type Src = Readable & { [kTo]?: Writable; [kOwner]?: RelayOwner };
type Dst = Writable & { [kFrom]?: Readable };

/**
 * Moves a body from `src` to `dst` with backpressure, like `src.pipe(dst)` but with three
 * listeners that are shared functions (no closures per request). Ends `dst` when `src` ends.
 * Errors and resets are not handled here: the exchange owning both streams handles 'close'.
 * A stream can be the source of one relay and the destination of another (a proxy stream is both).
 */
export function relay(src: Readable, dst: Writable, owner?: RelayOwner): void {
  (src as Src)[kTo] = dst;
  if (owner !== undefined) (src as Src)[kOwner] = owner;
  (dst as Dst)[kFrom] = src;
  src.on('data', onData);
  src.on('end', onEnd);
  dst.on('drain', onDrain);
}

function onData(this: Src, chunk: Buffer): void {
  const owner = this[kOwner];
  if (owner !== undefined) owner.activity++;
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
