import * as grpc from '@grpc/grpc-js';
import type { Clock, TimerHandle } from '../../shared/src/clock';
import type { Logger } from '../../shared/src/log';
import { ENDPOINTS_SERVICE, skeinService } from '../../shared/src/grpc/skein-services';
import type { LeaseRef, RegisterRequest, WireLease } from '../../shared/src/grpc/skein-services';

type Unary<Req> = (req: Req, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: WireLease) => void) => void;
type EndpointsClient = grpc.Client & { Register: Unary<RegisterRequest>; Renew: Unary<LeaseRef>; Deregister: Unary<LeaseRef> };

export interface RegistrationOptions {
  /**
   * host:port of each control plane's TLS port (--xds, in order). Registration uses one at a
   * time, starting with the first; when it cannot be reached it moves to the next (replicas
   * share their leases, so a renewal there keeps the same lease; else it registers again).
   */
  servers: readonly string[];
  /** The workload's mTLS to the control plane: registration is authorized by its identity. */
  credentials: grpc.ChannelCredentials;
  channelOptions?: grpc.ChannelOptions;
  service: string;
  address: string;
  port: number;
  labels: Record<string, string>;
  ttlMs: number;
  node: string;
  clock: Clock;
  log: Logger;
}

/**
 * Registers the local instance with the control plane (skein.registry.v1.Endpoints, over mTLS)
 * and keeps its lease: renews every TTL/3, registers again when the lease is unknown (control
 * plane restarted without it, or it expired), and deregisters on drain. Failures are logged and
 * retried; they never stop the proxy. A refusal (this identity may not register this service)
 * is logged as an error with the reason. A control plane that cannot be reached (UNAVAILABLE,
 * DEADLINE_EXCEEDED) hands the beat to the next one in `servers`, which keeps being used.
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
  private client: EndpointsClient;
  /** Index in `servers` of the control plane in use. */
  private at = 0;

  constructor(private readonly o: RegistrationOptions) {
    if (o.servers.length === 0) throw new Error('Registration: no control plane address');
    this.client = this.connect();
  }

  /** host:port of the control plane registration uses now. */
  get server(): string { return this.o.servers[this.at]!; }

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
    try {
      if (this.id === undefined) return;
      await this.call(this.client.Deregister, { id: this.id });
      this.o.log.info({ lease: this.id }, 'deregistered');
    } catch (e) {
      this.o.log.warn({ err: (e as grpc.ServiceError).details ?? (e as Error).message }, 'could not deregister; the lease will expire on its own');
    } finally {
      this.client.close();
    }
  }

  private connect(): EndpointsClient {
    const Ctor = skeinService(ENDPOINTS_SERVICE);
    return new Ctor(this.server, this.o.credentials, { ...this.o.channelOptions }) as unknown as EndpointsClient;
  }

  private call<Req>(method: Unary<Req>, req: Req): Promise<WireLease> {
    return new Promise((resolve, reject) => {
      method.call(this.client, req, new grpc.Metadata(), { deadline: Date.now() + 2000 }, (err, res) => (err ? reject(err) : resolve(res!)));
    });
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = this.o.clock.setTimer(Math.max(200, Math.floor(this.o.ttlMs / 3)), () => { void this.beat().finally(() => this.schedule()); });
  }

  /** One renewal (or registration), moving on to the next control plane while one cannot be reached. */
  private async beat(): Promise<void> {
    for (let tried = 1; ; tried++) {
      const client = this.client;
      const err = await this.attempt();
      if (err === undefined || this.stopped || tried >= this.o.servers.length || !unreachable(err)) return;
      if (client !== this.client) continue; // a concurrent beat (setHealth) moved on already
      const from = this.server;
      this.client.close();
      this.at = (this.at + 1) % this.o.servers.length;
      this.client = this.connect();
      this.o.log.info({ from, to: this.server, err: err.details ?? err.message }, 'control plane unreachable; registration moves to the next');
    }
  }

  /** Resolves with the error when it failed (logged here). */
  private async attempt(): Promise<grpc.ServiceError | undefined> {
    try {
      if (this.id !== undefined && this.registeredHealth === this.health) {
        try {
          await this.call(this.client.Renew, { id: this.id });
          return undefined;
        } catch (e) {
          if ((e as grpc.ServiceError).code !== grpc.status.NOT_FOUND) throw e;
        }
      }
      const sent = this.health;
      const lease = await this.call(this.client.Register, {
        service: this.o.service, address: this.o.address, port: this.o.port, labels: this.o.labels,
        ttl: { seconds: String(Math.floor(this.o.ttlMs / 1000)), nanos: (this.o.ttlMs % 1000) * 1e6 }, node: this.o.node, health: sent,
      });
      if (this.registeredHealth !== undefined && this.registeredHealth !== sent) this.o.log.info({ lease: lease.id, health: sent }, 'reported the app health to the control plane');
      this.registeredHealth = sent;
      if (this.id !== lease.id) this.o.log.info({ lease: lease.id, service: this.o.service, address: `${this.o.address}:${this.o.port}` }, 'registered');
      this.id = lease.id;
      return undefined;
    } catch (e) {
      const err = e as grpc.ServiceError;
      const denied = err.code === grpc.status.PERMISSION_DENIED || err.code === grpc.status.UNAUTHENTICATED || err.code === grpc.status.INVALID_ARGUMENT;
      if (denied) this.o.log.error({ reason: err.details, service: this.o.service }, 'the control plane refused to register this instance; retrying');
      else this.o.log.warn({ err: err.details ?? err.message, server: this.server }, 'registration failed; retrying');
      return err;
    }
  }
}

function unreachable(err: grpc.ServiceError): boolean {
  return err.code === grpc.status.UNAVAILABLE || err.code === grpc.status.DEADLINE_EXCEEDED;
}
