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
import { at, bool, checkFields, fail, fieldSpec, list, message, optMessage, str, wrappedBool } from './xds-fields';
import type { XdsMessage } from './xds-fields';

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

/** A repeated HeaderValueOption field of `o` (absent: none). */
export function parseHeadersToAdd(o: XdsMessage, key: string, path: string): HeaderToAdd[] {
  const out: HeaderToAdd[] = [];
  list(o, key, path).forEach((raw, i) => {
    const h = parseHeaderValueOption(raw, at(at(path, key), i));
    if (h !== undefined) out.push(h);
  });
  return out;
}

function parseHeaderValueOption(raw: unknown, path: string): HeaderToAdd | undefined {
  const o = message(raw, path);
  checkFields(o, HEADER_VALUE_OPTION, path);
  const header = optMessage(o, 'header', path);
  if (header === undefined) fail(at(path, 'header'), 'is required');
  const hp = at(path, 'header');
  checkFields(header, HEADER_VALUE, hp);
  const name = headerName(str(header, 'key', hp), at(hp, 'key'));
  const rawValue = header['raw_value'];
  let value = str(header, 'value', hp);
  if (rawValue instanceof Uint8Array && rawValue.length > 0) {
    if (value !== '') fail(hp, 'only one of value and raw_value may be set');
    value = Buffer.from(rawValue.buffer, rawValue.byteOffset, rawValue.byteLength).toString('latin1');
  }
  value = literalValue(value, at(hp, 'value'));
  const legacyAppend = wrappedBool(o, 'append', path);
  let action = (o['append_action'] ?? 'APPEND_IF_EXISTS_OR_ADD') as string;
  if (!ACTIONS.includes(action)) fail(at(path, 'append_action'), `unknown value ${JSON.stringify(action)}`);
  if (legacyAppend !== undefined) {
    if (o['append_action'] !== undefined && action !== 'APPEND_IF_EXISTS_OR_ADD') fail(path, 'only one of append and append_action may be set');
    action = legacyAppend ? 'APPEND_IF_EXISTS_OR_ADD' : 'OVERWRITE_IF_EXISTS_OR_ADD';
  }
  if (value === '' && !bool(o, 'keep_empty_value', path)) return undefined;
  return Object.freeze({ key: name, value, append: action === 'APPEND_IF_EXISTS_OR_ADD', action: action as HeaderAppendAction });
}

/** A repeated string field of header names to remove (absent: none). */
export function parseHeadersToRemove(o: XdsMessage, key: string, path: string): string[] {
  return list(o, key, path).map((raw, i) => {
    const p = at(at(path, key), i);
    if (typeof raw !== 'string') fail(p, 'must be a string');
    return headerName(raw, p);
  });
}

function headerName(raw: string, path: string): string {
  const name = raw.toLowerCase();
  if (name === '') fail(path, 'must not be empty');
  if (name.startsWith(':') || name === 'host') fail(path, `${JSON.stringify(raw)}: pseudo-headers and host may not be modified`);
  if (!TOKEN.test(name)) fail(path, `${JSON.stringify(raw)} is not a valid header name`);
  return name;
}

function literalValue(v: string, path: string): string {
  if (/[\r\n\0]/.test(v)) fail(path, 'must not contain CR, LF or NUL');
  if (!v.includes('%')) return v;
  if (v.replace(/%%/g, '').includes('%')) fail(path, `${JSON.stringify(v)}: substitution formatters (%...%) are not supported; write %% for a literal %`);
  return v.replace(/%%/g, '%');
}
