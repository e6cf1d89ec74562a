import type { Clock, TimerHandle } from '../../shared/src/clock';
import type { Logger } from '../../shared/src/log';

/**
 * Registers the local instance with the control plane and keeps its lease: renews every TTL/3,
 * registers again when the lease is unknown (control plane restarted without it, or it expired),
 * and deregisters on drain. Failures are logged and retried; they never stop the proxy.
 * `setHealth` re-registers at once with the new health (the app went down or came back), so
 * the control plane moves the endpoint in or out of rotation without waiting for the lease.
 */
export class Registration {
  private id: string | undefined;
  private timer: TimerHandle | undefined;
  private stopped = false;
  private health: 'HEALTHY' | 'UNHEALTHY' = 'HEALTHY';
  /** The health the control plane last accepted for this lease. */
  private registeredHealth: string | undefined;

  constructor(private readonly o: { api: string; service: string; address: string; port: number; labels: Record<string, string>; ttlMs: number; node: string; clock: Clock; log: Logger }) {}

  async start(): Promise<void> {
    await this.beat();
    this.schedule();
  }

  /** Reports the app's health now; later renewals keep it. */
  setHealth(health: 'HEALTHY' | 'UNHEALTHY'): Promise<void> {
    if (health === this.health) return Promise.resolve();
    this.health = health;
    return this.stopped ? Promise.resolve() : this.beat();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    if (this.id === undefined) return;
    try {
      const res = await fetch(new URL(`/v1/endpoints/${this.id}`, this.o.api), { method: 'DELETE', signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      this.o.log.info({ lease: this.id }, 'deregistered');
    } catch (e) {
      this.o.log.warn({ err: (e as Error).message }, 'could not deregister; the lease will expire on its own');
    }
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = this.o.clock.setTimer(Math.max(200, Math.floor(this.o.ttlMs / 3)), () => { void this.beat().finally(() => this.schedule()); });
  }

  private async beat(): Promise<void> {
    try {
      if (this.id !== undefined && this.registeredHealth === this.health) {
        const res = await fetch(new URL(`/v1/endpoints/${this.id}`, this.o.api), { method: 'PUT', signal: AbortSignal.timeout(2000) });
        await res.arrayBuffer();
        if (res.ok) return;
      }
      const res = await fetch(new URL('/v1/endpoints', this.o.api), {
        method: 'POST', headers: { 'content-type': 'application/json' }, signal: AbortSignal.timeout(2000),
        body: JSON.stringify({ service: this.o.service, address: this.o.address, port: this.o.port, labels: this.o.labels, ttl: `${this.o.ttlMs}ms`, node: this.o.node, health: this.health }),
      });
      const sent = this.health;
      const body = (await res.json()) as { id?: string; error?: { message?: string } };
      if (!res.ok || body.id === undefined) throw new Error(body.error?.message ?? `HTTP ${res.status}`);
      if (this.registeredHealth !== undefined && this.registeredHealth !== sent) this.o.log.info({ lease: body.id, health: sent }, 'reported the app health to the control plane');
      this.registeredHealth = sent;
      if (this.id !== body.id) this.o.log.info({ lease: body.id, service: this.o.service, address: `${this.o.address}:${this.o.port}` }, 'registered');
      this.id = body.id;
    } catch (e) {
      this.o.log.warn({ err: (e as Error).message, api: this.o.api }, 'registration failed; retrying');
    }
  }
}
