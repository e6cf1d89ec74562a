/**
 * The downstream wire as the pipeline sees it, whatever the codec: the request body the router
 * reads, the response it writes, and the HTTP/2 connection the rapid-reset rule counts on.
 * Node's streams fit these shapes (downstream.ts H1Downstream/H2Downstream); so does skein's own
 * HTTP/2 engine (skein-h2-downstream.ts), which has no stream object per request.
 */

/** The request body as the router reads it: Node's Readable, or the skein engine's stream (skein-h2-downstream.ts). */
export interface BodySource {
  pause(): void;
  resume(): void;
  isPaused(): boolean;
}

/** The response body as the router writes it: Node's Writable, or the skein engine's stream. */
export interface ResponseSink {
  readonly destroyed: boolean;
  readonly writableEnded: boolean;
  /** False: full; wait for the router's onDownstreamDrain (Downstream.watchDrain). */
  write(chunk: Buffer): boolean;
  end(): void;
}

/** A downstream HTTP/2 connection as the rapid-reset rule sees it (connection-manager.ts onClientReset). */
export interface ResetCountedConnection {
  readonly closed: boolean;
  /** Requests it opened and premature resets so far. */
  readonly resets: { streams: number; premature: number };
  /** The peer address (for the log). */
  readonly peerAddress: string | undefined;
  /** Closes it now with GOAWAY ENHANCE_YOUR_CALM. */
  calm(reason: string): void;
}
