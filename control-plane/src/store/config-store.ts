import type { MeshConfig, RawResource } from '../../../shared/src/config/mesh';

/**
 * The mesh's declared config, versioned. Every accepted change is a new numbered revision;
 * revisions are never edited. Invalid config is never stored: `apply`, `delete`, `rollback`
 * and `update` validate the whole resulting config first and throw MeshError(VALIDATION).
 *
 * Backends (embedded files, NATS JetStream) implement only `RevisionLog`; the validation
 * and diff logic here is shared, so every backend accepts and rejects exactly the same input.
 */
export interface RevisionMeta {
  revision: number;
  /** ISO-8601 time the revision was created. */
  createdAt: string;
  author: string;
  message: string;
  /** What changed against the previous revision, as `Kind/name` keys. */
  summary: { added: string[]; changed: string[]; removed: string[] };
}

export interface Revision extends RevisionMeta {
  /** The full config, sorted by kind then name: exactly the documents users applied. */
  resources: RawResource[];
}

export interface ResourceChange {
  key: string;
  op: 'added' | 'changed' | 'removed';
  /** For `changed`: field-level changes, with dotted paths. */
  fields?: { path: string; op: 'added' | 'changed' | 'removed'; from?: unknown; to?: unknown }[];
}

export interface ChangeOptions {
  /** Validate and diff, but store nothing. */
  dryRun?: boolean;
  author?: string;
  message?: string;
  /** Optimistic concurrency: fail with CONFLICT unless this is still the current revision. */
  expectedRevision?: number;
  /** Called with the validated candidate config before it is stored (or, in a dry run, instead). */
  inspect?: (candidate: MeshConfig) => void;
}

export interface ApplyOptions extends ChangeOptions {
  /** merge (default): upsert the given documents. replace: the given documents become the whole config. */
  mode?: 'merge' | 'replace';
}

export interface ChangeResult {
  /** The new revision, or the current one if nothing changed or for a dry run. */
  revision: number;
  dryRun: boolean;
  /** False when the result equals the current config (no revision was created). */
  changed: boolean;
  diff: ResourceChange[];
}

export interface ConfigStore {
  current(): Revision;
  apply(docs: readonly unknown[], opts?: ApplyOptions): Promise<ChangeResult>;
  /** Deletes resources by `Kind/name`. */
  delete(keys: readonly string[], opts?: ChangeOptions): Promise<ChangeResult>;
  /** Applies a pure function to the current documents (used by canary shifts). */
  update(fn: (docs: readonly RawResource[]) => RawResource[], opts?: ChangeOptions): Promise<ChangeResult>;
  revisions(): Promise<RevisionMeta[]>;
  revision(n: number): Promise<Revision>;
  /** Makes revision `n`'s config current again, as a new revision. */
  rollback(n: number, opts?: ChangeOptions): Promise<ChangeResult>;
  /** Yields the current revision, then each new one. Coalesces: a slow reader sees the latest. */
  watch(signal?: AbortSignal): AsyncIterable<Revision>;
  close(): Promise<void>;
}

/** What a storage backend provides: an append-only log of whole-config revisions. */
export interface RevisionLog {
  /** The newest revision, or undefined for an empty log. */
  head(): Revision | undefined;
  /**
   * Appends `rev`; throws MeshError(CONFLICT) if `rev.revision` is not head + 1. A shared backend
   * also throws CONFLICT when another replica appended first, and then only once `head()` has
   * moved on to what that replica appended (so the caller can make its change again on it).
   * Resolves once `head()` is `rev`: a change is visible here when it answers.
   */
  append(rev: Revision): Promise<void>;
  list(): Promise<RevisionMeta[]>;
  get(n: number): Promise<Revision | undefined>;
  /**
   * Shared backends: resolves once `head()` is at least the newest revision stored by any
   * replica (a caller that names a revision newer than this replica's head may have read it
   * from another replica). Absent for a backend that only this process writes.
   */
  sync?(): Promise<void>;
  /** Called with each revision appended by this or (for shared backends) another replica. */
  onAppend(fn: (rev: Revision) => void): void;
  close(): Promise<void>;
}
