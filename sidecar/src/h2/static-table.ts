/**
 * The HPACK static table (RFC 7541 Appendix A), one source of truth for the HPACK codec and the
 * listener's field checker. Index 1..61; index 0 is unused.
 */

export const STATIC_COUNT = 61;

/** Names by index (STATIC_NAMES[0] is ''). */
export const STATIC_NAMES: readonly string[] = ['',
  ':authority', ':method', ':method', ':path', ':path', ':scheme', ':scheme', ':status', ':status', ':status', ':status', ':status', ':status', ':status',
  'accept-charset', 'accept-encoding', 'accept-language', 'accept-ranges', 'accept', 'access-control-allow-origin', 'age', 'allow', 'authorization',
  'cache-control', 'content-disposition', 'content-encoding', 'content-language', 'content-length', 'content-location', 'content-range', 'content-type',
  'cookie', 'date', 'etag', 'expect', 'expires', 'from', 'host', 'if-match', 'if-modified-since', 'if-none-match', 'if-range', 'if-unmodified-since',
  'last-modified', 'link', 'location', 'max-forwards', 'proxy-authenticate', 'proxy-authorization', 'range', 'referer', 'refresh', 'retry-after',
  'server', 'set-cookie', 'strict-transport-security', 'transfer-encoding', 'user-agent', 'vary', 'via', 'www-authenticate',
];

/** Values by index: '' but for the 15 entries that have one. */
export const STATIC_VALUES: readonly string[] = (() => {
  const v: string[] = new Array<string>(STATIC_COUNT + 1).fill('');
  const set: [number, string][] = [
    [2, 'GET'], [3, 'POST'], [4, '/'], [5, '/index.html'], [6, 'http'], [7, 'https'],
    [8, '200'], [9, '204'], [10, '206'], [11, '304'], [12, '400'], [13, '404'], [14, '500'],
    [16, 'gzip, deflate'],
  ];
  for (const [i, value] of set) v[i] = value;
  return v;
})();

/** Per name: its first index, and its indexes by value (names with a value in the table). */
const BY_NAME = new Map<string, { first: number; values: Map<string, number> }>();
for (let i = 1; i <= STATIC_COUNT; i++) {
  const name = STATIC_NAMES[i]!;
  let e = BY_NAME.get(name);
  if (e === undefined) { e = { first: i, values: new Map() }; BY_NAME.set(name, e); }
  if (!e.values.has(STATIC_VALUES[i]!)) e.values.set(STATIC_VALUES[i]!, i);
}

/**
 * Looks a field up in the static table without allocating: the index of an entry with this name
 * and value (> 0), else minus the index of the first entry with this name (< 0), else 0.
 */
export function staticFind(name: string, value: string): number {
  const e = BY_NAME.get(name);
  if (e === undefined) return 0;
  const full = e.values.get(value);
  return full !== undefined ? full : -e.first;
}
