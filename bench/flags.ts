/** The benches' command-line flags: `--name=value` (a value may hold '='), `--name` alone is ''. */
export function flagMap(argv: readonly string[]): Map<string, string> {
  return new Map(argv.map((a) => { const [k, ...v] = a.replace(/^--/, '').split('='); return [k!, v.join('=')] as [string, string]; }));
}

/**
 * A numeric flag: its value, or `def` when absent. Throws an Error naming the flag when the value
 * is not a number (an integer with `integer`) of at least `min`.
 */
export function numberFlag(flags: ReadonlyMap<string, string>, name: string, def: number, min: number, integer = false): number {
  const raw = flags.get(name);
  if (raw === undefined) return def;
  const n = Number(raw);
  if (raw === '' || !(integer ? Number.isInteger(n) : Number.isFinite(n)) || n < min) throw new Error(`--${name}: must be ${integer ? 'an integer' : 'a number'} >= ${min}, got "${raw}"`);
  return n;
}

/** A flag holding a space-separated list (Node flags, say): its items, or `def`'s. */
export function listFlag(flags: ReadonlyMap<string, string>, name: string, def = ''): string[] {
  return (flags.get(name) ?? def).split(/\s+/).filter((f) => f !== '');
}
