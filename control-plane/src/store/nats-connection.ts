/**
 * The connection to the NATS servers a control plane shares its state through (`--store
 * nats://host:4222[,host2:4222]`, parsed by nats-store-url.ts): connecting, and whether the
 * store is reachable now. Credentials in the URL (user:pass@ or token@) are passed to the client and
 * never shown: `redacted` is what logs and errors name.
 */
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import type { JetStreamManager } from '@nats-io/jetstream';
import { ErrorCodes, MeshError } from '../../../shared/src/errors';
import type { Logger } from '../../../shared/src/log';
import type { NatsStoreTarget } from './nats-store-url';

type NatsConnection = Awaited<ReturnType<typeof connect>>;

/** How long start-up retries while a JetStream cluster is still forming (see whileStarting). */
const START_WAIT_MS = 60_000;

/**
 * One connection for the revision log and the lease registry. It reconnects forever; while it is
 * down `available` is false and writes fail at once with STORE_UNAVAILABLE (the client would
 * otherwise buffer them). `onReconnect` listeners resubscribe or catch up.
 */
export class NatsStoreConnection {
  private up = true;
  private readonly reconnected: (() => void)[] = [];

  private constructor(readonly nc: NatsConnection, readonly target: NatsStoreTarget, private readonly log: Logger, private readonly startWaitMs: number) {
    void this.follow();
  }

  /** `startWaitMs`: how long start-up retries while JetStream is not ready (default 60 s). */
  static async open(target: NatsStoreTarget, log: Logger, opts: { startWaitMs?: number } = {}): Promise<NatsStoreConnection> {
    let nc: NatsConnection;
    try {
      nc = await connect({
        servers: target.servers, name: 'skein-control-plane', maxReconnectAttempts: -1, reconnectTimeWait: 500, timeout: 5000,
        pingInterval: 5000, maxPingOut: 2,
        ...(target.user === undefined ? {} : { user: target.user, pass: target.pass! }), ...(target.token === undefined ? {} : { token: target.token }),
      });
    } catch (e) {
      throw new MeshError(ErrorCodes.STORE_UNAVAILABLE, `--store: cannot connect to ${target.redacted}: ${scrub((e as Error).message, target)}`, { cause: e });
    }
    log.info({ store: target.redacted, server: nc.info?.server_name, version: nc.info?.version }, 'connected to the NATS store');
    return new NatsStoreConnection(nc, target, log, opts.startWaitMs ?? START_WAIT_MS);
  }

  get available(): boolean { return this.up && !this.nc.isClosed(); }

  /** Throws STORE_UNAVAILABLE unless connected now. */
  check(what: string): void {
    if (!this.available) throw unavailable(what, this.target);
  }

  onReconnect(fn: () => void): void { this.reconnected.push(fn); }

  /** JetStream's manager, once the servers answer JetStream requests (see whileStarting). */
  jetstream(timeout: number): Promise<JetStreamManager> {
    return this.whileStarting('answering JetStream requests', () => jetstreamManager(this.nc, { timeout }));
  }

  /**
   * Runs `fn`, again while JetStream answers as a cluster still forming does (all its pods starting
   * at once): requests unanswered (timeout), "temporarily unavailable" (no meta leader yet), "no
   * suitable peers for placement" (the peers a stream needs have not all joined yet; also what
   * more replicas than servers gets, which so fails only after the wait). Up to `startWaitMs`,
   * saying so once; anything else (JetStream off, a single server asked for replicas) is thrown at once.
   */
  async whileStarting<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + this.startWaitMs;
    let said = false;
    for (;;) {
      try {
        return await fn();
      } catch (e) {
        const msg = (e as Error)?.message ?? '';
        if (!/timeout|temporarily unavailable|no suitable peers|insufficient resources/i.test(msg) || Date.now() > deadline) throw e;
        if (!said) {
          said = true;
          this.log.warn({ store: this.target.redacted, err: scrub(msg, this.target) }, `JetStream not ready for ${what} (a cluster still forming?): retrying for up to ${this.startWaitMs / 1000}s`);
        }
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  async close(): Promise<void> {
    if (!this.nc.isClosed()) await this.nc.close().catch(() => undefined);
  }

  private async follow(): Promise<void> {
    for await (const s of this.nc.status()) {
      if (s.type === 'disconnect' && this.up) {
        this.up = false;
        this.log.warn({ store: this.target.redacted }, 'lost the NATS store: serving the last snapshot, refusing changes until it is back');
      } else if (s.type === 'reconnect') {
        this.up = true;
        this.log.info({ store: this.target.redacted }, 'NATS store reachable again: catching up');
        for (const fn of this.reconnected) fn();
      }
    }
  }
}

export function unavailable(what: string, target: NatsStoreTarget, cause?: unknown): MeshError {
  const why = cause === undefined ? '' : `: ${scrub((cause as Error).message ?? String(cause), target)}`;
  return new MeshError(ErrorCodes.STORE_UNAVAILABLE, `${what}: the NATS store (${target.redacted}) is unavailable${why}; nothing was changed, retry when it is back (this control plane keeps serving its last snapshot)`, cause === undefined ? {} : { cause });
}

/** At start-up: the store is there but what the control plane needs in it cannot be opened. */
export function openFailed(what: string, target: NatsStoreTarget, cause: unknown): MeshError {
  const why = scrub((cause as Error).message ?? String(cause), target);
  const hint = /jetstream not enabled|jetstream is not enabled|no responders/i.test(why) ? ' (is JetStream on? nats-server -js)' : '';
  return new MeshError(ErrorCodes.STORE_UNAVAILABLE, `--store: cannot open ${what} on ${target.redacted}: ${why}${hint}`, { cause });
}

/** A client error message with any credential of `target` cut out. */
function scrub(msg: string, target: NatsStoreTarget): string {
  let out = msg;
  for (const secret of [target.pass, target.token, target.user]) if (secret !== undefined && secret !== '') out = out.split(secret).join('***');
  return out;
}
