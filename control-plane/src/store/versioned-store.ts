import { buildMeshSliced, validateResource } from '../../../shared/src/config/mesh';
import type { MeshConfig, RawResource } from '../../../shared/src/config/mesh';
import { resourceKey } from '../../../shared/src/config/types';
import type { Resource } from '../../../shared/src/config/types';
import { CONFIG_LIMITS } from '../../../shared/src/config/limits';
import { TimeSlicer } from '../../../shared/src/slicer';
import type { Slicer } from '../../../shared/src/slicer';
import { ErrorCodes, MeshError, validationError } from '../../../shared/src/errors';
import type { FieldIssue } from '../../../shared/src/errors';
import type { Clock } from '../../../shared/src/clock';
import type { ApplyOptions, ChangeOptions, ChangeResult, ConfigStore, Revision, RevisionLog, RevisionMeta } from './config-store';
import { diffResourcesSliced, sortResources } from './diff';

/** Tries of one change against a shared log that other replicas keep appending to. */
const MAX_CHANGE_ATTEMPTS = 5;

const EMPTY: Revision = { revision: 0, createdAt: new Date(0).toISOString(), author: '', message: 'empty', summary: { added: [], changed: [], removed: [] }, resources: [] };

/**
 * ConfigStore over any RevisionLog. Changes are serialized through one queue, so two applies
 * racing in one process never interleave; across replicas the log's append is the arbiter.
 */
export class VersionedConfigStore implements ConfigStore {
  private queue: Promise<unknown> = Promise.resolve();
  private readonly watchers = new Set<(rev: Revision) => void>();
  /** The validated form of each stored document seen, so a change revalidates only what it brings. */
  private readonly validated = new WeakMap<object, Resource>();

  /**
   * @param precommit runs on every validated candidate before it is stored (the control plane
   *   translates and encodes it there), so config that cannot become xDS is never stored. It is
   *   given the validated config and the documents it came from (which become the revision's
   *   `resources` if it is stored).
   */
  constructor(private readonly log: RevisionLog, private readonly clock: Clock, private readonly precommit: (mesh: MeshConfig, resources: readonly RawResource[]) => void | Promise<void> = () => undefined) {
    log.onAppend((rev) => { for (const w of this.watchers) w(rev); });
  }

  current(): Revision { return this.log.head() ?? EMPTY; }

  apply(docs: readonly unknown[], opts: ApplyOptions = {}): Promise<ChangeResult> {
    return this.change(opts, async () => {
      const incoming = await checkDocuments(docs, new TimeSlicer());
      let next: RawResource[];
      if (opts.mode === 'replace') {
        next = incoming;
      } else {
        const byKey = new Map(this.current().resources.map((r) => [resourceKey(r), r]));
        for (const d of incoming) byKey.set(resourceKey(d), d);
        next = [...byKey.values()];
      }
      return this.commit(next, opts, 'apply');
    });
  }

  delete(keys: readonly string[], opts: ChangeOptions = {}): Promise<ChangeResult> {
    return this.change(opts, () => {
      const cur = this.current().resources;
      const missing = keys.filter((k) => !cur.some((r) => resourceKey(r) === k));
      if (missing.length > 0) throw new MeshError(ErrorCodes.NOT_FOUND, `no such resource: ${missing.join(', ')}`);
      const drop = new Set(keys);
      return this.commit(cur.filter((r) => !drop.has(resourceKey(r))), opts, `delete ${keys.join(', ')}`);
    });
  }

  update(fn: (docs: readonly RawResource[]) => RawResource[], opts: ChangeOptions = {}): Promise<ChangeResult> {
    return this.change(opts, async () => this.commit(fn(await cloneAll(this.current().resources, new TimeSlicer())), opts, 'update'));
  }

  async revisions(): Promise<RevisionMeta[]> { return this.log.list(); }

  async revision(n: number): Promise<Revision> {
    if (n === 0) return EMPTY;
    const rev = await this.log.get(n);
    if (rev === undefined) throw new MeshError(ErrorCodes.NOT_FOUND, `revision ${n} does not exist (current is ${this.current().revision})`);
    return rev;
  }

  rollback(n: number, opts: ChangeOptions = {}): Promise<ChangeResult> {
    return this.change(opts, async () => {
      const target = await this.revision(n);
      return this.commit(await cloneAll(target.resources, new TimeSlicer()), { ...opts, message: opts.message ?? `rollback to revision ${n}` }, `rollback to revision ${n}`);
    });
  }

  async *watch(signal?: AbortSignal): AsyncIterable<Revision> {
    let latest: Revision | undefined = this.current();
    let wake: (() => void) | undefined;
    const onRev = (rev: Revision) => { latest = rev; wake?.(); };
    const onAbort = () => wake?.();
    this.watchers.add(onRev);
    signal?.addEventListener('abort', onAbort);
    try {
      while (signal?.aborted !== true) {
        if (latest !== undefined) { const r: Revision = latest; latest = undefined; yield r; continue; }
        await new Promise<void>((resolve) => { wake = resolve; });
        wake = undefined;
      }
    } finally {
      this.watchers.delete(onRev);
      signal?.removeEventListener('abort', onAbort);
    }
  }

  async close(): Promise<void> {
    await this.queue.catch(() => undefined);
    await this.log.close();
  }

  /**
   * Runs a change in the queue. On a shared log another replica may append between this one's
   * read of the head and its append: the log then throws CONFLICT with its head moved on. A
   * change without `expectedRevision` is then made again on the new head (merge, delete,
   * canary and rollback all mean "on top of whatever is current"), so no write is lost; one
   * with `expectedRevision` fails with CONFLICT, as it asked to.
   */
  private change(opts: ChangeOptions, op: () => ChangeResult | Promise<ChangeResult>): Promise<ChangeResult> {
    return this.serialize(async () => {
      // A revision newer than this replica's head was read from another replica: catch up before
      // the change reads the head it builds on.
      if (opts.expectedRevision !== undefined && opts.expectedRevision > this.current().revision) await this.log.sync?.();
      for (let attempt = 1; ; attempt++) {
        const before = this.current().revision;
        try {
          return await op();
        } catch (e) {
          const lostRace = e instanceof MeshError && e.code === ErrorCodes.CONFLICT && this.current().revision > before;
          if (!lostRace || opts.expectedRevision !== undefined || attempt >= MAX_CHANGE_ATTEMPTS) throw e;
        }
      }
    });
  }

  private serialize<T>(fn: () => T | Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Validates the whole candidate config, diffs it, and appends it unless it is a dry run or a no-op. */
  private async commit(next: RawResource[], opts: ChangeOptions, defaultMessage: string): Promise<ChangeResult> {
    const cur = this.current();
    if (opts.expectedRevision !== undefined && opts.expectedRevision !== cur.revision) {
      throw new MeshError(ErrorCodes.CONFLICT, `expected revision ${opts.expectedRevision}, but the current revision is ${cur.revision}; re-read and retry`);
    }
    checkConfigSize(next);
    const slicer = new TimeSlicer();
    const mesh = await buildMeshSliced(next, slicer, this.validated); // throws MeshError(VALIDATION) naming every problem
    await this.precommit(mesh, next);
    opts.inspect?.(mesh);
    sortResources(next);
    const diff = await diffResourcesSliced(cur.resources, next, slicer);
    const dryRun = opts.dryRun === true;
    if (dryRun || diff.length === 0) return { revision: cur.revision, dryRun, changed: diff.length > 0, diff };
    const rev: Revision = {
      revision: cur.revision + 1,
      createdAt: new Date(this.clock.now()).toISOString(),
      author: opts.author ?? 'unknown',
      message: opts.message ?? defaultMessage,
      summary: {
        added: diff.filter((d) => d.op === 'added').map((d) => d.key),
        changed: diff.filter((d) => d.op === 'changed').map((d) => d.key),
        removed: diff.filter((d) => d.op === 'removed').map((d) => d.key),
      },
      resources: next,
    };
    await this.log.append(rev);
    return { revision: rev.revision, dryRun: false, changed: true, diff };
  }
}

/**
 * Validates incoming documents on their own (so errors name the document as the user wrote it)
 * and rejects duplicates within one request. Returns them as stored documents. Too many
 * documents are refused before any is read.
 */
async function checkDocuments(docs: readonly unknown[], slicer: Slicer): Promise<RawResource[]> {
  const issues: FieldIssue[] = [];
  const seen = new Map<string, number>();
  if (docs.length === 0) throw validationError([{ resource: '', path: '', message: 'no documents: the body holds no resources' }]);
  if (docs.length > CONFIG_LIMITS.documentsPerRequest) {
    throw validationError([{ resource: '', path: 'documents', message: `the body holds ${docs.length} documents; at most ${CONFIG_LIMITS.documentsPerRequest} per request: split it into several applies` }]);
  }
  for (let i = 0; i < docs.length; i++) {
    const res = validateResource(docs[i], i, issues);
    await slicer.point();
    if (res === undefined) continue;
    const key = resourceKey(res);
    const prev = seen.get(key);
    if (prev !== undefined) issues.push({ resource: key, path: 'metadata.name', message: `duplicate name: documents ${prev} and ${i} both define ${key}` });
    else seen.set(key, i);
  }
  if (issues.length > 0) throw validationError(issues);
  return cloneAll(docs as RawResource[], slicer);
}

/** Deep copies of documents, one at a time. */
async function cloneAll(docs: readonly RawResource[], slicer: Slicer): Promise<RawResource[]> {
  const out: RawResource[] = [];
  for (const d of docs) {
    out.push(structuredClone(d));
    await slicer.point();
  }
  return out;
}

/** The whole candidate config within CONFIG_LIMITS.resources and .configBytes (checked before it is validated). */
function checkConfigSize(next: readonly RawResource[]): void {
  if (next.length > CONFIG_LIMITS.resources) {
    throw validationError([{ resource: '', path: 'resources', message: `the config would hold ${next.length} resources; at most ${CONFIG_LIMITS.resources}` }]);
  }
  let bytes = 0;
  for (const r of next) bytes += Buffer.byteLength(JSON.stringify(r));
  if (bytes > CONFIG_LIMITS.configBytes) {
    throw validationError([{ resource: '', path: 'resources', message: `the config would be ${bytes} bytes (as JSON); at most ${CONFIG_LIMITS.configBytes}` }]);
  }
}
