import * as net from 'node:net';
import type * as http from 'node:http';
import type * as http2 from 'node:http2';
import type { Duplex } from 'node:stream';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

/**
 * One plaintext port that speaks both HTTP/2 (h2c with prior knowledge, as gRPC clients use)
 * and HTTP/1.1: the first bytes decide. The socket then goes to the matching Node server.
 * A connection that sends nothing within `firstByteTimeoutMs` is closed.
 *
 * This is the seam where transparent capture plugs in later: an iptables REDIRECT listener
 * hands its sockets (with their original destination) to the same two servers.
 */
export function sniffingServer(h1: http.Server, h2: http2.Http2Server, opts: { firstByteTimeoutMs?: number; wrapH2?: (socket: net.Socket) => Duplex } = {}): net.Server {
  const wrapH2 = opts.wrapH2;
  const timeout = opts.firstByteTimeoutMs ?? 10_000;
  return net.createServer({ noDelay: true }, (socket) => {
    socket.setTimeout(timeout, () => socket.destroy());
    socket.once('error', () => socket.destroy());
    let seen: Buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
      const n = Math.min(seen.length, PREFACE.length);
      const maybeH2 = seen.subarray(0, n).equals(PREFACE.subarray(0, n));
      if (maybeH2 && n < PREFACE.length) return; // need more bytes to tell
      socket.removeListener('data', onData);
      socket.setTimeout(0);
      socket.pause();
      socket.unshift(seen);
      if (maybeH2) {
        // The HTTP/2 session drains the socket's buffered bytes itself; resuming would lose them.
        // `wrapH2` (the header-field guard) reads them, unshifted bytes first, when Node reads it.
        h2.emit('connection', wrapH2 === undefined ? socket : wrapH2(socket));
      } else {
        h1.emit('connection', socket);
        socket.resume();
      }
    };
    socket.on('data', onData);
  });
}
