/**
 * Header mutations from routes, virtual hosts and the RouteConfiguration
 * (request/response_headers_to_add, *_headers_to_remove), parsed once and applied per request.
 *
 * Parsing follows Envoy's HeaderParser:
 * - keys are lower-cased; pseudo-headers (`:path`...) and `host` may be neither added nor removed;
 * - append_action defaults to APPEND_IF_EXISTS_OR_ADD; the deprecated `append` BoolValue is
 *   accepted (true: append, false: overwrite) but not together with append_action;
 * - an empty value is dropped unless keep_empty_value (Envoy adds nothing for it);
 * - `%` starts a substitution command in Envoy (`%REQ(x)%`...), which we do not implement:
 *   a lone `%` is rejected and `%%` means a literal `%`.
 */
import { at, bool, bytes, checkFields, fieldSpec, has, list, message, optMessage, str, wrappedBool } from '../../../shared/src/xds/fields';
import type { XdsMessage } from '../../../shared/src/xds/fields';
import type { Issues } from '../../../shared/src/xds/issues';

export type HeaderAppendAction = 'APPEND_IF_EXISTS_OR_ADD' | 'ADD_IF_ABSENT' | 'OVERWRITE_IF_EXISTS_OR_ADD' | 'OVERWRITE_IF_EXISTS';
const ACTIONS: readonly string[] = ['APPEND_IF_EXISTS_OR_ADD', 'ADD_IF_ABSENT', 'OVERWRITE_IF_EXISTS_OR_ADD', 'OVERWRITE_IF_EXISTS'];

export interface HeaderToAdd {
  readonly key: string;
  readonly value: string;
  /** action === APPEND_IF_EXISTS_OR_ADD: add another value rather than replace. */
  readonly append: boolean;
  readonly action: HeaderAppendAction;
}

/** What a request or response carries out: Node's OutgoingHttpHeaders shape, lower-case names. */
export type HeaderBag = { [name: string]: string | string[] | number | undefined };

/**
 * Removals first, then additions in order (Envoy also removes before it adds within one level;
 * across levels we keep the flat order: route, virtual host, route configuration).
 * An appended value becomes an extra value of the header (an array), as Envoy adds an entry.
 */
export function applyHeaderOps(headers: HeaderBag, add: readonly HeaderToAdd[], remove: readonly string[]): void {
  for (let i = 0; i < remove.length; i++) if (headers[remove[i]] !== undefined) delete headers[remove[i]];
  for (let i = 0; i < add.length; i++) {
    const h = add[i];
    const cur = headers[h.key];
    switch (h.action) {
      case 'APPEND_IF_EXISTS_OR_ADD':
        headers[h.key] = cur === undefined ? h.value : Array.isArray(cur) ? [...cur, h.value] : [String(cur), h.value];
        break;
      case 'ADD_IF_ABSENT':
        if (cur === undefined) headers[h.key] = h.value;
        break;
      case 'OVERWRITE_IF_EXISTS_OR_ADD':
        headers[h.key] = h.value;
        break;
      case 'OVERWRITE_IF_EXISTS':
        if (cur !== undefined) headers[h.key] = h.value;
        break;
    }
  }
}

const HEADER_VALUE_OPTION = fieldSpec(['header', 'append_action', 'keep_empty_value', 'append']);
const HEADER_VALUE = fieldSpec(['key', 'value', 'raw_value']);
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;

/** A repeated HeaderValueOption field of `o` (absent: none); an entry with a problem adds an issue and is left out. */
export function parseHeadersToAdd(o: XdsMessage, key: string, path: string, issues: Issues): HeaderToAdd[] {
  const out: HeaderToAdd[] = [];
  list(o, key, path, issues).forEach((raw, i) => {
    const h = parseHeaderValueOption(raw, at(at(path, key), i), issues);
    if (h) out.push(h);
  });
  return out;
}

/** One HeaderValueOption; null when it adds nothing (an empty value without keep_empty_value, as in Envoy); undefined when it added an issue. */
function parseHeaderValueOption(raw: unknown, path: string, issues: Issues): HeaderToAdd | null | undefined {
  const o = message(raw, path, issues);
  if (o === undefined) return undefined;
  const before = issues.count;
  checkFields(o, HEADER_VALUE_OPTION, path, issues);
  const hp = at(path, 'header');
  const header = optMessage(o, 'header', path, issues);
  if (header === undefined) {
    if (!has(o, 'header')) issues.add(hp, 'is required');
    return undefined;
  }
  checkFields(header, HEADER_VALUE, hp, issues);
  const read = issues.count;
  const key = str(header, 'key', hp, issues);
  const name = issues.count === read ? headerName(key, at(hp, 'key'), issues) : undefined;
  const rawValue = bytes(header, 'raw_value', hp, issues);
  let value: string | undefined = str(header, 'value', hp, issues);
  if (rawValue !== undefined && rawValue.length > 0) {
    if (value !== '') issues.add(hp, 'only one of value and raw_value may be set');
    else value = Buffer.from(rawValue.buffer, rawValue.byteOffset, rawValue.byteLength).toString('latin1');
  }
  value = literalValue(value, at(hp, 'value'), issues);
  const legacyAppend = wrappedBool(o, 'append', path, issues);
  let action = (o['append_action'] ?? 'APPEND_IF_EXISTS_OR_ADD') as string;
  if (!ACTIONS.includes(action)) issues.add(at(path, 'append_action'), `unknown value ${JSON.stringify(action)}`);
  if (legacyAppend !== undefined) {
    if (o['append_action'] !== undefined && action !== 'APPEND_IF_EXISTS_OR_ADD') issues.add(path, 'only one of append and append_action may be set');
    action = legacyAppend ? 'APPEND_IF_EXISTS_OR_ADD' : 'OVERWRITE_IF_EXISTS_OR_ADD';
  }
  const keepEmpty = bool(o, 'keep_empty_value', path, issues);
  if (issues.count !== before || name === undefined || value === undefined) return undefined;
  if (value === '' && !keepEmpty) return null;
  return Object.freeze({ key: name, value, append: action === 'APPEND_IF_EXISTS_OR_ADD', action: action as HeaderAppendAction });
}

/** A repeated string field of header names to remove (absent: none); a bad name adds an issue and is left out. */
export function parseHeadersToRemove(o: XdsMessage, key: string, path: string, issues: Issues): string[] {
  const out: string[] = [];
  list(o, key, path, issues).forEach((raw, i) => {
    const p = at(at(path, key), i);
    if (typeof raw !== 'string') { issues.add(p, 'must be a string'); return; }
    const name = headerName(raw, p, issues);
    if (name !== undefined) out.push(name);
  });
  return out;
}

function headerName(raw: string, path: string, issues: Issues): string | undefined {
  const name = raw.toLowerCase();
  if (name === '') issues.add(path, 'must not be empty');
  else if (name.startsWith(':') || name === 'host') issues.add(path, `${JSON.stringify(raw)}: pseudo-headers and host may not be modified`);
  else if (!TOKEN.test(name)) issues.add(path, `${JSON.stringify(raw)} is not a valid header name`);
  else return name;
  return undefined;
}

function literalValue(v: string, path: string, issues: Issues): string | undefined {
  if (/[\r\n\0]/.test(v)) { issues.add(path, 'must not contain CR, LF or NUL'); return undefined; }
  if (!v.includes('%')) return v;
  if (v.replace(/%%/g, '').includes('%')) { issues.add(path, `${JSON.stringify(v)}: substitution formatters (%...%) are not supported; write %% for a literal %`); return undefined; }
  return v.replace(/%%/g, '%');
}
