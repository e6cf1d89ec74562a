/**
 * The NACKs a candidate config is certain to get from the proxies connected now: for each
 * resource the candidate adds or changes, each connected proxy that would receive it, and each
 * known rejection rule for that proxy's client (client-compat.ts). Used by dry runs.
 */
import { XDS_KINDS } from '../../../shared/src/xds/resource-kind';
import { resourcesOfKind } from '../translate/translate';
import type { XdsResource, XdsResourceSet } from '../translate/translate';
import type { SnapshotCache } from './snapshot-cache';
import { predictRejections } from './client-compat';

export interface NackWarning {
  nodeId: string;
  userAgent: string;
  typeUrl: string;
  resource: string;
  /** The client's error, as its NACK would carry it. */
  message: string;
}

/** A connected proxy, as far as the forecast needs it. */
export interface ForecastTarget {
  readonly nodeId: string;
  userAgent(): string;
  /** Whether the proxy would receive resource `name` of `typeUrl` (wildcard or named). */
  subscribes(typeUrl: string, name: string): boolean;
}

export function forecastNacks(current: SnapshotCache, candidate: XdsResourceSet, proxies: Iterable<ForecastTarget>): NackWarning[] {
  const changed: { typeUrl: string; name: string; json: XdsResource }[] = [];
  for (const kind of XDS_KINDS) {
    const typeUrl = kind.typeUrl;
    for (const json of resourcesOfKind(candidate, kind)) {
      const name = kind.nameOf(json);
      const now = current.get(typeUrl, name);
      if (now === undefined || JSON.stringify(now.json) !== JSON.stringify(json)) changed.push({ typeUrl, name, json });
    }
  }
  const out: NackWarning[] = [];
  if (changed.length === 0) return out;
  for (const p of proxies) {
    const userAgent = p.userAgent();
    for (const c of changed) {
      if (!p.subscribes(c.typeUrl, c.name)) continue;
      for (const message of predictRejections(userAgent, c.typeUrl, c.json)) out.push({ nodeId: p.nodeId, userAgent, typeUrl: c.typeUrl, resource: c.name, message });
    }
  }
  return out;
}
