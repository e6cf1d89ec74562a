import { sayHello } from './greeter';
import type { GreeterClient } from './greeter';

export interface SplitCount { total: number; errors: number; byVersion: Map<string, number>; byBackend: Map<string, number>; lastError?: string }

export function emptyCount(): SplitCount { return { total: 0, errors: 0, byVersion: new Map(), byBackend: new Map() }; }

function bump(m: Map<string, number>, k: string): void { m.set(k, (m.get(k) ?? 0) + 1); }

/** Sends `n` unary calls, `concurrency` at a time, spread over the clients; counts who answered. */
export async function sendAndCount(clients: readonly GreeterClient[], n: number, concurrency = 8, into: SplitCount = emptyCount()): Promise<SplitCount> {
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      try {
        const r = await sayHello(clients[i % clients.length]!, `call-${i}`);
        into.total++;
        bump(into.byVersion, r.version);
        bump(into.byBackend, r.backend);
      } catch (e) {
        into.total++;
        into.errors++;
        into.lastError = (e as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  return into;
}

/** Share of calls per version, in percent (errors excluded). */
export function shares(c: SplitCount): Record<string, number> {
  const ok = c.total - c.errors;
  const out: Record<string, number> = {};
  for (const [v, k] of c.byVersion) out[v] = ok === 0 ? 0 : (100 * k) / ok;
  return out;
}
