import type { Clock, TimerHandle } from '../../shared/src/clock';
import type { Logger } from '../../shared/src/log';

/**
 * Registers the local instance with the control plane and keeps its lease: renews every TTL/3,
 * registers again when the lease is unknown (control plane restarted without it, or it expired),
 * and deregisters on drain. Failures are logged and retried; they never stop the proxy.
 */
export class Registration {
  private id: string | undefined;
  private timer: TimerHandle | undefined;
  private stopped = false;

  constructor(private readonly o: { api: string; service: string; address: string; port: number; labels: Record<string, string>; ttlMs: number; node: string; clock: Clock; log: Logger }) {}

  async start(): Promise<void> {
    await this.beat();
    this.schedule();
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
      if (this.id !== undefined) {
        const res = await fetch(new URL(`/v1/endpoints/${this.id}`, this.o.api), { method: 'PUT', signal: AbortSignal.timeout(2000) });
        await res.arrayBuffer();
        if (res.ok) return;
      }
      const res = await fetch(new URL('/v1/endpoints', this.o.api), {
        method: 'POST', headers: { 'content-type': 'application/json' }, signal: AbortSignal.timeout(2000),
        body: JSON.stringify({ service: this.o.service, address: this.o.address, port: this.o.port, labels: this.o.labels, ttl: `${this.o.ttlMs}ms`, node: this.o.node }),
      });
      const body = (await res.json()) as { id?: string; error?: { message?: string } };
      if (!res.ok || body.id === undefined) throw new Error(body.error?.message ?? `HTTP ${res.status}`);
      if (this.id !== body.id) this.o.log.info({ lease: body.id, service: this.o.service, address: `${this.o.address}:${this.o.port}` }, 'registered');
      this.id = body.id;
    } catch (e) {
      this.o.log.warn({ err: (e as Error).message, api: this.o.api }, 'registration failed; retrying');
    }
  }
}
