/**
 * How a pool opens mTLS connections to a host with a sidecar: the TLS options of each new
 * connection, read when it connects, so a renewed certificate (or new roots) reaches the next
 * connection while open ones keep theirs. Implemented by the sidecar's identity
 * (identity/mesh-tls.ts); the upstream knows only this.
 */
import type * as tls from 'node:tls';
import type { UpstreamTlsConfig } from './cluster-config';

/** The TLS options for one new connection (secure context, ALPN, SNI, peer identity check). */
export type UpstreamTlsOptions = () => tls.ConnectionOptions;

export interface UpstreamTlsSource {
  /** Undefined when this sidecar has no identity (it then connects in plaintext, and says so once). */
  forUpstream(cluster: string, cfg: UpstreamTlsConfig, protocol: 'h1' | 'h2'): UpstreamTlsOptions | undefined;
}
