/**
 * The body parser's worker thread (see body-parser.ts): parses config documents and checks each
 * on its own, so a large or hostile body costs this thread, never the API's event loop, and only
 * documents within the config limits are sent back.
 */
import { parentPort } from 'node:worker_threads';
import { parseDocuments } from '../../../shared/src/config/documents';
import { CONFIG_LIMITS } from '../../../shared/src/config/limits';
import { validateResource } from '../../../shared/src/config/mesh';
import { asMeshError, ErrorCodes, MeshError, validationError } from '../../../shared/src/errors';
import type { FieldIssue } from '../../../shared/src/errors';

export interface ParseJob { id: number; text: string }
export type ParseAnswer = { id: number; docs: unknown[] } | { id: number; error: { code: string; message: string; details: FieldIssue[] } };

function parseAndCheck(text: string): unknown[] {
  let docs: unknown[];
  try {
    docs = parseDocuments(text);
  } catch (e) {
    // The yaml parser's own failures (whatever they are) are the body's.
    throw e instanceof MeshError ? e : new MeshError(ErrorCodes.MALFORMED_INPUT, `body: cannot be parsed: ${(e as Error).message}`);
  }
  if (docs.length > CONFIG_LIMITS.documentsPerRequest) {
    throw validationError([{ resource: '', path: 'documents', message: `the body holds ${docs.length} documents; at most ${CONFIG_LIMITS.documentsPerRequest} per request: split it into several applies` }]);
  }
  const issues: FieldIssue[] = [];
  docs.forEach((d, i) => validateResource(d, i, issues));
  if (issues.length > 0) throw validationError(issues);
  return docs;
}

parentPort?.on('message', (job: ParseJob) => {
  let answer: ParseAnswer;
  try {
    answer = { id: job.id, docs: parseAndCheck(job.text) };
  } catch (e) {
    const err = asMeshError(e); // anything but a MeshError is a bug in validation: INTERNAL
    answer = { id: job.id, error: { code: err.code, message: err.message, details: [...err.details] } };
  }
  parentPort!.postMessage(answer);
});
