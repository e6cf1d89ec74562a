/**
 * One HTTP/2 stream of an H2Connection: plain state, no events and no methods of its own (the
 * connection acts on it). RFC 9113 5.1 states map to two flags: open = neither end ended;
 * half-closed (local) = `localEnded` (our END_STREAM is on the wire); half-closed (remote) =
 * `remoteEnded`; closed = `closed` (both ended, or a reset, a GOAWAY or the connection's end).
 * Idle streams have no object; closed ones are dropped from the connection's map.
 */
import type { H2Connection } from './connection';

export class H2Stream {
  /** The caller's object for this stream (the pipeline's request): set it in onHeaders or request(). */
  user: unknown = undefined;
  localEnded = false;
  remoteEnded = false;
  closed = false;
  /** The final (non-1xx) head was received (a server's streams start with it). */
  headReceived = false;
  /** The head went out (respond / request). */
  headSent = false;
  /** What we may still send on this stream (can go negative after a SETTINGS_INITIAL_WINDOW_SIZE cut). */
  sendWindow: number;
  /** What the peer may still send. */
  recvWindow: number;
  /** Bytes handed to onData and not yet consumed(). */
  buffered = 0;
  /** Bytes consumed and not yet returned with a WINDOW_UPDATE. */
  unacked = 0;
  /** DATA to send: slices of the caller's buffers, never copied. */
  readonly queue: Buffer[] = [];
  queuedBytes = 0;
  /** end() was called: END_STREAM goes out after the queue (on DATA, or on the trailers). */
  endQueued = false;
  trailers: string[] | undefined = undefined;
  /** In the connection's list of streams with something to send. */
  ready = false;
  /** write() returned false: onWritable comes once the queue drains. */
  wantWritable = false;
  /** The received content-length, -1 when none; and the DATA bytes received so far. */
  expectedLength = -1;
  receivedLength = 0;
  /**
   * Server: once our END_STREAM is out, reset the stream (NO_ERROR) if the peer has not ended
   * its side: a complete response to a request whose body is still coming (RFC 9113 8.1).
   */
  resetAfterEnd = false;
  /** A response to HEAD (client side): its content-length says nothing of DATA. */
  headRequest = false;

  constructor(readonly conn: H2Connection, readonly id: number, sendWindow: number, recvWindow: number) {
    this.sendWindow = sendWindow;
    this.recvWindow = recvWindow;
  }
}
