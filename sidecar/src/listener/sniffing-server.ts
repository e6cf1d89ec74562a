import * as net from 'node:net';
import * as tls from 'node:tls';
import type { PeerIdentity } from './peer-identity';
import { kPeerIdentity } from './peer-identity';
import type * as http from 'node:http';
import type * as http2 from 'node:http2';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
/** The first byte of a TLS record carrying a handshake (a ClientHello). */
const TLS_HANDSHAKE = 0x16;

/** What the port accepts: mTLS only, mTLS or plaintext (told apart by the first byte), or plaintext only. */
export type InboundMode = 'STRICT' | 'PERMISSIVE' | 'DISABLE';

/** Mesh mTLS on a sniffing port (the inbound listener). */
export interface InboundTls {
  /** The mode now (it follows the control plane's inbound Listener). */
  mode(): InboundMode;
  /**
   * The TLS settings for the next handshakes (the workload's current certificate and the mesh's
   * roots), and a number that changes whenever they do.
   */
  contextOptions(): tls.SecureContextOptions;
  generation(): number;
  /** Who a verified client certificate belongs to, or why it is not accepted. */
  peerOf(cert: tls.PeerCertificate | undefined): PeerIdentity | Error;
  /** A connection accepted, by how. */
  accepted(how: 'mtls' | 'plaintext'): void;
  /** A connection refused before any request: counted and logged by the owner; the port keeps serving. */
  refused(reason: string, detail: string, remote: string | undefined): void;
}

/**
 * One plaintext port that speaks both HTTP/2 (h2c with prior knowledge, as gRPC clients use)
 * and HTTP/1.1: the first bytes decide. The socket then goes to the matching Node server.
 * A connection that sends nothing within `firstByteTimeoutMs` is closed.
 *
 * This is the seam where transparent capture plugs in later: an iptables REDIRECT listener
 * hands its sockets (with their original destination) to the same two servers.
 */
export function sniffingServer(h1: http.Server, h2: http2.Http2Server, opts: { firstByteTimeoutMs?: number; acceptH2?: (socket: net.Socket) => void; tls?: InboundTls } = {}): net.Server {
  const timeout = opts.firstByteTimeoutMs ?? 10_000;
  const mtls = opts.tls;
  const toH2 = opts.acceptH2 ?? ((socket: net.Socket): void => { h2.emit('connection', socket); });
  const acceptor = mtls === undefined ? undefined : new MtlsAcceptor(mtls, h1, toH2, timeout);
  return net.createServer({ noDelay: true }, (socket) => {
    socket.setTimeout(timeout, () => socket.destroy());
    socket.once('error', () => socket.destroy());
    let seen: Buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      if (mtls !== undefined && seen.length === 0) {
        const mode = mtls.mode();
        if (chunk[0] === TLS_HANDSHAKE) {
          socket.removeListener('data', onData);
          if (mode === 'DISABLE') { mtls.refused('tls_disabled', 'a TLS handshake on a port in DISABLE mode (plaintext only)', socket.remoteAddress); socket.destroy(); return; }
          socket.pause();
          socket.unshift(chunk);
          acceptor!.accept(socket);
          return;
        }
        if (mode === 'STRICT') {
          socket.removeListener('data', onData);
          mtls.refused('plaintext', 'a plaintext connection on a port in STRICT mode (mTLS only)', socket.remoteAddress);
          socket.destroy();
          return;
        }
      }
      seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
      const n = Math.min(seen.length, PREFACE.length);
      const maybeH2 = seen.subarray(0, n).equals(PREFACE.subarray(0, n));
      if (maybeH2 && n < PREFACE.length) return; // need more bytes to tell
      socket.removeListener('data', onData);
      socket.setTimeout(0);
      socket.pause();
      socket.unshift(seen);
      if (mtls !== undefined) mtls.accepted('plaintext');
      if (maybeH2) {
        // The HTTP/2 connection reads the socket's buffered bytes, unshifted bytes first (Node's
        // session drains them itself; skein's engine resumes the socket).
        toH2(socket);
      } else {
        h1.emit('connection', socket);
        socket.resume();
      }
    };
    socket.on('data', onData);
  });
}

/**
 * The server side of mesh mTLS on a sniffing port: a tls.Server that never listens, handed each
 * socket whose first byte is a TLS handshake (its ClientHello unshifted back). A client
 * certificate is required and must chain to the mesh's roots (Node's verification, as for any
 * tls.Server) and carry a workload identity of this trust domain; the protocol is what ALPN chose
 * (h2, else HTTP/1.1). The verified identity rides on the TLS socket (kPeerIdentity) for
 * x-forwarded-client-cert. A renewed certificate is taken for the next handshake; open
 * connections keep theirs.
 */
class MtlsAcceptor {
  private readonly server: tls.Server;
  private generation = -1;

  constructor(private readonly mtls: InboundTls, h1: http.Server, toH2: (s: net.Socket) => void, handshakeTimeoutMs: number) {
    this.server = tls.createServer({ requestCert: true, rejectUnauthorized: false, ALPNProtocols: ['h2', 'http/1.1'], handshakeTimeout: handshakeTimeoutMs });
    this.server.on('tlsClientError', (e: NodeJS.ErrnoException, t: tls.TLSSocket) => {
      mtls.refused('handshake', `TLS handshake failed: ${`${e.code ?? ''} ${e.message}`.trim()}`, t.remoteAddress);
      t.destroy();
    });
    this.server.on('secureConnection', (t: tls.TLSSocket) => {
      if (!t.authorized) {
        mtls.refused('untrusted_certificate', `the client certificate is not accepted: ${String(t.authorizationError ?? 'none was sent')}`, t.remoteAddress);
        t.destroy();
        return;
      }
      const peer = mtls.peerOf(t.getPeerCertificate());
      if (peer instanceof Error) { mtls.refused('bad_identity', peer.message, t.remoteAddress); t.destroy(); return; }
      (t as net.Socket & { [kPeerIdentity]?: PeerIdentity })[kPeerIdentity] = peer;
      mtls.accepted('mtls');
      if (t.alpnProtocol === 'h2') toH2(t);
      else h1.emit('connection', t);
    });
  }

  accept(socket: net.Socket): void {
    const g = this.mtls.generation();
    if (g !== this.generation) {
      try {
        this.server.setSecureContext(this.mtls.contextOptions());
        this.generation = g;
      } catch (e) {
        this.mtls.refused('no_certificate', `this sidecar has no certificate to serve mTLS with: ${(e as Error).message}`, socket.remoteAddress);
        socket.destroy();
        return;
      }
    }
    socket.setTimeout(0);
    this.server.emit('connection', socket);
  }
}
