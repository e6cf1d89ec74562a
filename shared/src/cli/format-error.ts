import { formatIssue, MeshError } from '../errors';

/** Prints an error for a human, every field issue on its own line. */
export function formatCliError(e: unknown): string {
  if (!(e instanceof MeshError)) return `error: ${(e as Error)?.message ?? String(e)}`;
  if (e.details.length > 1) return `error (${e.code}): invalid config:\n${e.details.map((d) => `  - ${formatIssue(d)}`).join('\n')}`;
  return `error (${e.code}): ${e.message}`;
}
