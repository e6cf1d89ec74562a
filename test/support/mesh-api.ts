import { call } from './skein';
import type { ProxyStatus } from '../../control-plane/src/discovery/proxy-status';
import type { GreeterBackend } from '../../shared/src/sample-app/greeter';

/** An SRE API call that throws with the API's error body on a non-2xx answer. */
export async function api<T = unknown>(base: string, method: string, path: string, body?: unknown): Promise<T> {
  const r = await call(base, method, path, body === undefined ? {} : { body });
  if (r.status < 200 || r.status > 299) throw new Error(`${method} ${path}: HTTP ${r.status}: ${JSON.stringify(r.body)}`);
  return r.body as T;
}

export async function proxy(base: string, nodeId: string): Promise<ProxyStatus | undefined> {
  const { proxies } = await api<{ proxies: ProxyStatus[] }>(base, 'GET', '/v1/proxies');
  return proxies.find((p) => p.nodeId === nodeId);
}

/**
 * Keeps a backend registered through the API, as an operator would (with the admin token): renews its lease, and registers again when
 * the control plane no longer knows the lease (after a restart, or after the lease expired).
 */
export class Heartbeat {
  private id: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private base: string;

  constructor(base: string, private readonly b: GreeterBackend, private readonly ttl = '3s', private readonly everyMs = 500) { this.base = base; }

  async start(): Promise<this> {
    await this.beat();
    this.timer = setInterval(() => { void this.beat().catch(() => undefined); }, this.everyMs);
    return this;
  }

  retarget(base: string): void { this.base = base; }

  stop(): void { clearInterval(this.timer); }

  private async beat(): Promise<void> {
    if (this.id !== undefined) {
      const res = await call(this.base, 'PUT', `/v1/endpoints/${this.id}`);
      if (res.status === 200) return;
    }
    const lease = await api<{ id: string }>(this.base, 'POST', '/v1/endpoints', { service: 'greeter', address: this.b.address, port: this.b.port, labels: { version: this.b.version }, ttl: this.ttl, node: this.b.backend });
    this.id = lease.id;
  }
}
