/**
 * The verified identity of an inbound mTLS peer, carried on its TLS socket from the handshake
 * (listener/sniffing-server.ts) to the request path: x-forwarded-client-cert, and the caller
 * identity the RBAC filter authorizes (FilterCallbacks.downstreamPeer). The connection manager
 * copies it onto each HTTP/2 session under the same symbol.
 */
export interface PeerIdentity {
  /** spiffe://<trust-domain>/ns/<namespace>/sa/<service-account> */
  spiffeId: string;
  /** The x-forwarded-client-cert value the app gets: By=<this workload>;Hash=<sha256 of the peer cert>;URI=<peer>. */
  xfcc: string;
}

export const kPeerIdentity = Symbol('skein.peer-identity');

/** The peer identity of a socket (a TLS socket the listener verified) or an HTTP/2 session on one, if any. */
export function peerIdentityOf(socket: unknown): PeerIdentity | undefined {
  return (socket as { [kPeerIdentity]?: PeerIdentity } | undefined)?.[kPeerIdentity];
}
