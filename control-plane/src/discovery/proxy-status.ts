/** What `skein proxy-status` shows for each connected xDS client. */
export type SyncState = 'SYNCED' | 'STALE' | 'NACKED';

export interface TypeStatus {
  typeUrl: string;
  /** Names the client subscribed to; ['*'] for a wildcard subscription. */
  subscribed: string[];
  /** version_info of the last response sent, and the config revision it came from. */
  sentVersion: string | null;
  sentRevision: number | null;
  sentAt: string | null;
  /** The version the client last ACKed. */
  ackedVersion: string | null;
  /**
   * The newest config revision whose resources of this type the client has ACKed: the current
   * revision when nothing is pending for it, else the revision of the response it last ACKed.
   */
  ackedRevision: number | null;
  ackedAt: string | null;
  /** The last rejection, kept after later ACKs so it can be read after the fact. */
  lastNack: { version: string; message: string; code: number; at: string } | null;
  state: SyncState;
  /** Since when the proxy lacks a change of this type or an answer to its subscription (or NACKed); null when in step. */
  behindSince: string | null;
}

export interface ProxyStatus {
  /** Unique per stream; a reconnecting proxy gets a new one. */
  streamId: string;
  nodeId: string;
  cluster: string;
  userAgent: string;
  peer: string;
  /** The SPIFFE ID of the client's certificate; '' when it came over the plaintext listener (--xds-insecure-listen). */
  identity: string;
  connectedAt: string;
  state: SyncState;
  /** The config revision of the current snapshot, for comparing with what was sent. */
  currentRevision: number;
  /**
   * The config revision the proxy is on: the newest revision it has ACKed for every type it
   * subscribes to ("revision 12 of 14"). Equal to currentRevision when it is SYNCED.
   */
  ackedRevision: number;
  /** The type furthest behind, since when and for how many seconds; null when every type is in step. */
  behind: { typeUrl: string; since: string; seconds: number } | null;
  types: TypeStatus[];
}

/** Worst state wins: NACKED over STALE over SYNCED. */
export function worst(states: readonly SyncState[]): SyncState {
  if (states.includes('NACKED')) return 'NACKED';
  if (states.includes('STALE')) return 'STALE';
  return 'SYNCED';
}
