import diffObjects from 'microdiff';
import type { RawResource } from '../../../shared/src/config/mesh';
import { resourceKey } from '../../../shared/src/config/types';
import type { Slicer } from '../../../shared/src/slicer';
import type { ResourceChange } from './config-store';

/**
 * Resource-level diff with field-level detail for changed resources. A resource that is the
 * same object on both sides (a merge keeps every untouched document) is unchanged without a
 * look inside; the others are diffed one at a time, yielding between them (`slicer`).
 */
export async function diffResourcesSliced(before: readonly RawResource[], after: readonly RawResource[], slicer: Slicer): Promise<ResourceChange[]> {
  const old = new Map(before.map((r) => [resourceKey(r), r]));
  const now = new Map(after.map((r) => [resourceKey(r), r]));
  const out: ResourceChange[] = [];
  for (const [key, r] of now) {
    const prev = old.get(key);
    if (prev === r) continue;
    if (prev === undefined) { out.push({ key, op: 'added' }); continue; }
    const fields = diffObjects(prev as unknown as Record<string, unknown>, r as unknown as Record<string, unknown>).map((d) => {
      const path = d.path.reduce<string>((acc, k) => (typeof k === 'number' ? `${acc}[${k}]` : acc === '' ? String(k) : `${acc}.${String(k)}`), '');
      if (d.type === 'CREATE') return { path, op: 'added' as const, to: d.value };
      if (d.type === 'REMOVE') return { path, op: 'removed' as const, from: d.oldValue };
      return { path, op: 'changed' as const, from: d.oldValue, to: d.value };
    });
    if (fields.length > 0) out.push({ key, op: 'changed', fields });
    await slicer.point();
  }
  for (const key of old.keys()) if (!now.has(key)) out.push({ key, op: 'removed' });
  return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** Sorts documents by kind then name: the stored, canonical order. */
export function sortResources(docs: RawResource[]): RawResource[] {
  const keys = new Map(docs.map((d) => [d, resourceKey(d)]));
  return docs.sort((a, b) => {
    const ka = keys.get(a)!;
    const kb = keys.get(b)!;
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  });
}
