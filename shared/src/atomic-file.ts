import * as fs from 'node:fs';

/**
 * Writes `data` to `file` so that a reader (or a crash) sees the old content or the new, never a
 * mix: a temp file in the same directory, fsynced, then renamed over. `mode` applies from the
 * first byte (0o600 for anything secret), so there is no moment the data is more readable.
 */
export function writeFileAtomic(file: string, data: string, mode: number): void {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    const fd = fs.openSync(tmp, 'w', mode);
    try { fs.writeSync(fd, data); fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
    fs.chmodSync(tmp, mode); // openSync's mode is masked by the umask
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}
