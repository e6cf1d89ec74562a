import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { ErrorCodes, MeshError } from '../../../shared/src/errors';
import type { Revision, RevisionLog, RevisionMeta } from './config-store';

const FILE = /^(\d{10})\.json$/;

/**
 * The embedded store: one JSON file per revision under `<dataDir>/revisions/`.
 *
 * - Writes are atomic and never clobber: the file is written to a temp name, fsynced, then
 *   hard-linked to its final name (link fails if the name exists), and the directory is fsynced.
 *   A crash leaves either the old head or the complete new revision, never a torn file.
 * - A `LOCK` file holding the owner's pid keeps two control planes off one directory.
 * - History is pruned to the newest `historyLimit` revisions (default 1000).
 */
export class FileRevisionLog implements RevisionLog {
  private headRev: Revision | undefined;
  private metas: RevisionMeta[] = [];
  private readonly listeners: ((rev: Revision) => void)[] = [];
  private readonly dir: string;
  private readonly lockPath: string;

  private constructor(dataDir: string, private readonly historyLimit: number) {
    this.dir = path.join(dataDir, 'revisions');
    this.lockPath = path.join(dataDir, 'LOCK');
  }

  static async open(dataDir: string, opts: { historyLimit?: number } = {}): Promise<FileRevisionLog> {
    const log = new FileRevisionLog(dataDir, opts.historyLimit ?? 1000);
    try {
      await fsp.mkdir(log.dir, { recursive: true });
    } catch (e) {
      throw new MeshError(ErrorCodes.STORE, `cannot create data directory ${dataDir}: ${(e as Error).message}`, { cause: e });
    }
    log.lock();
    try {
      await log.load();
    } catch (e) {
      await log.close(); // a failed open must not leave the directory locked
      throw e;
    }
    return log;
  }

  head(): Revision | undefined { return this.headRev; }

  async append(rev: Revision): Promise<void> {
    const expected = (this.headRev?.revision ?? 0) + 1;
    if (rev.revision !== expected) throw new MeshError(ErrorCodes.CONFLICT, `revision ${rev.revision} is not the next one (${expected})`);
    const final = this.fileOf(rev.revision);
    const tmp = path.join(this.dir, `.tmp-${rev.revision}-${process.pid}-${randomBytes(4).toString('hex')}`);
    try {
      const fh = await fsp.open(tmp, 'wx', 0o600);
      try {
        await fh.writeFile(`${JSON.stringify(rev, null, 1)}\n`);
        await fh.sync();
      } finally {
        await fh.close();
      }
      try {
        await fsp.link(tmp, final);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new MeshError(ErrorCodes.CONFLICT, `revision ${rev.revision} already exists`);
        throw e;
      }
      await syncDir(this.dir);
    } catch (e) {
      if (e instanceof MeshError) throw e;
      throw new MeshError(ErrorCodes.STORE, `cannot write revision ${rev.revision} to ${final}: ${(e as Error).message}`, { cause: e });
    } finally {
      await fsp.rm(tmp, { force: true });
    }
    this.headRev = rev;
    this.metas.push(metaOf(rev));
    await this.prune();
    for (const l of this.listeners) l(rev);
  }

  async list(): Promise<RevisionMeta[]> { return [...this.metas]; }

  async get(n: number): Promise<Revision | undefined> {
    if (this.headRev?.revision === n) return this.headRev;
    try {
      return JSON.parse(await fsp.readFile(this.fileOf(n), 'utf8')) as Revision;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new MeshError(ErrorCodes.STORE, `cannot read revision ${n}: ${(e as Error).message}`, { cause: e });
    }
  }

  onAppend(fn: (rev: Revision) => void): void { this.listeners.push(fn); }

  async close(): Promise<void> {
    try {
      if (fs.readFileSync(this.lockPath, 'utf8').trim() === String(process.pid)) fs.rmSync(this.lockPath, { force: true });
    } catch { /* already gone */ }
  }

  private fileOf(n: number): string { return path.join(this.dir, `${String(n).padStart(10, '0')}.json`); }

  private lock(): void {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        fs.writeFileSync(this.lockPath, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
        return;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new MeshError(ErrorCodes.STORE, `cannot lock ${this.lockPath}: ${(e as Error).message}`, { cause: e });
      }
      const owner = Number.parseInt(fs.readFileSync(this.lockPath, 'utf8'), 10);
      if (Number.isInteger(owner) && owner !== process.pid && isAlive(owner)) {
        throw new MeshError(ErrorCodes.STORE_LOCKED, `data directory ${path.dirname(this.lockPath)} is in use by process ${owner}; stop it or pass another --data-dir`);
      }
      fs.rmSync(this.lockPath, { force: true }); // stale lock from a dead process
    }
    throw new MeshError(ErrorCodes.STORE_LOCKED, `cannot take the lock ${this.lockPath}`);
  }

  private async load(): Promise<void> {
    const names = (await fsp.readdir(this.dir)).filter((n) => FILE.test(n)).sort();
    for (const n of names) {
      const file = path.join(this.dir, n);
      let rev: Revision;
      try {
        rev = JSON.parse(await fsp.readFile(file, 'utf8')) as Revision;
      } catch (e) {
        throw new MeshError(ErrorCodes.STORE, `revision file ${file} is unreadable: ${(e as Error).message}; move it aside to start from the previous revision`, { cause: e });
      }
      if (rev?.revision !== Number(FILE.exec(n)![1])) throw new MeshError(ErrorCodes.STORE, `revision file ${file} holds revision ${String(rev?.revision)}`);
      this.metas.push(metaOf(rev));
      this.headRev = rev;
    }
  }

  private async prune(): Promise<void> {
    while (this.metas.length > this.historyLimit) {
      const old = this.metas.shift()!;
      await fsp.rm(this.fileOf(old.revision), { force: true });
    }
  }
}

function metaOf(rev: Revision): RevisionMeta {
  const { resources: _omit, ...meta } = rev;
  return meta;
}

function isAlive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM'; }
}

async function syncDir(dir: string): Promise<void> {
  const fh = await fsp.open(dir, 'r');
  try { await fh.sync(); } finally { await fh.close(); }
}
