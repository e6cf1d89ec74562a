/**
 * Virtual host selection by authority, as Envoy's RouteMatcher::findVirtualHost:
 *   1. exact domain;
 *   2. the longest suffix wildcard (`*.foo.com`, `*-bar.foo.com`), which must match at least
 *      one character (`*.foo.com` does not match `.foo.com`);
 *   3. the longest prefix wildcard (`foo.*`), same rule;
 *   4. `*`.
 * Domains and the authority are compared case-insensitively (both lower-cased). A `*` other than
 * first or last is an ordinary character. A domain may appear once in the whole configuration.
 *
 * Ports: Envoy matches the authority as sent, port included (domains list `svc` and `svc:8080`),
 * and strips the port only when ignore_port_in_host_matching is set. We keep that, plus one
 * leniency: when steps 1-3 find nothing for `host:port`, they are tried again for `host` before
 * falling back to `*`. (The port is only stripped when it is all digits; `[::1]` keeps its colons.)
 *
 * Lookups are memoized per exact authority string (bounded; cleared when full), so the request
 * path does no lower-casing, slicing or wildcard scanning for authorities seen before.
 */
import { at } from '../../../shared/src/xds/fields';
import type { Issues } from '../../../shared/src/xds/issues';

const CACHE_LIMIT = 1024;

interface Wildcard<T> { readonly part: string; readonly value: T }

export class DomainIndex<T> {
  private readonly exact = new Map<string, T>();
  /** Longest first. `part` is the domain without its '*'. */
  private readonly suffixes: Wildcard<T>[] = [];
  private readonly prefixes: Wildcard<T>[] = [];
  private any: T | undefined;
  private readonly cache = new Map<string, T | null>();
  private readonly seen = new Map<string, string>();

  constructor(private readonly ignorePort: boolean) {}

  /** Build time only. `path` names the domains list; a bad or duplicate domain adds an issue and is left out. */
  add(domains: readonly unknown[], value: T, path: string, issues: Issues): void {
    domains.forEach((raw, i) => {
      const p = at(path, i);
      if (typeof raw !== 'string' || raw === '') { issues.add(p, 'must be a non-empty string'); return; }
      const d = raw.toLowerCase();
      const first = this.seen.get(d);
      if (first !== undefined) { issues.add(p, `duplicate domain ${JSON.stringify(raw)} (also at ${first}); a domain may select one virtual host only`); return; }
      this.seen.set(d, p);
      if (d === '*') this.any = value;
      else if (d.startsWith('*')) this.suffixes.push({ part: d.slice(1), value });
      else if (d.endsWith('*')) this.prefixes.push({ part: d.slice(0, -1), value });
      else this.exact.set(d, value);
    });
    this.suffixes.sort((a, b) => b.part.length - a.part.length);
    this.prefixes.sort((a, b) => b.part.length - a.part.length);
  }

  /** A copy whose values are `fn(value)` (each distinct value mapped once); build time only. */
  map<U>(fn: (value: T) => U): DomainIndex<U> {
    const memo = new Map<T, U>();
    const f = (v: T): U => { let u = memo.get(v); if (u === undefined) { u = fn(v); memo.set(v, u); } return u; };
    const out = new DomainIndex<U>(this.ignorePort);
    for (const [d, v] of this.exact) out.exact.set(d, f(v));
    for (const w of this.suffixes) out.suffixes.push({ part: w.part, value: f(w.value) });
    for (const w of this.prefixes) out.prefixes.push({ part: w.part, value: f(w.value) });
    if (this.any !== undefined) out.any = f(this.any);
    for (const [d, p] of this.seen) out.seen.set(d, p);
    return out;
  }

  /** Calls `fn` once per distinct value; build time only. */
  forEachValue(fn: (value: T) => void): void {
    const seen = new Set<T>();
    const visit = (v: T): void => { if (!seen.has(v)) { seen.add(v); fn(v); } };
    for (const v of this.exact.values()) visit(v);
    for (const w of this.suffixes) visit(w.value);
    for (const w of this.prefixes) visit(w.value);
    if (this.any !== undefined) visit(this.any);
  }

  find(authority: string): T | undefined {
    const hit = this.cache.get(authority);
    if (hit !== undefined) return hit ?? undefined;
    const found = this.lookup(authority);
    if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
    this.cache.set(authority, found ?? null);
    return found;
  }

  private lookup(authority: string): T | undefined {
    const host = authority.toLowerCase();
    const bare = stripPort(host);
    if (this.ignorePort) return this.specific(bare) ?? this.any;
    return this.specific(host) ?? (bare === host ? undefined : this.specific(bare)) ?? this.any;
  }

  private specific(host: string): T | undefined {
    const exact = this.exact.get(host);
    if (exact !== undefined) return exact;
    for (const w of this.suffixes) if (w.part.length < host.length && host.endsWith(w.part)) return w.value;
    for (const w of this.prefixes) if (w.part.length < host.length && host.startsWith(w.part)) return w.value;
    return undefined;
  }
}

/** `host:port` -> `host`; anything else unchanged. */
export function stripPort(host: string): string {
  const colon = host.lastIndexOf(':');
  if (colon < 0 || colon === host.length - 1 || host.indexOf(']', colon) >= 0) return host;
  for (let i = colon + 1; i < host.length; i++) {
    const c = host.charCodeAt(i);
    if (c < 48 || c > 57) return host;
  }
  return host.slice(0, colon);
}
