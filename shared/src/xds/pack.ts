import { decodeAny, encodeAny } from './protos';
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

/**
 * The reverse of encodeResource's nesting, for display (/config_dump): a decoded message whose
 * embedded Anys (`{type_url, value}`) become objects carrying '@type', as in Envoy's JSON; an
 * Any of a type not in our protos, and any other bytes, become base64 strings.
 */
export function readableMessage(v: unknown): unknown {
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) return Buffer.from(v).toString('base64');
  if (Array.isArray(v)) return v.map(readableMessage);
  if (v === null || typeof v !== 'object') return v;
  const o = v as Record<string, unknown>;
  if (typeof o['type_url'] === 'string' && o['value'] instanceof Uint8Array && Object.keys(o).length === 2) {
    try {
      return { '@type': o['type_url'], ...(readableMessage(decodeAny({ type_url: o['type_url'], value: o['value'] })) as object) };
    } catch {
      return { '@type': o['type_url'], value: Buffer.from(o['value']).toString('base64') };
    }
  }
  const out: Record<string, unknown> = {};
  for (const [k, val] of Object.entries(o)) out[k] = readableMessage(val);
  return out;
}
