/**
 * Readers for Envoy's percentages (envoy.type.v3): FractionalPercent (a numerator over 100, 10 000
 * or 1 000 000) and Percent (a double in [0, 100]), in the style of fields.ts: a reader never
 * throws, adds `<path>: <problem>` to `issues`, and returns undefined when it added one.
 */
import { at, checkFields, fieldSpec, has, optMessage, u32 } from './fields';
import type { XdsMessage } from './fields';
import type { Issues } from './issues';

export const PER_MILLION = 1_000_000;
const FRACTIONAL_PERCENT = fieldSpec(['numerator', 'denominator'], [], [], { denominator: 'HUNDRED' });
const PERCENT = fieldSpec(['value']);
const DENOMINATORS: Readonly<Record<string, number>> = { HUNDRED: 100, TEN_THOUSAND: 10_000, MILLION: PER_MILLION };

/** type.v3.FractionalPercent per million; unset is 0 (Envoy's default); above 100% is capped. Undefined when it added an issue. */
export function fractionalPercent(o: XdsMessage, key: string, path: string, issues: Issues): number | undefined {
  const fp = optMessage(o, key, path, issues);
  if (fp === undefined) return has(o, key) ? undefined : 0;
  const p = at(path, key);
  const before = issues.count;
  checkFields(fp, FRACTIONAL_PERCENT, p, issues);
  const denominator = fp['denominator'] ?? 'HUNDRED';
  const base = typeof denominator === 'string' ? DENOMINATORS[denominator] : undefined;
  if (base === undefined) issues.add(at(p, 'denominator'), `must be HUNDRED, TEN_THOUSAND or MILLION, got ${String(denominator)}`);
  const n = u32(fp['numerator'] ?? 0, at(p, 'numerator'), issues);
  if (base === undefined || n === undefined || issues.count !== before) return undefined;
  return Math.min(PER_MILLION, n * (PER_MILLION / base));
}

/** type.v3.Percent as a ratio in [0, 1]: `absent` when unset, undefined (with an issue) outside [0, 100]. */
export function percentRatio(o: XdsMessage, key: string, absent: number, path: string, issues: Issues): number | undefined {
  const m = optMessage(o, key, path, issues);
  if (m === undefined) return has(o, key) ? undefined : absent;
  const p = at(path, key);
  const before = issues.count;
  checkFields(m, PERCENT, p, issues);
  const v = m['value'] ?? 0;
  if (typeof v !== 'number' || !(v >= 0 && v <= 100)) issues.add(at(p, 'value'), `must be a number in [0, 100], got ${JSON.stringify(v)}`);
  return issues.count !== before ? undefined : (v as number) / 100;
}
