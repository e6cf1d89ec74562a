import { DeliverPolicy, JetStreamApiError, jetstream, StorageType, DiscardPolicy } from '@nats-io/jetstream';
import type { ConsumerMessages, JetStreamClient, JetStreamManager, JsMsg } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { KV } from '@nats-io/kv';
import { ErrorCodes, MeshError } from '../../../shared/src/errors';
import type { Logger } from '../../../shared/src/log';
import type { Revision, RevisionLog, RevisionMeta } from './config-store';
import { openFailed, unavailable } from './nats-connection';
import type { NatsStoreConnection } from './nats-connection';
import { ensureStream } from './nats-replicas';

/** JetStream's "wrong last sequence": another writer appended first. */
const WRONG_LAST_SEQUENCE = 10071;
/** How long a write waits for its own revision to come back through this replica's watch. */
const SEE_OWN_WRITE_MS = 10_000;
const PUBLISH_TIMEOUT_MS = 5000;

/**
 * The shared store: config revisions in a JetStream stream, one message per revision, on one
 * subject (`skein.<bucket>.revisions`, stream `<bucket>-revisions`, the newest `historyLimit`
 * kept), and the current revision mirrored to the KV bucket `<bucket>` key `current` for tools.
 *
 * - The stream is the arbiter. An append publishes with `Nats-Expected-Last-Subject-Sequence`
 *   set to the sequence of the head this replica knows, so of two replicas appending at once
 *   exactly one wins; the other gets CONFLICT after it has caught up (head() is then the
 *   winner's revision, and the store may recompute its change on it and retry).
 * - Every replica follows the stream with an ordered consumer from its first message; that
 *   watch is the only thing that moves head(), so every replica goes through the same revisions
 *   in the same order. An append returns only once this replica's watch has delivered it
 *   (read-your-writes: the API answers with a view that includes the change).
 * - The ordered consumer recreates itself (from the next sequence it needs) after a reconnect
 *   and deletes the one it replaces; all are ephemeral, so a dead replica's go after their
 *   inactivity threshold.
 */
export class NatsRevisionLog implements RevisionLog {
  private headRev: Revision | undefined;
  private headSeq = 0;
  private metas: RevisionMeta[] = [];
  private readonly seqOf = new Map<number, number>();
  private readonly listeners: ((rev: Revision) => void)[] = [];
  /** Revisions this replica appended and has not seen come back yet (their objects become the head, so precommit's work is reused). */
  private readonly own = new Map<number, Revision>();
  private readonly waiters = new Set<() => void>();
  private messages: ConsumerMessages | undefined;
  private closed = false;
  readonly stream: string;
  private readonly subject: string;

  private constructor(private readonly conn: NatsStoreConnection, private readonly js: JetStreamClient, private readonly jsm: JetStreamManager,
    private readonly kv: KV, bucket: string, private readonly historyLimit: number, private readonly log: Logger) {
    this.stream = `${bucket}-revisions`;
    this.subject = `skein.${bucket}.revisions`;
  }

  /** `replicas`: copies JetStream keeps of the stream and the KV bucket (--store-replicas; see nats-replicas.ts). */
  static async open(conn: NatsStoreConnection, opts: { bucket: string; historyLimit: number; replicas?: number; log: Logger }): Promise<NatsRevisionLog> {
    const what = `stream ${opts.bucket}-revisions and KV bucket ${opts.bucket}`;
    const replicas = opts.replicas ?? 1;
    try {
      const jsm = await conn.jetstream(PUBLISH_TIMEOUT_MS);
      const js = jetstream(conn.nc, { timeout: PUBLISH_TIMEOUT_MS });
      const name = `${opts.bucket}-revisions`;
      const config = { name, subjects: [`skein.${opts.bucket}.revisions`], max_msgs: opts.historyLimit, storage: StorageType.File, discard: DiscardPolicy.Old, num_replicas: replicas };
      const info = await ensureStream(jsm, { stream: name, what: `stream ${name}`, replicas, create: () => jsm.streams.add(config), conn, log: opts.log });
      if (info.config.max_msgs !== opts.historyLimit) await jsm.streams.update(name, { max_msgs: opts.historyLimit });
      const kvm = new Kvm(js);
      await ensureStream(jsm, { stream: `KV_${opts.bucket}`, what: `KV bucket ${opts.bucket}`, replicas, create: () => kvm.create(opts.bucket, { history: 1, replicas }), conn, log: opts.log });
      const kv = await kvm.open(opts.bucket);
      const log = new NatsRevisionLog(conn, js, jsm, kv, opts.bucket, opts.historyLimit, opts.log);
      await log.follow();
      try {
        const last = (await jsm.streams.info(name)).state.last_seq;
        await log.until(() => log.headSeq >= last, `the stream's last revision (sequence ${last})`);
      } catch (e) {
        await log.close();
        throw openFailed(what, conn.target, e);
      }
      return log;
    } catch (e) {
      if (e instanceof MeshError) throw e;
      throw openFailed(what, conn.target, e);
    }
  }

  head(): Revision | undefined { return this.headRev; }

  async append(rev: Revision): Promise<void> {
    const expected = (this.headRev?.revision ?? 0) + 1;
    if (rev.revision !== expected) throw new MeshError(ErrorCodes.CONFLICT, `revision ${rev.revision} is not the next one (${expected})`);
    this.conn.check(`storing revision ${rev.revision}`);
    const body = JSON.stringify(rev);
    this.own.set(rev.revision, rev);
    try {
      await this.js.publish(this.subject, body, { expect: { lastSubjectSequence: this.headSeq }, timeout: PUBLISH_TIMEOUT_MS });
    } catch (e) {
      this.own.delete(rev.revision);
      if (e instanceof JetStreamApiError && e.code === WRONG_LAST_SEQUENCE) {
        await this.catchUp();
        throw new MeshError(ErrorCodes.CONFLICT, `another control plane stored revision ${this.headRev?.revision ?? '?'} first (this one tried ${rev.revision})`);
      }
      throw unavailable(`storing revision ${rev.revision}`, this.conn.target, e);
    }
    void this.mirror(rev.revision, body).catch((e: unknown) => this.log.warn({ err: (e as Error).message, revision: rev.revision }, 'could not mirror the current revision to the KV bucket'));
    try {
      await this.until(() => (this.headRev?.revision ?? 0) >= rev.revision, `revision ${rev.revision} through the watch`, SEE_OWN_WRITE_MS);
    } catch {
      // Stored, but not yet seen here: say so (a retry would store it twice), as a 503 all the same.
      throw new MeshError(ErrorCodes.STORE_UNAVAILABLE, `revision ${rev.revision} was stored in NATS, but this control plane has not received it back within ${SEE_OWN_WRITE_MS / 1000}s; read the revisions before you retry`);
    } finally {
      this.own.delete(rev.revision);
    }
  }

  async list(): Promise<RevisionMeta[]> { return [...this.metas]; }

  async get(n: number): Promise<Revision | undefined> {
    if (this.headRev?.revision === n) return this.headRev;
    const seq = this.seqOf.get(n);
    if (seq === undefined) return undefined;
    let m;
    try {
      m = await this.jsm.streams.getMessage(this.stream, { seq });
    } catch (e) {
      throw unavailable(`reading revision ${n}`, this.conn.target, e);
    }
    return m === null ? undefined : (m.json<Revision>());
  }

  onAppend(fn: (rev: Revision) => void): void { this.listeners.push(fn); }

  async close(): Promise<void> {
    this.closed = true;
    this.messages?.stop();
    for (const w of this.waiters) w();
  }

  /** Starts the ordered consumer; it survives reconnects by recreating itself where it left off. */
  private async follow(): Promise<void> {
    const consumer = await this.js.consumers.get(this.stream, { deliver_policy: DeliverPolicy.All, inactive_threshold: 10_000 });
    const messages = await consumer.consume();
    this.messages = messages;
    void (async () => {
      for await (const m of messages) this.receive(m);
    })().catch((e: unknown) => { if (!this.closed) this.log.error({ err: (e as Error).message }, 'the revision watch stopped'); });
  }

  private receive(m: JsMsg): void {
    if (m.seq <= this.headSeq) return;
    let rev: Revision;
    try {
      rev = m.json<Revision>();
    } catch (e) {
      this.log.error({ seq: m.seq, err: (e as Error).message }, 'unreadable revision in the stream; skipped');
      return;
    }
    this.headSeq = m.seq;
    if (typeof rev?.revision !== 'number' || rev.revision <= (this.headRev?.revision ?? 0)) {
      this.log.error({ seq: m.seq, revision: rev?.revision }, 'out-of-order revision in the stream; skipped');
      return;
    }
    const mine = this.own.get(rev.revision);
    const head = mine !== undefined && JSON.stringify(mine) === JSON.stringify(rev) ? mine : rev;
    this.headRev = head;
    this.seqOf.set(head.revision, m.seq);
    const { resources: _omit, ...meta } = head;
    this.metas.push(meta);
    while (this.metas.length > this.historyLimit) this.seqOf.delete(this.metas.shift()!.revision);
    for (const w of [...this.waiters]) w();
    for (const l of this.listeners) l(head);
  }

  /**
   * Writes the revision to KV `current` for tools (nats kv get <bucket> current), unless a newer
   * one is there: compare-and-set on the key's revision, so two writers' mirrors never go back
   * in time. Replicas read the stream, so a failure here loses nothing.
   */
  private async mirror(revision: number, body: string): Promise<void> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const cur = await this.kv.get('current');
      const there = cur === null || cur.operation !== 'PUT' ? 0 : cur.json<{ revision?: number }>().revision ?? 0;
      if (there >= revision) return;
      try {
        if (cur === null) await this.kv.create('current', body);
        else await this.kv.update('current', body, cur.revision);
        return;
      } catch {
        // another writer moved it meanwhile: look again
      }
    }
  }

  async sync(): Promise<void> {
    this.conn.check('catching up with the stream');
    await this.catchUp();
  }

  /** Waits until the watch has delivered the stream's last message (after losing a race, or for sync). */
  private async catchUp(): Promise<void> {
    let last: number;
    try {
      last = (await this.jsm.streams.info(this.stream)).state.last_seq;
    } catch (e) {
      throw unavailable('catching up with the stream', this.conn.target, e);
    }
    await this.until(() => this.headSeq >= last, `sequence ${last} through the watch`);
  }

  private until(pred: () => boolean, what: string, boundMs = SEE_OWN_WRITE_MS): Promise<void> {
    if (pred()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const check = () => {
        if (this.closed) { done(); reject(new MeshError(ErrorCodes.STORE_UNAVAILABLE, `the NATS store was closed while waiting for ${what}`)); } else if (pred()) { done(); resolve(); }
      };
      const timer = setTimeout(() => { done(); reject(unavailable(`waiting ${boundMs} ms for ${what}`, this.conn.target)); }, boundMs);
      const done = () => { clearTimeout(timer); this.waiters.delete(check); };
      this.waiters.add(check);
    });
  }
}
