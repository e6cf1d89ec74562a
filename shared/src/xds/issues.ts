/**
 * The problems found while decoding one xDS resource, each with the field path it is about, e.g.
 * `virtual_hosts[0].routes[2].match: path_specifier is required`. Decoders add every problem they
 * find and carry on (never throw on the first), so one NACK lists them all; the resource is
 * rejected when any was added. toString() is the NACK's error_detail for the resource.
 *
 * A decoder's convention: `(…, path, issues)` in, the value out, or undefined when it added an
 * issue (so a parent never builds on a stand-in, and one problem is reported once, not again as
 * the parent's). decodeOrThrow is the entry for callers outside xDS (tests, built-in configs).
 */
import { ErrorCodes, MeshError } from '../errors';

export interface Issue {
  /** The field path, '' for the resource as a whole. */
  readonly path: string;
  readonly message: string;
}

export class Issues {
  readonly entries: Issue[] = [];
  /** Each issue as `<path>: <message>` (just the message when the path is ''). */
  readonly list: string[] = [];

  /** Records a problem; the same one again (found by two checks, e.g. an unsupported oneof member) is not repeated. */
  add(path: string, message: string): void {
    const text = path === '' ? message : `${path}: ${message}`;
    if (this.list.includes(text)) return;
    this.entries.push({ path, message });
    this.list.push(text);
  }

  get ok(): boolean { return this.list.length === 0; }

  /** How many issues so far: a decoder compares counts to tell whether one part added any. */
  get count(): number { return this.list.length; }

  toString(): string { return this.list.join('; '); }
}

/**
 * Runs a collecting decoder for a caller outside xDS (tests, configs the sidecar builds itself)
 * and returns its value, or throws a MeshError VALIDATION whose message is every issue (as
 * toString(): `<path>: <problem>; ...`) and whose details name `resource`.
 */
export function decodeOrThrow<T>(resource: string, decode: (issues: Issues) => T | undefined): T {
  const issues = new Issues();
  const value = decode(issues);
  if (!issues.ok) {
    throw new MeshError(ErrorCodes.VALIDATION, issues.toString(), { details: issues.entries.map((i) => ({ resource, path: i.path, message: i.message })) });
  }
  if (value === undefined) throw new MeshError(ErrorCodes.INTERNAL, `${resource}: the decoder returned no value and no issue`);
  return value;
}
