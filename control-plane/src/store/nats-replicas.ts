/**
 * The JetStream streams the NATS store needs (`<bucket>-revisions`, and the streams behind the KV
 * buckets `<bucket>` and `<bucket>-leases`), made with --store-replicas copies each:
 *
 * - Creating is idempotent, so replicas starting at once are safe: JetStream answers a create
 *   whose config equals the existing stream's with that stream. A create that loses a race to a
 *   different config (another version, another --history-limit) is read back, not an error.
 * - An existing stream with fewer replicas than asked is raised (streams.update num_replicas:
 *   nats-server 2.9 changes a clustered stream's replica count in place, the data is copied to
 *   the new peers). One with more is kept, with a warning naming both counts: a replica left at
 *   the default must not strip a mesh's redundancy; lowering is an operator's act
 *   (`nats stream edit <stream> --replicas N`).
 * - A server that cannot hold N copies (a single non-clustered server: "replicas > 1 not
 *   supported in non-clustered mode"; a cluster with fewer JetStream servers: "insufficient
 *   resources") fails the start with an error naming --store-replicas.
 */
import { JetStreamApiError } from '@nats-io/jetstream';
import type { JetStreamManager, StreamInfo } from '@nats-io/jetstream';
import { ErrorCodes, MeshError } from '../../../shared/src/errors';
import type { Logger } from '../../../shared/src/log';
import type { NatsStoreConnection } from './nats-connection';

/** "stream name already in use with a different configuration" */
const STREAM_NAME_EXISTS = 10058;
const STREAM_NOT_FOUND = 10059;

export interface StreamNeed {
  /** The JetStream stream: `<bucket>-revisions` or `KV_<name>`. */
  stream: string;
  /** What logs and errors call it: "stream skein-revisions", "KV bucket skein-leases". */
  what: string;
  replicas: number;
  /** Creates it with `replicas` copies; may throw JetStream's "already in use" when another replica won. */
  create(): Promise<unknown>;
  conn: NatsStoreConnection;
  log: Logger;
}

/** Creates the stream if it is missing, then brings its replica count up to `replicas`; returns its info. */
export async function ensureStream(jsm: JetStreamManager, need: StreamNeed): Promise<StreamInfo> {
  for (let attempt = 0; ; attempt++) {
    const info = await need.conn.whileStarting(`reading ${need.what}`, () => jsm.streams.info(need.stream)).catch((e: unknown) => {
      if (e instanceof JetStreamApiError && e.code === STREAM_NOT_FOUND) return undefined;
      throw e;
    });
    if (info !== undefined) return raise(jsm, info, need);
    try {
      // A create that timed out may have been done: the next round reads it back.
      await need.conn.whileStarting(`creating ${need.what}`, need.create);
    } catch (e) {
      // Another replica created it first with another config: read what is there (once more).
      if (e instanceof JetStreamApiError && e.code === STREAM_NAME_EXISTS && attempt < 2) continue;
      throw replicasError(e, need);
    }
  }
}

async function raise(jsm: JetStreamManager, info: StreamInfo, need: StreamNeed): Promise<StreamInfo> {
  const have = info.config.num_replicas;
  if (have === need.replicas) return info;
  if (have > need.replicas) {
    need.log.warn({ stream: need.stream, replicas: have, storeReplicas: need.replicas },
      `${need.what} has ${have} replicas, --store-replicas asks for ${need.replicas}: kept at ${have} (lower it with nats stream edit ${need.stream} --replicas ${need.replicas} if that is meant)`);
    return info;
  }
  // A single nats-server takes the update and then reports N replicas while it keeps one copy
  // (seen with 2.9.10): its stream info has no cluster (or one with no name, as a server that is
  // not in a JetStream cluster may answer); refuse before writing that config.
  if (info.cluster?.name === undefined || info.cluster.name === '') throw replicasError(new Error('replicas > 1 not supported in non-clustered mode (the server is not in a JetStream cluster)'), need, have);
  need.log.info({ stream: need.stream, from: have, to: need.replicas }, `${need.what}: raising its replicas from ${have} to ${need.replicas} (--store-replicas)`);
  try {
    return await need.conn.whileStarting(`raising ${need.what}'s replicas`, () => jsm.streams.update(need.stream, { num_replicas: need.replicas }));
  } catch (e) {
    throw replicasError(e, need, have);
  }
}

/** JetStream refusing N copies becomes an error naming the flag; anything else is passed on. */
function replicasError(e: unknown, need: StreamNeed, have?: number): unknown {
  const msg = (e as Error)?.message ?? String(e);
  if (need.replicas === 1 || !/replicas|insufficient resources|no suitable peers|peer/i.test(msg)) return e;
  const now = have === undefined ? '' : ` (it has ${have})`;
  return new MeshError(ErrorCodes.STORE_UNAVAILABLE,
    `--store-replicas ${need.replicas}: JetStream cannot keep ${need.what} on ${need.replicas} servers${now}: ${msg}; a single nats-server (not clustered) takes --store-replicas 1, a cluster at most its number of JetStream servers`, { cause: e });
}
