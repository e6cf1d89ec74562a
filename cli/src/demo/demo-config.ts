import { API_VERSION } from '../../../shared/src/config/types';

/**
 * The demo mesh: one gRPC service with two versions. Callers that send `x-canary: true` always
 * reach v2; everyone else is split by weight (90/10 to start). With `staticV2Port`, one v2
 * instance is declared as a static endpoint (a workload without a sidecar); the others register
 * themselves with a lease.
 */
export function demoConfig(staticV2Port: number | null, weights: { v1: number; v2: number }): unknown[] {
  return [
    {
      apiVersion: API_VERSION, kind: 'Service', metadata: { name: 'greeter' },
      spec: {
        protocol: 'grpc',
        ports: [{ name: 'grpc', port: 50051 }],
        subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }],
        ...(staticV2Port === null ? {} : { endpoints: [{ address: '127.0.0.1', port: staticV2Port, labels: { version: 'v2' } }] }),
      },
    },
    {
      apiVersion: API_VERSION, kind: 'GRPCRoute', metadata: { name: 'greeter' },
      spec: {
        parentRefs: [{ name: 'greeter' }],
        rules: [
          { name: 'canary-header', matches: [{ headers: [{ name: 'x-canary', value: 'true' }] }], backendRefs: [{ name: 'greeter', subset: 'v2' }] },
          {
            name: 'split', matches: [{ method: { service: 'skein.demo.v1.Greeter' } }],
            backendRefs: [{ name: 'greeter', subset: 'v1', weight: weights.v1 }, { name: 'greeter', subset: 'v2', weight: weights.v2 }],
            timeout: '2s',
            retry: { retries: 2, retryOn: ['unavailable'], backoff: { baseInterval: '25ms', maxInterval: '250ms' } },
          },
        ],
      },
    },
    {
      apiVersion: API_VERSION, kind: 'BackendPolicy', metadata: { name: 'greeter' },
      spec: { targetRef: { kind: 'Service', name: 'greeter' }, loadBalancer: { policy: 'round_robin' }, circuitBreaker: { maxRequests: 1000 } },
    },
  ];
}
