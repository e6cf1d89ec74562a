/**
 * The verified identity of an inbound mTLS peer, carried on its TLS socket from the handshake
 * (listener/sniffing-server.ts) to the request path (x-forwarded-client-cert).
 */
export interface PeerIdentity {
  /** spiffe://<trust-domain>/ns/<namespace>/sa/<service-account> */
  spiffeId: string;
  /** The x-forwarded-client-cert value the app gets: By=<this workload>;Hash=<sha256 of the peer cert>;URI=<peer>. */
  xfcc: string;
}

export const kPeerIdentity = Symbol('skein.peer-identity');

/** The peer identity of a socket (a TLS socket the listener verified), if any. */
export function peerIdentityOf(socket: unknown): PeerIdentity | undefined {
  return (socket as { [kPeerIdentity]?: PeerIdentity } | undefined)?.[kPeerIdentity];
}
