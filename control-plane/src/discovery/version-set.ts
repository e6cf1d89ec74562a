/**
 * The version of a set of (name, version) pairs: the XOR of a 64-bit hash of each pair, as 16
 * hex digits. It does not depend on order, and a set that changes pair by pair keeps it up to
 * date at the cost of the pairs that changed (VersionSet), where hashing the sorted set again
 * would cost the whole set on every response and every ACK.
 *
 * The pair hash is a fast non-cryptographic one (two multiply-xorshift lanes, as in the public
 * domain cyrb53, widened to 64 bits), computed without allocating: thousands of proxies ACK
 * under churn. It guards against accidents, not adversaries: the resource versions it combines
 * are content hashes of what the control plane encoded, and a client's own claims
 * (initial_resource_versions) only ever reach that client's status.
 * This is the version_info of a state-of-the-world response and the system_version_info of a
 * delta stream holding the same resources, so both protocols show one version.
 */
export function setVersion(pairs: Iterable<readonly [string, string]>): string {
  const acc = new Acc();
  for (const [name, version] of pairs) acc.flip(name, version);
  return acc.hex();
}

/** A resource as versions see it. */
export interface Versioned { readonly name: string; readonly version: string }

/** setVersion of resources' (name, version) pairs. */
export function resourcesVersion(resources: readonly Versioned[]): string {
  const acc = new Acc();
  for (const r of resources) acc.flip(r.name, r.version);
  return acc.hex();
}

/** A 64-bit accumulator of pair hashes, as two 32-bit halves. */
class Acc {
  hi = 0;
  lo = 0;

  /** XORs in (or out: XOR is its own inverse) the hash of the pair (name, version). */
  flip(name: string, version: string): void {
    let h1 = 0xdeadbeef;
    let h2 = 0x41c6ce57;
    for (let i = 0; i < name.length; i++) {
      const c = name.charCodeAt(i);
      h1 = Math.imul(h1 ^ c, 2654435761);
      h2 = Math.imul(h2 ^ c, 1597334677);
    }
    // A separator no name contains (names and versions are validated text): ('ab', 'c') is not ('a', 'bc').
    h1 = Math.imul(h1 ^ 0xffff, 2654435761);
    h2 = Math.imul(h2 ^ 0xffff, 1597334677);
    for (let i = 0; i < version.length; i++) {
      const c = version.charCodeAt(i);
      h1 = Math.imul(h1 ^ c, 2654435761);
      h2 = Math.imul(h2 ^ c, 1597334677);
    }
    h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
    h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
    this.hi = (this.hi ^ h1) >>> 0;
    this.lo = (this.lo ^ h2) >>> 0;
  }

  hex(): string { return this.hi.toString(16).padStart(8, '0') + this.lo.toString(16).padStart(8, '0'); }
}

/** A map of name → version that knows its setVersion, updated per pair. */
export class VersionSet {
  private readonly pairs = new Map<string, string>();
  private readonly acc = new Acc();

  get size(): number { return this.pairs.size; }
  get(name: string): string | undefined { return this.pairs.get(name); }
  has(name: string): boolean { return this.pairs.has(name); }
  keys(): IterableIterator<string> { return this.pairs.keys(); }

  set(name: string, version: string): void {
    const old = this.pairs.get(name);
    if (old === version) return;
    if (old !== undefined) this.acc.flip(name, old);
    this.pairs.set(name, version);
    this.acc.flip(name, version);
  }

  delete(name: string): void {
    const old = this.pairs.get(name);
    if (old === undefined) return;
    this.pairs.delete(name);
    this.acc.flip(name, old);
  }

  /** setVersion of the pairs held now. */
  version(): string { return this.acc.hex(); }
}
