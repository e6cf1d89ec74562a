import { isScalar, LineCounter, parseAllDocuments, visit } from 'yaml';
import type { Document } from 'yaml';
import { ErrorCodes, MeshError } from '../errors';

/** Most alias expansions in one body (yaml's maxAliasCount: each alias counts the nodes it repeats). */
export const MAX_ALIAS_COUNT = 50;

/**
 * Parses a request body or file of config documents: multi-document YAML, a JSON object, a JSON
 * list, or a `{kind: List, items: [...]}` wrapper. Returns the raw documents; validation comes after.
 * Throws MeshError(MALFORMED_INPUT) naming the line and column of the first syntax error, and for
 * input that parses but cannot be read as data (an alias bomb, nesting too deep to convert).
 */
export function parseDocuments(text: string): unknown[] {
  checkNesting(text);
  const lineCounter = new LineCounter();
  // uniqueKeys is checked below: yaml's own check compares every key with every other (quadratic).
  const docs = parseAllDocuments(text, { uniqueKeys: false, prettyErrors: true, lineCounter });
  const out: unknown[] = [];
  const list = Array.isArray(docs) ? docs : [docs];
  for (const doc of list) {
    const err = doc.errors[0];
    if (err !== undefined) {
      const pos = err.linePos?.[0];
      const where = pos ? `line ${pos.line}, column ${pos.col}: ` : '';
      throw new MeshError(ErrorCodes.MALFORMED_INPUT, `malformed YAML/JSON: ${where}${err.message.split('\n')[0]}`);
    }
    checkUniqueKeys(doc, lineCounter);
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    } catch (e) {
      throw new MeshError(ErrorCodes.MALFORMED_INPUT, `body: cannot be read as data: ${readError(e)}`);
    }
    if (value === null || value === undefined) continue; // empty document (e.g. trailing ---)
    if (Array.isArray(value)) out.push(...value);
    else if (isList(value)) out.push(...value.items);
    else out.push(value);
  }
  return out;
}

/** Deepest flow nesting ([ and {) a body may have; config needs about 10. */
export const MAX_FLOW_DEPTH = 64;
/** Furthest column at which a line's content may start (indentation and "- " / "? " markers); config needs about 30. */
export const MAX_INDENT = 256;

/**
 * Refuses deeply nested input before the yaml parser sees it. The parser recurses per level, and
 * a stack overflow inside it leaves V8 in a state where a later parse can abort the whole
 * process ("RegExpCompiler Allocation failed"), so the depth is bounded by a linear scan first.
 * Brackets inside quoted strings count too: a config never comes near the limit either way.
 */
function checkNesting(text: string): void {
  let depth = 0;
  let line = 1;
  let col = 0;
  let lineStart = true;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 10) { line++; col = 0; lineStart = true; continue; }
    col++;
    if (lineStart) {
      // 32 space, 9 tab, 45 '-', 63 '?', 58 ':' (block indentation and indicators)
      if (c === 32 || c === 9 || c === 45 || c === 63 || c === 58) {
        if (col > MAX_INDENT) throw new MeshError(ErrorCodes.MALFORMED_INPUT, `malformed YAML/JSON: line ${line}: body: indented or nested past column ${MAX_INDENT}`);
        continue;
      }
      lineStart = false;
    }
    if (c === 91 || c === 123) { // [ {
      if (++depth > MAX_FLOW_DEPTH) throw new MeshError(ErrorCodes.MALFORMED_INPUT, `malformed YAML/JSON: line ${line}, column ${col}: body: nested deeper than ${MAX_FLOW_DEPTH} levels`);
    } else if ((c === 93 || c === 125) && depth > 0) depth--; // ] }
  }
}

function readError(e: unknown): string {
  if (e instanceof RangeError) return 'it is nested too deeply';
  const message = e instanceof Error ? e.message : String(e);
  if (/alias/i.test(message)) return `${message} (YAML aliases may repeat at most ${MAX_ALIAS_COUNT} nodes in all)`;
  return message;
}

/** Duplicate keys in one map are an error (with the duplicate's line and column), found in linear time. */
function checkUniqueKeys(doc: Document.Parsed, lines: LineCounter): void {
  visit(doc, {
    Map(_key, map) {
      const seen = new Set<string>();
      for (const pair of map.items) {
        if (!isScalar(pair.key)) continue; // a collection or alias as a key: never a config field
        const k = String(pair.key.value);
        if (!seen.has(k)) { seen.add(k); continue; }
        const pos = lines.linePos(pair.key.range?.[0] ?? 0);
        throw new MeshError(ErrorCodes.MALFORMED_INPUT, `malformed YAML/JSON: line ${pos.line}, column ${pos.col}: Map keys must be unique`);
      }
      return undefined;
    },
  });
}

function isList(v: unknown): v is { items: unknown[] } {
  return typeof v === 'object' && v !== null && (v as { kind?: unknown }).kind === 'List' && Array.isArray((v as { items?: unknown }).items);
}
