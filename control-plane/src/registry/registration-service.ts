/**
 * skein.registry.v1.Endpoints (proto/skein/registry/v1/endpoints.proto) on the control plane's
 * TLS xDS port: sidecars register, renew and deregister their own instance here.
 *
 * Authorization is by the caller's workload certificate: it may touch endpoints only of a
 * service whose service account is its own (the Service's spec.serviceAccount, else the
 * service's name). A process that reaches the port without such a certificate can register
 * nothing, so it can no longer pull another service's traffic to itself.
 */
import * as grpc from '@grpc/grpc-js';
import { ErrorCodes, MeshError } from '../../../shared/src/errors';
import type { Logger } from '../../../shared/src/log';
import { spiffeId } from '../../../shared/src/identity/spiffe';
import type { WorkloadIdentity } from '../../../shared/src/identity/spiffe';
import { callerIdentity, durationMs, ENDPOINTS_SERVICE, grpcError, skeinService } from '../../../shared/src/grpc/skein-services';
import type { LeaseRef, RegisterRequest, WireLease } from '../../../shared/src/grpc/skein-services';
import type { EndpointRegistry, Lease } from './endpoint-registry';

export class RegistrationService {
  constructor(private readonly o: {
    registry: EndpointRegistry;
    trustDomain: string;
    /** The service account allowed to register endpoints of `service`. */
    serviceAccountOf: (service: string) => string;
    log: Logger;
  }) {}

  register(server: grpc.Server): void {
    server.addService(skeinService(ENDPOINTS_SERVICE).service, {
      Register: (call: grpc.ServerUnaryCall<RegisterRequest, WireLease>, cb: grpc.sendUnaryData<WireLease>) => this.answer(call, cb, 'register', (who) => {
        const r = call.request;
        const ttlMs = durationMs(r.ttl, 'ttl');
        const body = {
          service: r.service ?? '', address: r.address ?? '', port: r.port ?? 0, labels: r.labels ?? {},
          ...(r.zone ? { zone: r.zone } : {}), ...(r.weight ? { weight: r.weight } : {}),
          health: r.health === undefined || r.health === 'HEALTH_UNSPECIFIED' ? 'HEALTHY' : r.health,
          ...(ttlMs === undefined ? {} : { ttl: `${ttlMs}ms` }), ...(r.node ? { node: r.node } : {}),
        };
        // Authorized before validation: a caller learns nothing about a service it may not register.
        this.authorize(who, body.service);
        return this.o.registry.register(body, spiffeId(who));
      }),
      Renew: (call: grpc.ServerUnaryCall<LeaseRef, WireLease>, cb: grpc.sendUnaryData<WireLease>) => this.answer(call, cb, 'renew', (who) => {
        const lease = this.o.registry.get(call.request.id ?? '');
        this.authorize(who, lease.service);
        return this.o.registry.renew(lease.id);
      }),
      Deregister: (call: grpc.ServerUnaryCall<LeaseRef, WireLease>, cb: grpc.sendUnaryData<WireLease>) => this.answer(call, cb, 'deregister', (who) => {
        const lease = this.o.registry.get(call.request.id ?? '');
        this.authorize(who, lease.service);
        this.o.registry.deregister(lease.id);
        return lease;
      }),
    });
  }

  private answer<Req>(call: grpc.ServerUnaryCall<Req, WireLease>, cb: grpc.sendUnaryData<WireLease>, what: string, fn: (who: WorkloadIdentity) => Lease): void {
    try {
      const who = callerIdentity(call, this.o.trustDomain);
      if (who === undefined) throw new MeshError(ErrorCodes.UNAUTHENTICATED, 'endpoint registration needs a workload certificate (TLS client certificate); get one with a join token from skein.identity.v1.Certificates/Sign');
      cb(null, wire(fn(who)));
    } catch (e) {
      const err = grpcError(e);
      if (err.code === grpc.status.UNAUTHENTICATED || err.code === grpc.status.PERMISSION_DENIED) this.o.log.warn({ peer: call.getPeer(), reason: err.details }, `endpoint ${what} refused`);
      cb(err);
    }
  }

  private authorize(who: WorkloadIdentity, service: string): void {
    if (typeof service !== 'string' || service === '') throw new MeshError(ErrorCodes.VALIDATION, 'endpoint: service: is required');
    const allowed = this.o.serviceAccountOf(service);
    if (who.serviceAccount !== allowed) {
      throw new MeshError(ErrorCodes.PERMISSION_DENIED, `${spiffeId(who)} may not register endpoints of service ${service}: only service account ${allowed} may (Service ${service} spec.serviceAccount, default the service name)`);
    }
  }
}

function wire(l: Lease): WireLease {
  return { id: l.id, service: l.service, address: l.address, port: l.port, health: l.health, ttl_ms: String(l.ttlMs), expires_at_ms: String(l.expiresAt) };
}
