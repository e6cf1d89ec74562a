import { encodeAny } from './protos';
import type { PackedAny } from './protos';

/**
 * Encodes a resource written in Envoy's JSON shape, where embedded Any messages are objects
 * carrying '@type'. Inner Anys are packed first, each checked as strictly as the outer message
 * (unknown fields and enum names are errors, never silently dropped).
 */
export function encodeResource(typeUrl: string, obj: object): PackedAny {
  return encodeAny(typeUrl, packNested(obj) as object);
}

function packNested(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(packNested);
  if (v === null || typeof v !== 'object' || ArrayBuffer.isView(v)) return v;
  const out: Record<string, unknown> = {};
  for (const [k, val] of Object.entries(v)) out[k] = packNested(val);
  const type = out['@type'];
  if (typeof type !== 'string') return out;
  delete out['@type'];
  return encodeAny(type, out);
}
