import type { ProxyStatus, TypeStatus } from './proxy-status';
import { worst } from './proxy-status';
import type { SnapshotChange } from './snapshot-cache';

/** The node a client sends on its first request (proto-loader object shape, snake_case). */
export interface XdsNode {
  id?: string; cluster?: string; user_agent_name?: string; user_agent_version?: string;
  user_agent_build_version?: { version?: { major_number?: number; minor_number?: number; patch?: number } };
}

/** Limits on what one client may ask for; anything beyond is a protocol error. */
export const REQUEST_LIMITS = { maxNames: 10_000, maxNameLength: 1024, maxTypeUrlLength: 256, maxNodeIdLength: 256 } as const;

/**
 * One ADS stream as the DiscoveryServer drives it, whatever its protocol (state of the world,
 * ads-stream.ts, or incremental, delta-stream.ts).
 */
export interface XdsStream {
  readonly id: string;
  readonly nodeId: string;
  userAgent(): string;
  subscribes(type: string, name: string): boolean;
  /** Handles one request. Returns an error message for a protocol violation (the caller ends the stream). */
  onRequest(req: unknown): string | undefined;
  /** Marks the types a change touches for this stream without pushing; returns them. */
  onSnapshot(change: SnapshotChange): string[];
  /** Pushes what onSnapshot marked (until backpressure). */
  flush(): void;
  /** Reports as ACKED each touched type that has nothing new to send and whose last response was ACKed. */
  reportUnchanged(touched: readonly string[]): void;
  close(): void;
  shutdown(reason: string): void;
  status(): ProxyStatus;
}

/**
 * Told when a client answers a response: ACKED with the newest config revision the client now
 * has for that type, or NACKED with the revision of the rejected response and the client's error.
 */
export type AnswerListener = (stream: XdsStream, typeUrl: string, state: 'ACKED' | 'NACKED', revision: number, error?: string) => void;

/** The client's user agent as name/version, e.g. grpc-node-js/1.14.1. */
export function userAgentOf(n: XdsNode | undefined): string {
  if (n === undefined) return '';
  const v = n.user_agent_version ?? (n.user_agent_build_version?.version
    ? `${n.user_agent_build_version.version.major_number ?? 0}.${n.user_agent_build_version.version.minor_number ?? 0}.${n.user_agent_build_version.version.patch ?? 0}` : '');
  return `${n.user_agent_name ?? 'unknown'}${v ? `/${v}` : ''}`;
}

/** Checks a request's type URL, names and node against REQUEST_LIMITS; `what` names the message and its names field. */
export function checkLimits(what: { message: string; namesField: string }, typeUrl: unknown, names: readonly string[], node: XdsNode | undefined): string | undefined {
  if (typeof typeUrl !== 'string' || typeUrl === '') return `${what.message}.type_url is required on ADS`;
  if (typeUrl.length > REQUEST_LIMITS.maxTypeUrlLength) return `${what.message}.type_url is too long`;
  if (names.length > REQUEST_LIMITS.maxNames) return `${what.message}.${what.namesField} has ${names.length} names; at most ${REQUEST_LIMITS.maxNames}`;
  if (names.some((n) => n.length > REQUEST_LIMITS.maxNameLength)) return `${what.message}.${what.namesField} has a name over ${REQUEST_LIMITS.maxNameLength} characters`;
  if ((node?.id?.length ?? 0) > REQUEST_LIMITS.maxNodeIdLength) return `${what.message}.node.id is too long`;
  return undefined;
}

/** A time in ms since the epoch as ISO 8601, or null. */
export function iso(ms: number | null): string | null { return ms === null ? null : new Date(ms).toISOString(); }

/**
 * Responses a stream may have queued in its transport at once. One per served type: a healthy
 * client takes each in microseconds; a stalled one holds at most this many, and every change
 * after that coalesces into the single latest response per type.
 */
export const MAX_IN_FLIGHT = 4;

/** What status() reports about a stream besides its types. */
export interface StreamFacts {
  id: string;
  node: XdsNode | undefined;
  peer: string;
  identity: string;
  connectedAt: number;
  revision: number;
}

/** A stream's ProxyStatus from its per-type statuses (the worst type's state; the oldest ACKed revision). */
export function proxyStatus(f: StreamFacts, types: TypeStatus[]): ProxyStatus {
  return {
    streamId: f.id,
    nodeId: f.node?.id ?? '',
    cluster: f.node?.cluster ?? '',
    userAgent: userAgentOf(f.node),
    peer: f.peer,
    identity: f.identity,
    connectedAt: new Date(f.connectedAt).toISOString(),
    state: worst(types.map((t) => t.state)),
    currentRevision: f.revision,
    ackedRevision: types.reduce((min, t) => Math.min(min, t.ackedRevision ?? 0), f.revision),
    types,
  };
}
