import { parseAllDocuments } from 'yaml';
import { ErrorCodes, MeshError } from '../errors';

/**
 * Parses a request body or file of config documents: multi-document YAML, a JSON object, a JSON
 * list, or a `{kind: List, items: [...]}` wrapper. Returns the raw documents; validation comes after.
 * Throws MeshError(MALFORMED_INPUT) naming the line and column of the first syntax error.
 */
export function parseDocuments(text: string): unknown[] {
  const docs = parseAllDocuments(text, { uniqueKeys: true, prettyErrors: true });
  const out: unknown[] = [];
  const list = Array.isArray(docs) ? docs : [docs];
  for (const doc of list) {
    const err = doc.errors[0];
    if (err !== undefined) {
      const pos = err.linePos?.[0];
      const where = pos ? `line ${pos.line}, column ${pos.col}: ` : '';
      throw new MeshError(ErrorCodes.MALFORMED_INPUT, `malformed YAML/JSON: ${where}${err.message.split('\n')[0]}`);
    }
    const value: unknown = doc.toJS({ maxAliasCount: 50 });
    if (value === null || value === undefined) continue; // empty document (e.g. trailing ---)
    if (Array.isArray(value)) out.push(...value);
    else if (isList(value)) out.push(...value.items);
    else out.push(value);
  }
  return out;
}

function isList(v: unknown): v is { items: unknown[] } {
  return typeof v === 'object' && v !== null && (v as { kind?: unknown }).kind === 'List' && Array.isArray((v as { items?: unknown }).items);
}
