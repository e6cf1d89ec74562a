/**
 * Config validation, table-driven: every invalid input names its resource, field path and a
 * readable message (all problems at once); every valid input gets the documented defaults.
 * Also covers document parsing (parseDocuments) and durations.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { buildMesh } from '../../../shared/src/config/mesh';
import type { MeshConfig } from '../../../shared/src/config/mesh';
import { parseDocuments } from '../../../shared/src/config/documents';
import { formatDuration, parseDuration, toProtoDuration } from '../../../shared/src/config/duration';
import { ErrorCodes, MeshError } from '../../../shared/src/errors';
import type { FieldIssue } from '../../../shared/src/errors';
import type { BackendPolicy, Route, Service } from '../../../shared/src/config/types';

// Raw documents are untyped JSON: `any` keeps the mutations short.
/* eslint-disable @typescript-eslint/no-explicit-any */
type Doc = Record<string, any>;

const V = 'skein.dev/v1alpha1';

/** A valid config that exercises every kind; each invalid case breaks one thing in a copy of it. */
function base(): Doc[] {
  return structuredClone([
    {
      apiVersion: V, kind: 'Service', metadata: { name: 'reviews' },
      spec: {
        ports: [{ name: 'grpc', port: 50051 }],
        subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }],
        endpoints: [{ address: '10.0.0.1', port: 50051, labels: { version: 'v1' }, zone: 'zone-a' }],
      },
    },
    { apiVersion: V, kind: 'Service', metadata: { name: 'web' }, spec: { protocol: 'http', ports: [{ name: 'http', port: 8080 }] } },
    {
      apiVersion: V, kind: 'GRPCRoute', metadata: { name: 'reviews-split' },
      spec: {
        parentRefs: [{ name: 'reviews' }],
        rules: [
          { name: 'get', matches: [{ method: { service: 'reviews.Reviews', method: 'Get' } }], backendRefs: [{ name: 'reviews', subset: 'v1' }], timeout: '2s' },
          { backendRefs: [{ name: 'reviews', subset: 'v1', weight: 90 }, { name: 'reviews', subset: 'v2', weight: 10 }] },
        ],
      },
    },
    {
      apiVersion: V, kind: 'HTTPRoute', metadata: { name: 'web-api' },
      spec: {
        parentRefs: [{ name: 'web' }],
        rules: [{
          matches: [{ path: { type: 'PathPrefix', value: '/api' }, method: 'GET', headers: [{ name: 'x-canary', value: 'true' }] }],
          backendRefs: [{ name: 'web' }],
        }],
      },
    },
    {
      apiVersion: V, kind: 'BackendPolicy', metadata: { name: 'reviews-policy' },
      spec: { targetRef: { kind: 'Service', name: 'reviews' }, loadBalancer: { policy: 'least_request', choiceCount: 2 } },
    },
    {
      apiVersion: V, kind: 'AuthorizationPolicy', metadata: { name: 'reviews-callers' },
      spec: {
        targetRef: { kind: 'Service', name: 'reviews' },
        rules: [
          { action: 'DENY', from: ['spiffe://skein.local/ns/test/*'], to: { grpc: [{ service: 'reviews.Reviews', method: 'Delete' }] } },
          { action: 'ALLOW', from: ['spiffe://skein.local/ns/default/sa/frontend', '*'] },
        ],
      },
    },
  ]);
}

function doc(docs: Doc[], kind: string, name: string): Doc {
  const d = docs.find((x) => x['kind'] === kind && x['metadata']?.['name'] === name);
  if (d === undefined) throw new Error(`test bug: no ${kind}/${name} in the base config`);
  return d;
}
const svc = (d: Doc[]) => doc(d, 'Service', 'reviews');
const grpcRoute = (d: Doc[]) => doc(d, 'GRPCRoute', 'reviews-split');
const httpRoute = (d: Doc[]) => doc(d, 'HTTPRoute', 'web-api');
const policy = (d: Doc[]) => doc(d, 'BackendPolicy', 'reviews-policy');
const authz = (d: Doc[]) => doc(d, 'AuthorizationPolicy', 'reviews-callers');

interface Expected { resource: string; path: string; message: RegExp }
interface InvalidCase {
  name: string;
  /** Either whole documents, or a mutation of a copy of base(). */
  docs?: unknown[];
  mutate?: (docs: Doc[]) => void;
  expect: Expected[];
  /** Exactly this many details (default: expect.length, so no unrelated issue sneaks in). */
  count?: number;
}

const GR = 'GRPCRoute/reviews-split';
const HR = 'HTTPRoute/web-api';
const SV = 'Service/reviews';
const BP = 'BackendPolicy/reviews-policy';
const AP = 'AuthorizationPolicy/reviews-callers';
/** A second AuthorizationPolicy, for `reviews` unless `spec` says otherwise. */
const authzDoc = (name: string, spec: Doc): Doc => ({ apiVersion: V, kind: 'AuthorizationPolicy', metadata: { name }, spec: { targetRef: { name: 'reviews' }, ...spec } });
/** The first rule of the base AuthorizationPolicy. */
const aRule = (d: Doc[]) => authz(d).spec.rules[0];

/** A route rule timeout set to `text`. */
const timeoutCase = (text: string, message: RegExp): InvalidCase => ({
  name: `bad duration ${JSON.stringify(text)}`,
  mutate: (d) => { grpcRoute(d).spec.rules[0].timeout = text; },
  expect: [{ resource: GR, path: 'spec.rules[0].timeout', message }],
});

const INVALID: InvalidCase[] = [
  // Unknown fields, anywhere.
  { name: 'unknown field at top level', mutate: (d) => { svc(d).status = {}; }, expect: [{ resource: SV, path: 'status', message: /^unknown field \(allowed: apiVersion, kind, metadata, spec\)$/ }] },
  { name: 'unknown field in spec', mutate: (d) => { svc(d).spec.protocl = 'grpc'; }, expect: [{ resource: SV, path: 'spec.protocl', message: /^unknown field \(allowed: protocol, ports, subsets, endpoints, serviceAccount, mtls, dependsOn\)$/ }] },
  // Declared dependencies (scoped config): names of existing Services, each once.
  { name: 'dependsOn not a list', mutate: (d) => { svc(d).spec.dependsOn = 'web'; }, expect: [{ resource: SV, path: 'spec.dependsOn', message: /^must be a list, got "web"$/ }] },
  { name: 'dependsOn entry not a DNS label', mutate: (d) => { svc(d).spec.dependsOn = ['Web_1']; }, expect: [{ resource: SV, path: 'spec.dependsOn[0]', message: /DNS label/ }] },
  { name: 'dependsOn entry not a string', mutate: (d) => { svc(d).spec.dependsOn = ['web', 3]; }, expect: [{ resource: SV, path: 'spec.dependsOn[1]', message: /^must be a string, got number 3$/ }] },
  { name: 'dependsOn duplicate', mutate: (d) => { svc(d).spec.dependsOn = ['web', 'web']; }, expect: [{ resource: SV, path: 'spec.dependsOn[1]', message: /^duplicate Service "web"$/ }] },
  { name: 'dependsOn a Service that does not exist', mutate: (d) => { svc(d).spec.dependsOn = ['web', 'ratingz']; }, expect: [{ resource: SV, path: 'spec.dependsOn[1]', message: /^references Service "ratingz", which does not exist/ }] },
  { name: 'dependsOn over the limit', mutate: (d) => { svc(d).spec.dependsOn = Array.from({ length: 1001 }, (_, i) => `s${i}`); }, expect: [{ resource: SV, path: 'spec.dependsOn', message: /^must have at most 1000 items$/ }] },
  // The service account that may register endpoints: a DNS label.
  { name: 'serviceAccount not a DNS label', mutate: (d) => { svc(d).spec.serviceAccount = 'Reviews_SA'; }, expect: [{ resource: SV, path: 'spec.serviceAccount', message: /DNS label/ }] },
  { name: 'serviceAccount not a string', mutate: (d) => { svc(d).spec.serviceAccount = 7; }, expect: [{ resource: SV, path: 'spec.serviceAccount', message: /string/ }] },
  { name: 'unknown nested field (typo)', mutate: (d) => { grpcRoute(d).spec.rules[0].backendRefs[0].wieght = 5; }, expect: [{ resource: GR, path: 'spec.rules[0].backendRefs[0].wieght', message: /^unknown field \(allowed: name, subset, weight, kind\)$/ }] },
  { name: 'unknown field in metadata', mutate: (d) => { svc(d).metadata.namespace = 'default'; }, expect: [{ resource: SV, path: 'metadata.namespace', message: /^unknown field/ }] },
  { name: 'unknown field in a policy section', mutate: (d) => { policy(d).spec.loadBalancer.choices = 2; }, expect: [{ resource: BP, path: 'spec.loadBalancer.choices', message: /^unknown field/ }] },

  // Document envelope.
  { name: 'wrong apiVersion', mutate: (d) => { svc(d).apiVersion = 'skein.dev/v1'; }, expect: [{ resource: SV, path: 'apiVersion', message: /^must be "skein\.dev\/v1alpha1", got "skein\.dev\/v1"$/ }] },
  { name: 'missing apiVersion', mutate: (d) => { delete svc(d).apiVersion; }, expect: [{ resource: SV, path: 'apiVersion', message: /^must be "skein\.dev\/v1alpha1", got null$/ }] },
  { name: 'unknown kind', mutate: (d) => { svc(d).kind = 'Gateway'; }, expect: [{ resource: 'Gateway/reviews', path: 'kind', message: /^must be one of Service, HTTPRoute, GRPCRoute, BackendPolicy, AuthorizationPolicy, Telemetry, got "Gateway"$/ }] },
  { name: 'missing metadata', mutate: (d) => { delete svc(d).metadata; }, expect: [{ resource: 'document[0]', path: 'metadata', message: /^is required/ }] },
  { name: 'missing metadata.name', mutate: (d) => { svc(d).metadata = {}; }, expect: [{ resource: 'document[0]', path: 'metadata.name', message: /^must be a string, got nothing$/ }] },
  { name: 'missing spec', mutate: (d) => { delete svc(d).spec; }, expect: [{ resource: SV, path: 'spec', message: /^is required$/ }] },
  { name: 'document that is not an object', docs: ['hello'], expect: [{ resource: 'document[0]', path: '', message: /^must be an object, got "hello"$/ }] },
  { name: 'name with upper case', mutate: (d) => { svc(d).metadata.name = 'Reviews'; }, expect: [{ resource: 'Service/Reviews', path: 'metadata.name', message: /^"Reviews" must be a DNS label/ }] },
  { name: 'name too long (64)', mutate: (d) => { svc(d).metadata.name = 'a'.repeat(64); }, expect: [{ resource: `Service/${'a'.repeat(64)}`, path: 'metadata.name', message: /must be a DNS label.*at most 63 characters/ }] },
  { name: 'name ending in -', mutate: (d) => { policy(d).metadata.name = 'p-'; }, expect: [{ resource: 'BackendPolicy/p-', path: 'metadata.name', message: /must be a DNS label/ }] },

  // Weights.
  { name: 'negative weight', mutate: (d) => { grpcRoute(d).spec.rules[1].backendRefs[0].weight = -1; }, expect: [{ resource: GR, path: 'spec.rules[1].backendRefs[0].weight', message: /^must be >= 0$/ }] },
  { name: 'fractional weight', mutate: (d) => { grpcRoute(d).spec.rules[1].backendRefs[1].weight = 0.5; }, expect: [{ resource: GR, path: 'spec.rules[1].backendRefs[1].weight', message: /^must be an integer, got number 0\.5$/ }] },
  {
    name: 'all weights zero',
    mutate: (d) => { for (const b of grpcRoute(d).spec.rules[1].backendRefs) b.weight = 0; },
    expect: [{ resource: GR, path: 'spec.rules[1].backendRefs', message: /weights must not all be 0/ }],
  },
  { name: 'no backendRefs', mutate: (d) => { delete grpcRoute(d).spec.rules[0].backendRefs; }, expect: [{ resource: GR, path: 'spec.rules[0].backendRefs', message: /^is required/ }] },
  {
    name: 'duplicate backendRef',
    mutate: (d) => { grpcRoute(d).spec.rules[1].backendRefs[1].subset = 'v1'; },
    expect: [{ resource: GR, path: 'spec.rules[1].backendRefs[1]', message: /^duplicate backend reviews\/v1$/ }],
  },

  // Names must be unique per kind.
  {
    name: 'duplicate name (same kind twice)',
    mutate: (d) => { d.push({ ...structuredClone(svc(d)) }); },
    expect: [{ resource: SV, path: 'metadata.name', message: /^duplicate name: documents 0 and 6 both define Service\/reviews$/ }],
  },

  // Cross references.
  {
    name: 'route parentRef to a missing Service',
    mutate: (d) => { grpcRoute(d).spec.parentRefs = [{ name: 'ratings' }]; },
    expect: [{ resource: GR, path: 'spec.parentRefs[0].name', message: /^references Service "ratings", which does not exist$/ }],
  },
  {
    name: 'parentRef typo suggests the close name',
    mutate: (d) => { grpcRoute(d).spec.parentRefs = [{ name: 'review' }]; },
    expect: [{ resource: GR, path: 'spec.parentRefs[0].name', message: /which does not exist \(did you mean "reviews"\?\)$/ }],
  },
  {
    name: 'backendRef to a missing Service',
    mutate: (d) => { grpcRoute(d).spec.rules[1].backendRefs[1] = { name: 'ratings', weight: 10 }; },
    expect: [{ resource: GR, path: 'spec.rules[1].backendRefs[1].name', message: /^references Service "ratings", which does not exist/ }],
  },
  {
    name: 'backendRef subset not defined on the Service',
    mutate: (d) => { grpcRoute(d).spec.rules[1].backendRefs[1].subset = 'v3'; },
    expect: [{ resource: GR, path: 'spec.rules[1].backendRefs[1].subset', message: /^Service "reviews" has no subset "v3" \(subsets: v1, v2\)$/ }],
  },
  {
    name: 'backendRef subset on a Service with no subsets',
    mutate: (d) => { httpRoute(d).spec.rules[0].backendRefs[0].subset = 'v1'; },
    expect: [{ resource: HR, path: 'spec.rules[0].backendRefs[0].subset', message: /\(subsets: none\)$/ }],
  },
  {
    name: 'BackendPolicy target missing',
    mutate: (d) => { policy(d).spec.targetRef.name = 'ratings'; },
    expect: [{ resource: BP, path: 'spec.targetRef.name', message: /^references Service "ratings", which does not exist/ }],
  },
  {
    name: 'BackendPolicy target subset missing',
    mutate: (d) => { policy(d).spec.targetRef.subset = 'v9'; },
    expect: [{ resource: BP, path: 'spec.targetRef.subset', message: /^Service "reviews" has no subset "v9"$/ }],
  },
  {
    name: 'BackendPolicy targetRef kind other than Service',
    mutate: (d) => { policy(d).spec.targetRef.kind = 'HTTPRoute'; },
    expect: [{ resource: BP, path: 'spec.targetRef.kind', message: /^must be one of Service, got "HTTPRoute"$/ }],
  },
  {
    name: 'two BackendPolicies targeting the same service',
    mutate: (d) => { d.push({ apiVersion: V, kind: 'BackendPolicy', metadata: { name: 'zz-second' }, spec: { targetRef: { name: 'reviews' } } }); },
    expect: [{ resource: 'BackendPolicy/zz-second', path: 'spec.targetRef', message: /^BackendPolicy\/reviews-policy already targets reviews; merge them/ }],
  },
  {
    name: 'two BackendPolicies targeting the same subset',
    mutate: (d) => {
      d.push({ apiVersion: V, kind: 'BackendPolicy', metadata: { name: 'a' }, spec: { targetRef: { name: 'reviews', subset: 'v1' } } });
      d.push({ apiVersion: V, kind: 'BackendPolicy', metadata: { name: 'b' }, spec: { targetRef: { name: 'reviews', subset: 'v1' } } });
    },
    expect: [{ resource: 'BackendPolicy/b', path: 'spec.targetRef', message: /^BackendPolicy\/a already targets reviews\/v1/ }],
  },
  {
    name: 'GRPCRoute backend Service with protocol http',
    mutate: (d) => { grpcRoute(d).spec.rules[0].backendRefs = [{ name: 'web' }]; },
    expect: [{ resource: GR, path: 'spec.rules[0].backendRefs[0].name', message: /^GRPCRoute backend Service "web" has protocol http, not grpc$/ }],
  },

  // Durations.
  timeoutCase('5', /^invalid duration "5": use a number with a unit/),
  timeoutCase('5 s', /^invalid duration "5 s"/),
  timeoutCase('-1s', /^invalid duration "-1s"/),
  timeoutCase('1.5ms', /^invalid duration "1\.5ms": finer than one millisecond$/),
  timeoutCase('', /^invalid duration "": must not be empty$/),
  timeoutCase('25h', /^must be at most 86400000ms$/),
  { name: 'duration given as a number', mutate: (d) => { grpcRoute(d).spec.rules[0].timeout = 5; }, expect: [{ resource: GR, path: 'spec.rules[0].timeout', message: /^must be a duration string like "250ms" or "5s", got number 5$/ }] },

  // Matches.
  {
    name: 'invalid regex in a path match',
    mutate: (d) => { httpRoute(d).spec.rules[0].matches[0].path = { type: 'RegularExpression', value: '/api/([a-z' }; },
    expect: [{ resource: HR, path: 'spec.rules[0].matches[0].path.value', message: /^invalid RE2 regular expression/ }],
  },
  {
    name: 'invalid regex in a header match',
    mutate: (d) => { httpRoute(d).spec.rules[0].matches[0].headers = [{ name: 'x-user', type: 'RegularExpression', value: '(*)' }]; },
    expect: [{ resource: HR, path: 'spec.rules[0].matches[0].headers[0].value', message: /^invalid RE2 regular expression/ }],
  },
  {
    name: 'invalid regex in a gRPC method match',
    mutate: (d) => { grpcRoute(d).spec.rules[0].matches = [{ method: { type: 'RegularExpression', service: 'reviews.(' } }]; },
    expect: [{ resource: GR, path: 'spec.rules[0].matches[0].method.service', message: /^invalid RE2 regular expression/ }],
  },
  {
    name: 'header match type Present with a value',
    mutate: (d) => { httpRoute(d).spec.rules[0].matches[0].headers = [{ name: 'x-user', type: 'Present', value: 'x' }]; },
    expect: [{ resource: HR, path: 'spec.rules[0].matches[0].headers[0].value', message: /^must be omitted when type is Present$/ }],
  },
  {
    name: 'upper-case header name',
    mutate: (d) => { httpRoute(d).spec.rules[0].matches[0].headers[0].name = 'X-Canary'; },
    expect: [{ resource: HR, path: 'spec.rules[0].matches[0].headers[0].name', message: /must be a lower-case HTTP header name/ }],
  },
  {
    name: 'path match not starting with /',
    mutate: (d) => { httpRoute(d).spec.rules[0].matches[0].path.value = 'api'; },
    expect: [{ resource: HR, path: 'spec.rules[0].matches[0].path.value', message: /must start with '\/'/ }],
  },
  {
    name: 'unknown HTTP method',
    mutate: (d) => { httpRoute(d).spec.rules[0].matches[0].method = 'FETCH'; },
    expect: [{ resource: HR, path: 'spec.rules[0].matches[0].method', message: /^must be one of GET, HEAD/ }],
  },
  {
    name: 'path match on a GRPCRoute',
    mutate: (d) => { grpcRoute(d).spec.rules[0].matches[0].path = { value: '/x' }; },
    expect: [{ resource: GR, path: 'spec.rules[0].matches[0].path', message: /^unknown field \(allowed: method, headers\)$/ }],
  },
  {
    name: 'gRPC method match with neither service nor method',
    mutate: (d) => { grpcRoute(d).spec.rules[0].matches = [{ method: { type: 'Exact' } }]; },
    expect: [{ resource: GR, path: 'spec.rules[0].matches[0].method', message: /^must set service, method, or both$/ }],
  },

  // Service ports, subsets, endpoints.
  { name: 'port above 65535', mutate: (d) => { svc(d).spec.ports[0].port = 70000; }, expect: [{ resource: SV, path: 'spec.ports[0].port', message: /^must be <= 65535$/ }] },
  { name: 'port 0', mutate: (d) => { svc(d).spec.ports[0].port = 0; }, expect: [{ resource: SV, path: 'spec.ports[0].port', message: /^must be >= 1$/ }] },
  { name: 'static endpoint port out of range', mutate: (d) => { svc(d).spec.endpoints[0].port = 65536; }, expect: [{ resource: SV, path: 'spec.endpoints[0].port', message: /^must be <= 65535$/ }] },
  { name: 'no ports', mutate: (d) => { svc(d).spec.ports = []; }, expect: [{ resource: SV, path: 'spec.ports', message: /^must have at least 1 item$/ }] },
  {
    name: 'duplicate port number',
    mutate: (d) => { svc(d).spec.ports.push({ name: 'grpc-alt', port: 50051 }); },
    expect: [{ resource: SV, path: 'spec.ports[1].port', message: /^duplicate port 50051$/ }],
  },
  {
    name: 'duplicate port name',
    mutate: (d) => { svc(d).spec.ports.push({ name: 'grpc', port: 50052 }); },
    expect: [{ resource: SV, path: 'spec.ports[1].name', message: /^duplicate port name "grpc"$/ }],
  },
  {
    name: 'duplicate subset name',
    mutate: (d) => { svc(d).spec.subsets[1].name = 'v1'; },
    expect: [{ resource: SV, path: 'spec.subsets[1].name', message: /^duplicate subset name "v1"$/ }],
  },
  {
    name: 'duplicate static endpoint',
    mutate: (d) => { svc(d).spec.endpoints.push({ address: '10.0.0.1', port: 50051, zone: 'zone-b' }); },
    expect: [{ resource: SV, path: 'spec.endpoints[1]', message: /^duplicate endpoint 10\.0\.0\.1:50051$/ }],
  },
  { name: 'subset with empty labels', mutate: (d) => { svc(d).spec.subsets[0].labels = {}; }, expect: [{ resource: SV, path: 'spec.subsets[0].labels', message: /^must select on at least one label$/ }] },
  { name: 'subset without labels', mutate: (d) => { delete svc(d).spec.subsets[0].labels; }, expect: [{ resource: SV, path: 'spec.subsets[0].labels', message: /^is required/ }] },
  // Who may connect to the service's sidecars.
  { name: 'unknown mtls mode', mutate: (d) => { svc(d).spec.mtls = 'OPTIONAL'; }, expect: [{ resource: SV, path: 'spec.mtls', message: /^must be one of STRICT, PERMISSIVE, DISABLE, got "OPTIONAL"$/ }] },
  { name: 'mtls mode in lower case', mutate: (d) => { svc(d).spec.mtls = 'strict'; }, expect: [{ resource: SV, path: 'spec.mtls', message: /^must be one of STRICT, PERMISSIVE, DISABLE, got "strict"$/ }] },
  { name: 'mtls not a string', mutate: (d) => { svc(d).spec.mtls = true; }, expect: [{ resource: SV, path: 'spec.mtls', message: /^must be one of STRICT, PERMISSIVE, DISABLE/ }] },
  { name: 'unknown protocol', mutate: (d) => { svc(d).spec.protocol = 'tcp'; }, expect: [{ resource: SV, path: 'spec.protocol', message: /^must be one of grpc, http, got "tcp"$/ }] },
  { name: 'bad endpoint address', mutate: (d) => { svc(d).spec.endpoints[0].address = 'not an address'; }, expect: [{ resource: SV, path: 'spec.endpoints[0].address', message: /must be an IPv4\/IPv6 address or a DNS name$/ }] },
  { name: 'endpoint weight 0', mutate: (d) => { svc(d).spec.endpoints[0].weight = 0; }, expect: [{ resource: SV, path: 'spec.endpoints[0].weight', message: /^must be >= 1$/ }] },
  { name: 'unknown endpoint health', mutate: (d) => { svc(d).spec.endpoints[0].health = 'OK'; }, expect: [{ resource: SV, path: 'spec.endpoints[0].health', message: /^must be one of HEALTHY, UNHEALTHY, DRAINING/ }] },
  { name: 'non-string label value', mutate: (d) => { svc(d).spec.subsets[0].labels.tier = 1; }, expect: [{ resource: SV, path: 'spec.subsets[0].labels.tier', message: /^must be a string, got number 1$/ }] },

  // Retry.
  {
    name: 'retry: unknown retryOn value',
    mutate: (d) => { grpcRoute(d).spec.rules[0].retry = { retryOn: ['unavailable', 'timeout'] }; },
    expect: [{ resource: GR, path: 'spec.rules[0].retry.retryOn[1]', message: /^must be one of connect-failure, .*, got "timeout"$/ }],
  },
  {
    name: 'retry: duplicate retryOn value',
    mutate: (d) => { grpcRoute(d).spec.rules[0].retry = { retryOn: ['unavailable', 'unavailable'] }; },
    expect: [{ resource: GR, path: 'spec.rules[0].retry.retryOn[1]', message: /^duplicate retryOn value "unavailable"$/ }],
  },
  { name: 'retry: retries > 10', mutate: (d) => { grpcRoute(d).spec.rules[0].retry = { retries: 11 }; }, expect: [{ resource: GR, path: 'spec.rules[0].retry.retries', message: /^must be <= 10$/ }] },
  {
    name: 'retry: backoff max < base',
    mutate: (d) => { grpcRoute(d).spec.rules[0].retry = { backoff: { baseInterval: '100ms', maxInterval: '50ms' } }; },
    expect: [{ resource: GR, path: 'spec.rules[0].retry.backoff.maxInterval', message: /^must be >= backoff\.baseInterval$/ }],
  },
  {
    name: 'retry: status code out of range',
    mutate: (d) => { grpcRoute(d).spec.rules[0].retry = { retriableStatusCodes: [503, 600] }; },
    expect: [{ resource: GR, path: 'spec.rules[0].retry.retriableStatusCodes[1]', message: /^must be <= 599$/ }],
  },
  {
    name: 'retry: bad perTryTimeout',
    mutate: (d) => { grpcRoute(d).spec.rules[0].retry = { perTryTimeout: '1.5ms' }; },
    expect: [{ resource: GR, path: 'spec.rules[0].retry.perTryTimeout', message: /finer than one millisecond/ }],
  },

  // Filters.
  {
    name: 'two RequestHeaderModifier filters in one rule',
    mutate: (d) => {
      const f = { type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'x-a', value: '1' }] } };
      httpRoute(d).spec.rules[0].filters = [f, structuredClone(f)];
    },
    expect: [{ resource: HR, path: 'spec.rules[0].filters[1].type', message: /^only one RequestHeaderModifier filter is allowed per rule$/ }],
  },
  {
    name: 'header modifier value with a newline',
    mutate: (d) => { httpRoute(d).spec.rules[0].filters = [{ type: 'ResponseHeaderModifier', responseHeaderModifier: { add: [{ name: 'x-a', value: 'a\r\nb' }] } }]; },
    expect: [{ resource: HR, path: 'spec.rules[0].filters[0].responseHeaderModifier.add[0].value', message: /must not contain CR, LF or NUL$/ }],
  },

  // Fault and LocalRateLimit filters: one broken field each, at its exact path.
  ...(() => {
    const F = 'spec.rules[0].filters[0]';
    const fault = (fault: unknown) => (d: Doc[]) => { grpcRoute(d).spec.rules[0].filters = [{ type: 'Fault', fault }]; };
    const limit = (localRateLimit: unknown) => (d: Doc[]) => { grpcRoute(d).spec.rules[0].filters = [{ type: 'LocalRateLimit', localRateLimit }]; };
    const cases: [name: string, mutate: (d: Doc[]) => void, path: string, message: RegExp][] = [
      ['Fault without its settings', (d) => { grpcRoute(d).spec.rules[0].filters = [{ type: 'Fault' }]; }, `${F}.fault`, /^is required for this filter type$/],
      ['Fault with neither delay nor abort', fault({}), `${F}.fault`, /^must set delay, abort, or both$/],
      ['Fault with an unknown field', fault({ delay: { fixedDelay: '1s' }, abrt: {} }), `${F}.fault.abrt`, /^unknown field \(allowed: delay, abort\)$/],
      ['delay without fixedDelay', fault({ delay: { percentage: 10 } }), `${F}.fault.delay.fixedDelay`, /^is required, e\.g\. "100ms"$/],
      ['delay fixedDelay 0', fault({ delay: { fixedDelay: '0' } }), `${F}.fault.delay.fixedDelay`, /^must be at least 1ms$/],
      ['delay fixedDelay over 1h', fault({ delay: { fixedDelay: '61m' } }), `${F}.fault.delay.fixedDelay`, /^must be at most 3600000ms$/],
      ['delay fixedDelay without a unit', fault({ delay: { fixedDelay: 100 } }), `${F}.fault.delay.fixedDelay`, /^must be a duration string like "250ms" or "5s", got number 100$/],
      ['delay percentage over 100', fault({ delay: { fixedDelay: '1s', percentage: 100.5 } }), `${F}.fault.delay.percentage`, /^must be <= 100$/],
      ['delay percentage negative', fault({ delay: { fixedDelay: '1s', percentage: -1 } }), `${F}.fault.delay.percentage`, /^must be >= 0$/],
      ['delay percentage as a string', fault({ delay: { fixedDelay: '1s', percentage: '10%' } }), `${F}.fault.delay.percentage`, /^must be a number, got "10%"$/],
      ['abort percentage finer than 0.0001', fault({ abort: { httpStatus: 503, percentage: 0.00005 } }), `${F}.fault.abort.percentage`, /^must be a multiple of 0\.0001 \(xDS carries it per million\)$/],
      ['abort with both statuses', fault({ abort: { httpStatus: 503, grpcStatus: 14 } }), `${F}.fault.abort`, /^set exactly one of httpStatus and grpcStatus, not both$/],
      ['abort with no status', fault({ abort: { percentage: 5 } }), `${F}.fault.abort`, /^must set httpStatus \(200 to 599\) or grpcStatus \(0 to 16\)$/],
      ['abort httpStatus 600', fault({ abort: { httpStatus: 600 } }), `${F}.fault.abort.httpStatus`, /^must be <= 599$/],
      ['abort httpStatus 199', fault({ abort: { httpStatus: 199 } }), `${F}.fault.abort.httpStatus`, /^must be >= 200$/],
      ['abort grpcStatus 17', fault({ abort: { grpcStatus: 17 } }), `${F}.fault.abort.grpcStatus`, /^must be <= 16$/],
      ['abort grpcStatus not an integer', fault({ abort: { grpcStatus: 'UNAVAILABLE' } }), `${F}.fault.abort.grpcStatus`, /^must be an integer, got "UNAVAILABLE"$/],
      ['abort with an unknown field', fault({ abort: { grpcStatus: 14, status: 503 } }), `${F}.fault.abort.status`, /^unknown field \(allowed: httpStatus, grpcStatus, percentage\)$/],
      ['LocalRateLimit without its settings', (d) => { grpcRoute(d).spec.rules[0].filters = [{ type: 'LocalRateLimit' }]; }, `${F}.localRateLimit`, /^is required for this filter type$/],
      ['LocalRateLimit without maxTokens', limit({ fillInterval: '1s' }), `${F}.localRateLimit.maxTokens`, /^is required: the bucket size \(burst\), e\.g\. 100$/],
      ['maxTokens 0', limit({ maxTokens: 0 }), `${F}.localRateLimit.maxTokens`, /^must be >= 1$/],
      ['maxTokens over 1000000', limit({ maxTokens: 1_000_001 }), `${F}.localRateLimit.maxTokens`, /^must be <= 1000000$/],
      ['maxTokens fractional', limit({ maxTokens: 1.5 }), `${F}.localRateLimit.maxTokens`, /^must be an integer, got number 1\.5$/],
      ['tokensPerFill 0', limit({ maxTokens: 10, tokensPerFill: 0 }), `${F}.localRateLimit.tokensPerFill`, /^must be >= 1$/],
      ['tokensPerFill above maxTokens', limit({ maxTokens: 10, tokensPerFill: 11 }), `${F}.localRateLimit.tokensPerFill`, /^must be <= maxTokens \(10\): the bucket never holds more than maxTokens$/],
      ['fillInterval under 50ms', limit({ maxTokens: 10, fillInterval: '49ms' }), `${F}.localRateLimit.fillInterval`, /^must be at least 50ms$/],
      ['fillInterval over 24h', limit({ maxTokens: 10, fillInterval: '25h' }), `${F}.localRateLimit.fillInterval`, /^must be at most 86400000ms$/],
      ['LocalRateLimit with an unknown field', limit({ maxTokens: 10, burst: 20 }), `${F}.localRateLimit.burst`, /^unknown field \(allowed: maxTokens, tokensPerFill, fillInterval\)$/],
      ['unknown filter type', (d) => { grpcRoute(d).spec.rules[0].filters = [{ type: 'RateLimit' }]; }, `${F}.type`, /^must be one of RequestHeaderModifier, ResponseHeaderModifier, Fault, LocalRateLimit, got "RateLimit"$/],
      ['settings of another filter type', (d) => { grpcRoute(d).spec.rules[0].filters = [{ type: 'Fault', fault: { abort: { grpcStatus: 14 } }, localRateLimit: { maxTokens: 1 } }]; }, `${F}.localRateLimit`, /^must be omitted when type is Fault \(set fault\)$/],
      ['two Fault filters in one rule', (d) => { grpcRoute(d).spec.rules[0].filters = [{ type: 'Fault', fault: { abort: { grpcStatus: 14 } } }, { type: 'Fault', fault: { abort: { grpcStatus: 13 } } }]; }, 'spec.rules[0].filters[1].type', /^only one Fault filter is allowed per rule$/],
      ['two LocalRateLimit filters in one rule', (d) => { grpcRoute(d).spec.rules[0].filters = [{ type: 'LocalRateLimit', localRateLimit: { maxTokens: 1 } }, { type: 'LocalRateLimit', localRateLimit: { maxTokens: 2 } }]; }, 'spec.rules[0].filters[1].type', /^only one LocalRateLimit filter is allowed per rule$/],
    ];
    return cases.map(([name, mutate, path, message]): InvalidCase => ({ name: `filters: ${name}`, mutate, expect: [{ resource: GR, path, message }] }));
  })(),
  {
    name: 'filters: every broken Fault and LocalRateLimit field is reported at once',
    mutate: (d) => {
      grpcRoute(d).spec.rules[1].filters = [
        { type: 'Fault', fault: { delay: { fixedDelay: '1s', percentage: 101 }, abort: { grpcStatus: 17 } } },
        { type: 'LocalRateLimit', localRateLimit: { maxTokens: 5, fillInterval: '10ms' } },
      ];
    },
    expect: [
      { resource: GR, path: 'spec.rules[1].filters[0].fault.delay.percentage', message: /^must be <= 100$/ },
      { resource: GR, path: 'spec.rules[1].filters[0].fault.abort.grpcStatus', message: /^must be <= 16$/ },
      { resource: GR, path: 'spec.rules[1].filters[1].localRateLimit.fillInterval', message: /^must be at least 50ms$/ },
    ],
  },

  // BackendPolicy sections.
  { name: 'healthyPanicThreshold 101', mutate: (d) => { policy(d).spec.healthyPanicThreshold = 101; }, expect: [{ resource: BP, path: 'spec.healthyPanicThreshold', message: /^must be <= 100$/ }] },
  { name: 'healthyPanicThreshold not a number', mutate: (d) => { policy(d).spec.healthyPanicThreshold = '50%'; }, expect: [{ resource: BP, path: 'spec.healthyPanicThreshold', message: /number/ }] },
  { name: 'outlier maxEjectionPercent 101', mutate: (d) => { policy(d).spec.outlierDetection = { maxEjectionPercent: 101 }; }, expect: [{ resource: BP, path: 'spec.outlierDetection.maxEjectionPercent', message: /^must be <= 100$/ }] },
  {
    name: 'outlier maxEjectionTime < baseEjectionTime',
    mutate: (d) => { policy(d).spec.outlierDetection = { baseEjectionTime: '30s', maxEjectionTime: '10s' }; },
    expect: [{ resource: BP, path: 'spec.outlierDetection.maxEjectionTime', message: /^must be >= baseEjectionTime$/ }],
  },
  {
    name: 'outlier unejectOnHealthCheckSuccess not a boolean',
    mutate: (d) => { policy(d).spec.outlierDetection = { unejectOnHealthCheckSuccess: 'yes' }; },
    expect: [{ resource: BP, path: 'spec.outlierDetection.unejectOnHealthCheckSuccess', message: /^must be true or false, got / }],
  },
  {
    name: 'outlier successRate stdevFactor 0',
    mutate: (d) => { policy(d).spec.outlierDetection = { successRate: { stdevFactor: 0 } }; },
    expect: [{ resource: BP, path: 'spec.outlierDetection.successRate.stdevFactor', message: /^must be >= 0\.001$/ }],
  },
  {
    name: 'healthCheck with both http and grpc',
    mutate: (d) => { policy(d).spec.healthCheck = { http: {}, grpc: {} }; },
    expect: [{ resource: BP, path: 'spec.healthCheck', message: /^must set exactly one of http, grpc$/ }],
  },
  {
    name: 'healthCheck with neither http nor grpc',
    mutate: (d) => { policy(d).spec.healthCheck = { interval: '5s' }; },
    expect: [{ resource: BP, path: 'spec.healthCheck', message: /^must set exactly one of http, grpc$/ }],
  },
  {
    name: 'healthCheck timeout > interval',
    mutate: (d) => { policy(d).spec.healthCheck = { grpc: {}, interval: '1s', timeout: '2s' }; },
    expect: [{ resource: BP, path: 'spec.healthCheck.timeout', message: /^must be <= interval$/ }],
  },
  {
    name: 'loadBalancer ring_hash without hashOn',
    mutate: (d) => { policy(d).spec.loadBalancer = { policy: 'ring_hash' }; },
    expect: [{ resource: BP, path: 'spec.loadBalancer.hashOn', message: /^is required for ring_hash/ }],
  },
  {
    name: 'loadBalancer choiceCount with round_robin',
    mutate: (d) => { policy(d).spec.loadBalancer = { policy: 'round_robin', choiceCount: 2 }; },
    expect: [{ resource: BP, path: 'spec.loadBalancer.choiceCount', message: /^applies only to policy least_request$/ }],
  },
  {
    name: 'loadBalancer hashOn with least_request',
    mutate: (d) => { policy(d).spec.loadBalancer = { policy: 'least_request', hashOn: { header: 'x-user' } }; },
    expect: [{ resource: BP, path: 'spec.loadBalancer.hashOn', message: /^applies only to policy ring_hash$/ }],
  },
  {
    name: 'loadBalancer hashOn with both header and cookie',
    mutate: (d) => { policy(d).spec.loadBalancer = { policy: 'ring_hash', hashOn: { header: 'x-user', cookie: 'session' } }; },
    expect: [{ resource: BP, path: 'spec.loadBalancer.hashOn', message: /^must set exactly one of header, cookie$/ }],
  },
  {
    name: 'loadBalancer without policy',
    mutate: (d) => { policy(d).spec.loadBalancer = {}; },
    expect: [{ resource: BP, path: 'spec.loadBalancer.policy', message: /^is required: one of round_robin, least_request, ring_hash, random, peak_ewma$/ }],
  },
  {
    name: 'ring sizes min > max',
    mutate: (d) => { policy(d).spec.loadBalancer = { policy: 'ring_hash', hashOn: { cookie: 's' }, minRingSize: 2048, maxRingSize: 1024 }; },
    expect: [{ resource: BP, path: 'spec.loadBalancer.maxRingSize', message: /^must be >= minRingSize$/ }],
  },
  { name: 'retryBudget percent > 100', mutate: (d) => { policy(d).spec.retryBudget = { budgetPercent: 101 }; }, expect: [{ resource: BP, path: 'spec.retryBudget.budgetPercent', message: /^must be <= 100$/ }] },
  { name: 'circuitBreaker negative', mutate: (d) => { policy(d).spec.circuitBreaker = { maxRequests: -1 }; }, expect: [{ resource: BP, path: 'spec.circuitBreaker.maxRequests', message: /^must be >= 0$/ }] },
  {
    name: 'a hostname that is another service\'s name',
    mutate: (d) => { httpRoute(d).spec.hostnames = ['reviews']; },
    expect: [{ resource: HR, path: 'spec.hostnames[0]', message: /^"reviews" already selects Service "reviews"; a hostname may select one service only$/ }],
  },
  {
    name: 'one hostname claimed by routes of two services',
    mutate: (d) => { httpRoute(d).spec.hostnames = ['shop.example.com']; grpcRoute(d).spec.hostnames = ['shop.example.com']; },
    expect: [{ resource: HR, path: 'spec.hostnames[0]', message: /already selects Service "reviews"/ }],
  },
  { name: 'decay with a policy other than peak_ewma', mutate: (d) => { policy(d).spec.loadBalancer = { policy: 'round_robin', decay: '5s' }; }, expect: [{ resource: BP, path: 'spec.loadBalancer.decay', message: /^applies only to policy peak_ewma$/ }] },
  { name: 'peak_ewma decay too short', mutate: (d) => { policy(d).spec.loadBalancer = { policy: 'peak_ewma', decay: '10ms' }; }, expect: [{ resource: BP, path: 'spec.loadBalancer.decay', message: /^must be at least 100ms$/ }] },
  { name: 'missing targetRef', mutate: (d) => { delete policy(d).spec.targetRef; }, expect: [{ resource: BP, path: 'spec.targetRef', message: /^is required/ }] },

  // Every problem at once.
  {
    name: 'one document with 3 independent errors yields 3 details',
    mutate: (d) => {
      const s = svc(d);
      s.spec.protocol = 'tcp';
      s.spec.ports[0].port = 0;
      s.spec.subsets[1].labels = {};
    },
    expect: [
      { resource: SV, path: 'spec.protocol', message: /^must be one of grpc, http/ },
      { resource: SV, path: 'spec.ports[0].port', message: /^must be >= 1$/ },
      { resource: SV, path: 'spec.subsets[1].labels', message: /^must select on at least one label$/ },
    ],
  },
  {
    name: 'a bad endpoint address does not hide its other problems',
    mutate: (d) => { Object.assign(svc(d).spec.endpoints[0], { address: 'bad address', port: 0, weight: 200 }); },
    expect: [
      { resource: SV, path: 'spec.endpoints[0].address', message: /must be an IPv4\/IPv6 address or a DNS name$/ },
      { resource: SV, path: 'spec.endpoints[0].port', message: /^must be >= 1$/ },
      { resource: SV, path: 'spec.endpoints[0].weight', message: /^must be <= 128$/ },
    ],
  },
  {
    name: 'errors in several documents and several rules are all reported',
    mutate: (d) => {
      svc(d).apiVersion = 'v1';
      grpcRoute(d).spec.rules[0].timeout = '5';
      grpcRoute(d).spec.rules[1].backendRefs[0].weight = -3;
      policy(d).spec.outlierDetection = { maxEjectionPercent: 101, interval: '-1s' };
    },
    expect: [
      { resource: SV, path: 'apiVersion', message: /^must be "skein\.dev\/v1alpha1"/ },
      { resource: GR, path: 'spec.rules[0].timeout', message: /^invalid duration "5"/ },
      { resource: GR, path: 'spec.rules[1].backendRefs[0].weight', message: /^must be >= 0$/ },
      { resource: BP, path: 'spec.outlierDetection.interval', message: /^invalid duration "-1s"/ },
      { resource: BP, path: 'spec.outlierDetection.maxEjectionPercent', message: /^must be <= 100$/ },
    ],
  },
  {
    name: 'every broken reference is reported',
    mutate: (d) => {
      grpcRoute(d).spec.parentRefs = [{ name: 'reviews' }, { name: 'ratings' }];
      grpcRoute(d).spec.rules[1].backendRefs[1].subset = 'v3';
      policy(d).spec.targetRef = { name: 'reviews', subset: 'v4' };
    },
    expect: [
      { resource: GR, path: 'spec.parentRefs[1].name', message: /"ratings", which does not exist/ },
      { resource: GR, path: 'spec.rules[1].backendRefs[1].subset', message: /no subset "v3"/ },
      { resource: BP, path: 'spec.targetRef.subset', message: /no subset "v4"/ },
    ],
  },
  // AuthorizationPolicy.
  { name: 'AuthorizationPolicy: unknown field in spec', mutate: (d) => { authz(d).spec.action = 'ALLOW'; }, expect: [{ resource: AP, path: 'spec.action', message: /^unknown field \(allowed: targetRef, defaultAction, rules\)$/ }] },
  { name: 'AuthorizationPolicy: unknown field in a rule', mutate: (d) => { aRule(d).source = []; }, expect: [{ resource: AP, path: 'spec.rules[0].source', message: /^unknown field \(allowed: action, from, to\)$/ }] },
  { name: 'AuthorizationPolicy: unknown field in to', mutate: (d) => { aRule(d).to.hosts = ['a']; }, expect: [{ resource: AP, path: 'spec.rules[0].to.hosts', message: /^unknown field \(allowed: paths, methods, grpc\)$/ }] },
  { name: 'AuthorizationPolicy: unknown field in a gRPC method', mutate: (d) => { aRule(d).to.grpc[0].type = 'Exact'; }, expect: [{ resource: AP, path: 'spec.rules[0].to.grpc[0].type', message: /^unknown field \(allowed: service, method\)$/ }] },
  { name: 'AuthorizationPolicy: targetRef is required', mutate: (d) => { delete authz(d).spec.targetRef; }, expect: [{ resource: AP, path: 'spec.targetRef', message: /^is required/ }] },
  { name: 'AuthorizationPolicy: targetRef kind must be Service', mutate: (d) => { authz(d).spec.targetRef.kind = 'HTTPRoute'; }, expect: [{ resource: AP, path: 'spec.targetRef.kind', message: /^must be one of Service/ }] },
  { name: 'AuthorizationPolicy: targetRef takes no subset', mutate: (d) => { authz(d).spec.targetRef.subset = 'v1'; }, expect: [{ resource: AP, path: 'spec.targetRef.subset', message: /^unknown field/ }] },
  { name: 'AuthorizationPolicy: defaultAction ALLOW or DENY', mutate: (d) => { authz(d).spec.defaultAction = 'deny'; }, expect: [{ resource: AP, path: 'spec.defaultAction', message: /^must be one of ALLOW, DENY, got "deny"$/ }] },
  { name: 'AuthorizationPolicy: rules must be a list', mutate: (d) => { authz(d).spec.rules = {}; }, expect: [{ resource: AP, path: 'spec.rules', message: /^must be a list/ }] },
  { name: 'AuthorizationPolicy: at most 64 rules', mutate: (d) => { authz(d).spec.rules = Array.from({ length: 65 }, () => ({ action: 'ALLOW', from: ['*'] })); }, expect: [{ resource: AP, path: 'spec.rules', message: /^must have at most 64 items$/ }] },
  { name: 'AuthorizationPolicy: a rule action is required', mutate: (d) => { delete aRule(d).action; }, expect: [{ resource: AP, path: 'spec.rules[0].action', message: /^is required: one of ALLOW, DENY$/ }] },
  { name: 'AuthorizationPolicy: a rule action ALLOW or DENY', mutate: (d) => { aRule(d).action = 'AUDIT'; }, expect: [{ resource: AP, path: 'spec.rules[0].action', message: /^must be one of ALLOW, DENY/ }] },
  { name: 'AuthorizationPolicy: from is required', mutate: (d) => { delete aRule(d).from; }, expect: [{ resource: AP, path: 'spec.rules[0].from', message: /^is required/ }] },
  { name: 'AuthorizationPolicy: from must not be empty', mutate: (d) => { aRule(d).from = []; }, expect: [{ resource: AP, path: 'spec.rules[0].from', message: /^must have at least 1 item$/ }] },
  { name: 'AuthorizationPolicy: at most 32 callers in from', mutate: (d) => { aRule(d).from = Array.from({ length: 33 }, (_, i) => `spiffe://skein.local/ns/default/sa/s${i}`); }, expect: [{ resource: AP, path: 'spec.rules[0].from', message: /^must have at most 32 items$/ }] },
  ...[
    ['not a SPIFFE ID', 'frontend'],
    ['another scheme', 'https://skein.local/ns/default/sa/frontend'],
    ['a star in the middle', 'spiffe://skein.local/ns/*/sa/frontend'],
    ['a bare star prefix', 'spiffe://*'],
    ['an upper-case trust domain', 'spiffe://Skein.local/ns/a'],
    ['a space', 'spiffe://skein.local/ns/a b'],
  ].map(([what, id]): InvalidCase => ({ name: `AuthorizationPolicy: a caller pattern with ${what} is refused`, mutate: (d) => { aRule(d).from = [id]; }, expect: [{ resource: AP, path: 'spec.rules[0].from[0]', message: /must be '\*' or a SPIFFE ID/ }] })),
  { name: 'AuthorizationPolicy: a caller must be a string', mutate: (d) => { aRule(d).from = [7]; }, expect: [{ resource: AP, path: 'spec.rules[0].from[0]', message: /^must be a string/ }] },
  { name: 'AuthorizationPolicy: to must set something', mutate: (d) => { aRule(d).to = {}; }, expect: [{ resource: AP, path: 'spec.rules[0].to', message: /^must set at least one of paths, methods, grpc/ }] },
  { name: 'AuthorizationPolicy: grpc is not combined with paths', mutate: (d) => { aRule(d).to.paths = ['/a']; }, expect: [{ resource: AP, path: 'spec.rules[0].to.grpc', message: /^cannot be combined with paths or methods/ }] },
  { name: 'AuthorizationPolicy: a path prefix starts with /', mutate: (d) => { aRule(d).to = { paths: ['api'] }; }, expect: [{ resource: AP, path: 'spec.rules[0].to.paths[0]', message: /must be a path prefix starting with '\/'/ }] },
  { name: 'AuthorizationPolicy: a path prefix has no query', mutate: (d) => { aRule(d).to = { paths: ['/a?b=1'] }; }, expect: [{ resource: AP, path: 'spec.rules[0].to.paths[0]', message: /must be a path prefix/ }] },
  { name: 'AuthorizationPolicy: paths must not be empty', mutate: (d) => { aRule(d).to = { paths: [] }; }, expect: [{ resource: AP, path: 'spec.rules[0].to.paths', message: /^must have at least 1 item$/ }] },
  { name: 'AuthorizationPolicy: at most 32 paths', mutate: (d) => { aRule(d).to = { paths: Array.from({ length: 33 }, (_, i) => `/p${i}`) }; }, expect: [{ resource: AP, path: 'spec.rules[0].to.paths', message: /^must have at most 32 items$/ }] },
  { name: 'AuthorizationPolicy: methods are upper case', mutate: (d) => { aRule(d).to = { methods: ['get'] }; }, expect: [{ resource: AP, path: 'spec.rules[0].to.methods[0]', message: /must be an HTTP method in upper case/ }] },
  { name: 'AuthorizationPolicy: a gRPC service is required', mutate: (d) => { aRule(d).to.grpc = [{ method: 'Get' }]; }, expect: [{ resource: AP, path: 'spec.rules[0].to.grpc[0].service', message: /^must be a string, got nothing$/ }] },
  { name: 'AuthorizationPolicy: a gRPC service is a qualified name', mutate: (d) => { aRule(d).to.grpc = [{ service: '/reviews.Reviews/' }]; }, expect: [{ resource: AP, path: 'spec.rules[0].to.grpc[0].service', message: /fully qualified gRPC service name/ }] },
  { name: 'AuthorizationPolicy: a gRPC method is a name', mutate: (d) => { aRule(d).to.grpc = [{ service: 'reviews.Reviews', method: 'Get/*' }]; }, expect: [{ resource: AP, path: 'spec.rules[0].to.grpc[0].method', message: /gRPC method name/ }] },
  {
    name: 'AuthorizationPolicy: every problem of a policy at once',
    mutate: (d) => { authz(d).spec = { targetRef: { name: 'Reviews' }, defaultAction: 'NONE', rules: [{ action: 'ALLOW', from: ['x'] }, { from: ['*'], to: { methods: ['get'] } }] }; },
    expect: [
      { resource: AP, path: 'spec.targetRef.name', message: /DNS label/ },
      { resource: AP, path: 'spec.defaultAction', message: /^must be one of ALLOW, DENY/ },
      { resource: AP, path: 'spec.rules[0].from[0]', message: /SPIFFE ID/ },
      { resource: AP, path: 'spec.rules[1].action', message: /^is required/ },
      { resource: AP, path: 'spec.rules[1].to.methods[0]', message: /upper case/ },
    ],
  },
  {
    name: 'AuthorizationPolicy: policies of one service must agree on defaultAction, naming both',
    mutate: (d) => { d.push(authzDoc('reviews-open', { defaultAction: 'ALLOW', rules: [{ action: 'DENY', from: ['*'], to: { paths: ['/admin'] } }] })); },
    expect: [{ resource: 'AuthorizationPolicy/reviews-open', path: 'spec.defaultAction', message: /^is ALLOW, but AuthorizationPolicy\/reviews-callers \(also for Service "reviews"\) says DENY; .*must agree on defaultAction$/ }],
  },
  // Telemetry (trace sampling) and a rule's tracing.
  { name: 'Telemetry not named mesh', mutate: (d) => { d.push(telemetryDoc('prod', { tracing: { samplingPercent: 5 } })); }, expect: [{ resource: 'Telemetry/prod', path: 'metadata.name', message: /^a Telemetry applies to the whole mesh and must be named "mesh", got "prod"$/ }] },
  { name: 'Telemetry samplingPercent over 100', mutate: (d) => { d.push(telemetryDoc('mesh', { tracing: { samplingPercent: 101 } })); }, expect: [{ resource: 'Telemetry/mesh', path: 'spec.tracing.samplingPercent', message: /^must be <= 100$/ }] },
  { name: 'Telemetry samplingPercent negative', mutate: (d) => { d.push(telemetryDoc('mesh', { tracing: { samplingPercent: -1 } })); }, expect: [{ resource: 'Telemetry/mesh', path: 'spec.tracing.samplingPercent', message: /^must be >= 0$/ }] },
  { name: 'Telemetry samplingPercent finer than 0.0001', mutate: (d) => { d.push(telemetryDoc('mesh', { tracing: { samplingPercent: 0.00001 } })); }, expect: [{ resource: 'Telemetry/mesh', path: 'spec.tracing.samplingPercent', message: /^must be a multiple of 0\.0001/ }] },
  { name: 'Telemetry samplingPercent as a string', mutate: (d) => { d.push(telemetryDoc('mesh', { tracing: { samplingPercent: '1%' } })); }, expect: [{ resource: 'Telemetry/mesh', path: 'spec.tracing.samplingPercent', message: /^must be a number/ }] },
  { name: 'Telemetry unknown field (typo)', mutate: (d) => { d.push(telemetryDoc('mesh', { tracing: { sampling: 1 } })); }, expect: [{ resource: 'Telemetry/mesh', path: 'spec.tracing.sampling', message: /^unknown field \(allowed: samplingPercent\)$/ }] },
  { name: 'a rule\'s tracing samplingPercent over 100', mutate: (d) => { grpcRoute(d).spec.rules[0].tracing = { samplingPercent: 150 }; }, expect: [{ resource: GR, path: 'spec.rules[0].tracing.samplingPercent', message: /^must be <= 100$/ }] },
];

/** A Telemetry document. */
function telemetryDoc(name: string, spec: Doc): Doc { return { apiVersion: V, kind: 'Telemetry', metadata: { name }, spec }; }

function validationIssues(docs: unknown[]): readonly FieldIssue[] {
  try {
    buildMesh(docs);
  } catch (e) {
    assert.ok(e instanceof MeshError, `expected a MeshError, got ${String(e)}`);
    assert.equal(e.code, ErrorCodes.VALIDATION);
    assert.equal(e.code, 'SKEIN_ERR_VALIDATION');
    return e.details;
  }
  assert.fail('buildMesh accepted an invalid config');
}

describe('buildMesh rejects invalid config', () => {
  test('the base config used by the cases is valid', () => {
    const mesh = buildMesh(base());
    assert.equal(mesh.services.size, 2);
    assert.equal(mesh.routes.length, 2);
    assert.equal(mesh.policies.length, 1);
  });

  test('Telemetry and a rule\'s tracing: defaults filled in', () => {
    const docs = base();
    docs.push(telemetryDoc('mesh', {}));
    grpcRoute(docs).spec.rules[0].tracing = { samplingPercent: 12.5 };
    const mesh = buildMesh(docs);
    assert.deepEqual(mesh.telemetry?.spec, { tracing: { samplingPercent: 1 } });
    assert.deepEqual(mesh.routes.find((r) => r.metadata.name === 'reviews-split')?.spec.rules[0]?.tracing, { samplingPercent: 12.5 });
  });

  for (const c of INVALID) {
    test(c.name, () => {
      let docs: unknown[];
      if (c.docs !== undefined) docs = c.docs;
      else { const d = base(); c.mutate!(d); docs = d; }
      const details = validationIssues(docs);
      const shown = JSON.stringify(details, null, 1);
      for (const e of c.expect) {
        assert.ok(
          details.some((d) => d.resource === e.resource && d.path === e.path && e.message.test(d.message)),
          `no issue {${e.resource}, ${e.path}, ${e.message}} in ${shown}`,
        );
      }
      assert.equal(details.length, c.count ?? c.expect.length, `unexpected number of issues: ${shown}`);
    });
  }

  test('the error message summarises the first issues and counts the rest', () => {
    const d = base();
    svc(d).spec.ports = [1, 2, 3, 4, 5, 6, 7].map((n) => ({ name: `p${n}`, port: -n }));
    try { buildMesh(d); assert.fail('expected an error'); } catch (e) {
      assert.ok(e instanceof MeshError);
      assert.equal(e.details.length, 7);
      assert.match(e.message, /^invalid config: Service\/reviews: spec\.ports\[0\]\.port: must be >= 1; /);
      assert.match(e.message, /\(and 2 more\)$/);
      assert.deepEqual(e.toJSON().details, [...e.details]);
    }
  });
});

interface ValidCase {
  name: string;
  mutate: (docs: Doc[]) => void;
  check: (mesh: MeshConfig) => void;
}

const service = (m: MeshConfig, name = 'reviews'): Service => { const s = m.services.get(name); assert.ok(s, `no Service/${name}`); return s; };
const route = (m: MeshConfig, kind: string, name: string): Route => { const r = m.routes.find((x) => x.kind === kind && x.metadata.name === name); assert.ok(r, `no ${kind}/${name}`); return r; };
const onlyPolicy = (m: MeshConfig, name = 'reviews-policy'): BackendPolicy => { const p = m.policies.find((x) => x.metadata.name === name); assert.ok(p, `no BackendPolicy/${name}`); return p; };

const VALID: ValidCase[] = [
  {
    name: 'protocol defaults to grpc',
    mutate: (d) => { delete svc(d).spec.protocol; },
    check: (m) => { assert.equal(service(m).spec.protocol, 'grpc'); assert.equal(service(m, 'web').spec.protocol, 'http'); },
  },
  {
    name: 'mtls defaults to STRICT',
    mutate: () => {},
    check: (m) => { assert.equal(service(m).spec.mtls, 'STRICT'); assert.equal(service(m, 'web').spec.mtls, 'STRICT'); },
  },
  {
    name: 'mtls PERMISSIVE and DISABLE are kept',
    mutate: (d) => { svc(d).spec.mtls = 'PERMISSIVE'; doc(d, 'Service', 'web').spec.mtls = 'DISABLE'; },
    check: (m) => { assert.equal(service(m).spec.mtls, 'PERMISSIVE'); assert.equal(service(m, 'web').spec.mtls, 'DISABLE'); },
  },
  {
    name: 'metadata labels/annotations and static endpoint fields get defaults',
    mutate: (d) => { svc(d).spec.endpoints.push({ address: 'reviews-0.example.internal', port: 50051 }); },
    check: (m) => {
      const s = service(m);
      assert.deepEqual(s.metadata, { name: 'reviews', labels: {}, annotations: {} });
      assert.deepEqual(s.spec.endpoints, [
        { address: '10.0.0.1', port: 50051, labels: { version: 'v1' }, zone: 'zone-a', weight: 1, health: 'HEALTHY' },
        { address: 'reviews-0.example.internal', port: 50051, labels: {}, zone: '', weight: 1, health: 'HEALTHY' },
      ]);
      assert.deepEqual(s.spec.subsets, [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }]);
      assert.deepEqual(service(m, 'web').spec.subsets, []);
      assert.deepEqual(service(m, 'web').spec.endpoints, []);
    },
  },
  {
    name: 'weight defaults to 1, rule name to rule-N, matches to a catch-all, timeout to 0, no retry',
    mutate: () => {},
    check: (m) => {
      const r = route(m, 'GRPCRoute', 'reviews-split');
      assert.deepEqual(r.spec.rules[0], {
        name: 'get',
        matches: [{ headers: [], grpc: { type: 'Exact', service: 'reviews.Reviews', method: 'Get' } }],
        backendRefs: [{ name: 'reviews', subset: 'v1', weight: 1 }],
        timeoutMs: 2000,
      });
      assert.deepEqual(r.spec.rules[1], {
        name: 'rule-1',
        matches: [{ headers: [] }],
        backendRefs: [{ name: 'reviews', subset: 'v1', weight: 90 }, { name: 'reviews', subset: 'v2', weight: 10 }],
        timeoutMs: 0,
      });
      assert.deepEqual(r.spec.hostnames, []);
      assert.deepEqual(route(m, 'HTTPRoute', 'web-api').spec.rules[0]!.matches, [{
        headers: [{ name: 'x-canary', type: 'Exact', value: 'true', invert: false }],
        path: { type: 'PathPrefix', value: '/api' },
        method: 'GET',
      }]);
    },
  },
  {
    name: 'a path match type defaults to PathPrefix',
    mutate: (d) => { httpRoute(d).spec.rules[0].matches[0].path = { value: '/v2' }; },
    check: (m) => assert.deepEqual(route(m, 'HTTPRoute', 'web-api').spec.rules[0]!.matches[0]!.path, { type: 'PathPrefix', value: '/v2' }),
  },
  {
    name: 'a zero weight is allowed when another backend has traffic',
    mutate: (d) => { grpcRoute(d).spec.rules[1].backendRefs[1].weight = 0; },
    check: (m) => assert.deepEqual(route(m, 'GRPCRoute', 'reviews-split').spec.rules[1]!.backendRefs.map((b) => b.weight), [90, 0]),
  },
  {
    name: 'retry defaults: 2 retries, 25ms..250ms backoff, connect-failure,refused-stream,unavailable',
    mutate: (d) => { grpcRoute(d).spec.rules[0].retry = {}; },
    check: (m) => assert.deepEqual(route(m, 'GRPCRoute', 'reviews-split').spec.rules[0]!.retry, {
      retries: 2, retryOn: ['connect-failure', 'refused-stream', 'unavailable'], perTryTimeoutMs: 0, retriableStatusCodes: [], backoff: { baseMs: 25, maxMs: 250 },
    }),
  },
  {
    name: 'retry: status codes imply retriable-status-codes; backoff max defaults to 10x base',
    mutate: (d) => { grpcRoute(d).spec.rules[0].retry = { retries: 0, retryOn: ['5xx'], retriableStatusCodes: [503], perTryTimeout: '1m30s', backoff: { baseInterval: '100ms' } }; },
    check: (m) => assert.deepEqual(route(m, 'GRPCRoute', 'reviews-split').spec.rules[0]!.retry, {
      retries: 0, retryOn: ['5xx', 'retriable-status-codes'], perTryTimeoutMs: 90_000, retriableStatusCodes: [503], backoff: { baseMs: 100, maxMs: 1000 },
    }),
  },
  {
    name: 'header modifier filters fill empty lists',
    mutate: (d) => {
      httpRoute(d).spec.rules[0].filters = [
        { type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'x-a', value: '' }] } },
        { type: 'ResponseHeaderModifier', responseHeaderModifier: { remove: ['server'] } },
      ];
    },
    check: (m) => {
      const rule = route(m, 'HTTPRoute', 'web-api').spec.rules[0]!;
      assert.deepEqual(rule.requestHeaders, { set: [{ name: 'x-a', value: '' }], add: [], remove: [] });
      assert.deepEqual(rule.responseHeaders, { set: [], add: [], remove: ['server'] });
    },
  },
  {
    name: 'Fault defaults: percentage 100; durations become milliseconds',
    mutate: (d) => { grpcRoute(d).spec.rules[0].filters = [{ type: 'Fault', fault: { delay: { fixedDelay: '1.5s' }, abort: { grpcStatus: 14 } } }]; },
    check: (m) => assert.deepEqual(route(m, 'GRPCRoute', 'reviews-split').spec.rules[0]!.fault, {
      delay: { fixedDelayMs: 1500, percentage: 100 }, abort: { grpcStatus: 14, percentage: 100 },
    }),
  },
  {
    name: 'Fault percentages take decimals down to 0.0001, and 0',
    mutate: (d) => {
      grpcRoute(d).spec.rules[0].filters = [{ type: 'Fault', fault: { delay: { fixedDelay: '1ms', percentage: 0.0001 }, abort: { httpStatus: 503, percentage: 12.5 } } }];
      grpcRoute(d).spec.rules[1].filters = [{ type: 'Fault', fault: { abort: { grpcStatus: 0, percentage: 0 } } }];
    },
    check: (m) => {
      const rules = route(m, 'GRPCRoute', 'reviews-split').spec.rules;
      assert.deepEqual(rules[0]!.fault, { delay: { fixedDelayMs: 1, percentage: 0.0001 }, abort: { httpStatus: 503, percentage: 12.5 } });
      assert.deepEqual(rules[1]!.fault, { abort: { grpcStatus: 0, percentage: 0 } });
    },
  },
  {
    name: 'LocalRateLimit defaults: tokensPerFill = maxTokens, fillInterval 1s',
    mutate: (d) => {
      grpcRoute(d).spec.rules[0].filters = [{ type: 'LocalRateLimit', localRateLimit: { maxTokens: 100 } }];
      grpcRoute(d).spec.rules[1].filters = [{ type: 'LocalRateLimit', localRateLimit: { maxTokens: 10, tokensPerFill: 1, fillInterval: '50ms' } }];
    },
    check: (m) => {
      const rules = route(m, 'GRPCRoute', 'reviews-split').spec.rules;
      assert.deepEqual(rules[0]!.localRateLimit, { maxTokens: 100, tokensPerFill: 100, fillIntervalMs: 1000 });
      assert.deepEqual(rules[1]!.localRateLimit, { maxTokens: 10, tokensPerFill: 1, fillIntervalMs: 50 });
      assert.equal(rules[0]!.fault, undefined);
    },
  },
  {
    name: 'all four filter types in one rule',
    mutate: (d) => {
      httpRoute(d).spec.rules[0].filters = [
        { type: 'LocalRateLimit', localRateLimit: { maxTokens: 3, fillInterval: '1m' } },
        { type: 'ResponseHeaderModifier', responseHeaderModifier: { remove: ['server'] } },
        { type: 'Fault', fault: { delay: { fixedDelay: '10ms', percentage: 50 } } },
        { type: 'RequestHeaderModifier', requestHeaderModifier: { add: [{ name: 'x-a', value: '1' }] } },
      ];
    },
    check: (m) => {
      const rule = route(m, 'HTTPRoute', 'web-api').spec.rules[0]!;
      assert.deepEqual([rule.localRateLimit, rule.fault, rule.requestHeaders, rule.responseHeaders], [
        { maxTokens: 3, tokensPerFill: 3, fillIntervalMs: 60_000 },
        { delay: { fixedDelayMs: 10, percentage: 50 } },
        { set: [], add: [{ name: 'x-a', value: '1' }], remove: [] },
        { set: [], add: [], remove: ['server'] },
      ]);
    },
  },
  {
    name: 'healthCheck defaults: interval 10s, timeout 1s, healthy 1, unhealthy 3',
    mutate: (d) => { policy(d).spec.healthCheck = { grpc: {} }; },
    check: (m) => assert.deepEqual(onlyPolicy(m).spec.healthCheck, { intervalMs: 10_000, timeoutMs: 1_000, healthyThreshold: 1, unhealthyThreshold: 3, grpc: { service: '' } }),
  },
  {
    name: 'healthCheck http defaults: /healthz, [200]',
    mutate: (d) => { policy(d).spec.healthCheck = { http: {}, interval: '2s', unhealthyThreshold: 5 }; },
    check: (m) => assert.deepEqual(onlyPolicy(m).spec.healthCheck, { intervalMs: 2_000, timeoutMs: 1_000, healthyThreshold: 1, unhealthyThreshold: 5, http: { path: '/healthz', expectedStatuses: [200] } }),
  },
  {
    name: 'retryBudget defaults: 20% / 3',
    mutate: (d) => { policy(d).spec.retryBudget = {}; },
    check: (m) => assert.deepEqual(onlyPolicy(m).spec.retryBudget, { budgetPercent: 20, minRetryConcurrency: 3 }),
  },
  {
    name: 'targetRef kind defaults to Service; durations become milliseconds',
    mutate: (d) => {
      policy(d).spec.targetRef = { name: 'reviews', subset: 'v2' };
      policy(d).spec.outlierDetection = { interval: '1m30s', baseEjectionTime: '1.5s', successRate: {} };
      policy(d).spec.connectionPool = { connectTimeout: '250ms', idleTimeout: '1h' };
    },
    check: (m) => {
      const p = onlyPolicy(m);
      assert.deepEqual(p.spec.targetRef, { kind: 'Service', name: 'reviews', subset: 'v2' });
      assert.deepEqual(p.spec.outlierDetection, { intervalMs: 90_000, baseEjectionTimeMs: 1_500, successRate: {} });
      assert.deepEqual(p.spec.connectionPool, { connectTimeoutMs: 250, idleTimeoutMs: 3_600_000 });
    },
  },
  {
    name: 'the same name across kinds is allowed',
    mutate: (d) => {
      grpcRoute(d).metadata.name = 'reviews';
      policy(d).metadata.name = 'reviews';
    },
    check: (m) => {
      assert.equal(service(m).metadata.name, 'reviews');
      assert.equal(route(m, 'GRPCRoute', 'reviews').metadata.name, 'reviews');
      assert.equal(onlyPolicy(m, 'reviews').metadata.name, 'reviews');
    },
  },
  {
    name: 'a 63-character name is allowed',
    mutate: (d) => { policy(d).metadata.name = 'a'.repeat(63); },
    check: (m) => assert.equal(m.policies[0]!.metadata.name.length, 63),
  },
  {
    name: 'routes are ordered by name, kinds interleaved; policies by name',
    mutate: (d) => {
      d.push({ apiVersion: V, kind: 'HTTPRoute', metadata: { name: 'a-first' }, spec: { parentRefs: [{ name: 'web' }], rules: [{ backendRefs: [{ name: 'web' }] }] } });
      d.push({ apiVersion: V, kind: 'BackendPolicy', metadata: { name: 'a-policy' }, spec: { targetRef: { name: 'web' } } });
    },
    check: (m) => {
      assert.deepEqual(m.routes.map((r) => `${r.kind}/${r.metadata.name}`), ['HTTPRoute/a-first', 'GRPCRoute/reviews-split', 'HTTPRoute/web-api']);
      assert.deepEqual(m.policies.map((p) => p.metadata.name), ['a-policy', 'reviews-policy']);
    },
  },
  {
    name: 'AuthorizationPolicy defaults: targetRef kind Service, defaultAction DENY; rules and to are kept as written',
    mutate: () => {},
    check: (m) => {
      assert.deepEqual(m.authorizationPolicies.map((p) => p.spec), [{
        targetRef: { kind: 'Service', name: 'reviews' },
        defaultAction: 'DENY',
        rules: [
          { action: 'DENY', from: ['spiffe://skein.local/ns/test/*'], to: { grpc: [{ service: 'reviews.Reviews', method: 'Delete' }] } },
          { action: 'ALLOW', from: ['spiffe://skein.local/ns/default/sa/frontend', '*'] },
        ],
      }]);
    },
  },
  {
    name: 'AuthorizationPolicy: no rules (deny every caller), paths with methods, a whole gRPC service',
    mutate: (d) => {
      authz(d).spec = { targetRef: { name: 'reviews' } };
      d.push(authzDoc('web-callers', { targetRef: { name: 'web' }, defaultAction: 'ALLOW', rules: [{ action: 'DENY', from: ['spiffe://skein.local/ns/default/sa/*'], to: { paths: ['/admin', '/debug/'], methods: ['POST', 'DELETE'] } }] }));
      d.push(authzDoc('reviews-grpc', { rules: [{ action: 'ALLOW', from: ['*'], to: { grpc: [{ service: 'reviews.Reviews' }] } }] }));
    },
    check: (m) => {
      assert.deepEqual(m.authorizationPolicies.map((p) => p.metadata.name), ['reviews-callers', 'reviews-grpc', 'web-callers']);
      assert.deepEqual(m.authorizationPolicies[0]!.spec, { targetRef: { kind: 'Service', name: 'reviews' }, defaultAction: 'DENY', rules: [] });
      assert.deepEqual(m.authorizationPolicies[1]!.spec.rules[0]!.to, { grpc: [{ service: 'reviews.Reviews' }] });
      assert.deepEqual(m.authorizationPolicies[2]!.spec.rules[0]!.to, { paths: ['/admin', '/debug/'], methods: ['POST', 'DELETE'] });
    },
  },
  {
    name: 'AuthorizationPolicy: a policy for a Service that does not exist (yet) is accepted',
    mutate: (d) => { d.push(authzDoc('later', { targetRef: { name: 'ratings' }, defaultAction: 'ALLOW' })); },
    check: (m) => assert.deepEqual(m.authorizationPolicies.map((p) => p.spec.targetRef.name), ['ratings', 'reviews']),
  },
  {
    name: 'AuthorizationPolicy: policies of one service that agree on defaultAction combine; other services may differ',
    mutate: (d) => {
      d.push(authzDoc('reviews-more', { rules: [{ action: 'ALLOW', from: ['spiffe://skein.local/ns/ops/sa/admin'] }] }));
      d.push(authzDoc('web-open', { targetRef: { name: 'web' }, defaultAction: 'ALLOW' }));
    },
    check: (m) => assert.deepEqual(m.authorizationPolicies.map((p) => `${p.metadata.name}:${p.spec.defaultAction}`), ['reviews-callers:DENY', 'reviews-more:DENY', 'web-open:ALLOW']),
  },  {
    name: 'dependsOn: absent means every service (no field); a list of existing Services, itself included, is kept',
    mutate: (d) => { svc(d).spec.dependsOn = ['web', 'reviews']; },
    check: (m) => {
      assert.deepEqual(m.services.get('reviews')!.spec.dependsOn, ['web', 'reviews']);
      assert.equal('dependsOn' in m.services.get('web')!.spec, false);
    },
  },
];

describe('buildMesh accepts valid config and fills in defaults', () => {
  for (const c of VALID) {
    test(c.name, () => {
      const d = base();
      c.mutate(d);
      c.check(buildMesh(d));
    });
  }
});

describe('parseDocuments', () => {
  const svcYaml = (name: string) => `apiVersion: ${V}\nkind: Service\nmetadata:\n  name: ${name}\nspec:\n  ports: [{name: grpc, port: 50051}]\n`;

  test('multi-document YAML, empty documents skipped', () => {
    const docs = parseDocuments(`---\n${svcYaml('a')}---\n---\n# only a comment\n---\n${svcYaml('b')}---\n`);
    assert.deepEqual(docs.map((d) => (d as Doc)['metadata']['name']), ['a', 'b']);
    assert.deepEqual(docs[0], { apiVersion: V, kind: 'Service', metadata: { name: 'a' }, spec: { ports: [{ name: 'grpc', port: 50051 }] } });
    assert.equal(buildMesh(docs).services.size, 2);
  });

  test('a JSON object', () => {
    assert.deepEqual(parseDocuments('{"kind": "Service", "metadata": {"name": "a"}}'), [{ kind: 'Service', metadata: { name: 'a' } }]);
  });

  test('a JSON list', () => {
    assert.deepEqual(parseDocuments('[{"kind": "Service"}, {"kind": "HTTPRoute"}]'), [{ kind: 'Service' }, { kind: 'HTTPRoute' }]);
  });

  test('a {kind: List, items} wrapper is unwrapped', () => {
    assert.deepEqual(parseDocuments('{"kind": "List", "items": [{"kind": "Service"}, {"kind": "GRPCRoute"}]}'), [{ kind: 'Service' }, { kind: 'GRPCRoute' }]);
    assert.deepEqual(parseDocuments('kind: List\nitems:\n  - kind: Service\n'), [{ kind: 'Service' }]);
  });

  test('a document with kind List but no items list is kept as is', () => {
    assert.deepEqual(parseDocuments('kind: List\nitems: 3\n'), [{ kind: 'List', items: 3 }]);
  });

  test('empty input gives no documents', () => {
    assert.deepEqual(parseDocuments(''), []);
    assert.deepEqual(parseDocuments('---\n---\n'), []);
  });

  const malformed: [string, string, RegExp][] = [
    ['unterminated flow sequence', 'a: [1, 2\nb: c\n', /line 2, column 1/],
    ['duplicate keys', 'apiVersion: x\nkind: Service\nkind: HTTPRoute\n', /line 3, column 1: Map keys must be unique/],
    ['duplicate keys in JSON', '{"a": 1, "a": 2}', /Map keys must be unique/],
    ['bad indentation in the second document (line counted from the start)', `${svcYaml('a')}---\na: b: c\n`, /line 8, column 4/],
  ];
  test('deep nesting is refused before the yaml parser recurses (after a stack overflow in it, a later parse aborted the process)', () => {
    for (const text of ['['.repeat(100_000) + ']'.repeat(100_000), '{"a":'.repeat(50_000) + '1' + '}'.repeat(50_000), `${'- '.repeat(3000)}a`, `${' '.repeat(5000)}a: 1`]) {
      assert.throws(() => parseDocuments(text), (e: unknown) => e instanceof MeshError && e.code === ErrorCodes.MALFORMED_INPUT && /nested|indented/.test(e.message));
    }
    assert.deepEqual(parseDocuments(`${'['.repeat(64)}${']'.repeat(64)}`), [nestedList(62)], 'a top-level list is spread into documents');
    assert.deepEqual(parseDocuments('a: 1'), [{ a: 1 }]);
  });

  test('a YAML alias bomb and an alias without its anchor are malformed input, not internal errors', () => {
    const bomb = 'a: &a [1,2,3,4,5,6,7,8,9,10]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n';
    for (const [text, message] of [[bomb, /^body: .*alias/i], ['*a', /^body: .*alias/i]] as const) {
      assert.throws(() => parseDocuments(text), (e: unknown) => e instanceof MeshError && e.code === ErrorCodes.MALFORMED_INPUT && message.test(e.message));
    }
  });

  test('duplicate keys are found in linear time: a 100,000-key map parses at once', () => {
    const keys = Array.from({ length: 100_000 }, (_, i) => `"k${i}": ""`).join(',');
    assert.equal(Object.keys(parseDocuments(`{${keys}}`)[0] as object).length, 100_000);
    assert.throws(() => parseDocuments(`{${keys}, "k5": 1}`), /Map keys must be unique/);
  });

  for (const [name, text, message] of malformed) {
    test(`malformed input is rejected: ${name}`, () => {
      assert.throws(() => parseDocuments(text), (e: unknown) => {
        assert.ok(e instanceof MeshError);
        assert.equal(e.code, ErrorCodes.MALFORMED_INPUT);
        assert.match(e.message, /^malformed YAML\/JSON: line \d+, column \d+: /);
        assert.match(e.message, message);
        return true;
      });
    });
  }
});

function nestedList(depth: number): unknown {
  let v: unknown[] = [];
  for (let i = 0; i < depth; i++) v = [v];
  return v;
}

describe('durations', () => {
  const good: [string, number][] = [
    ['0', 0], ['0s', 0], ['1ms', 1], ['250ms', 250], ['5s', 5_000], ['1.5s', 1_500], ['0.25s', 250],
    ['2m', 120_000], ['1m30s', 90_000], ['1h', 3_600_000], ['1h30m', 5_400_000], ['1s500ms', 1_500],
  ];
  for (const [text, ms] of good) {
    test(`parseDuration(${JSON.stringify(text)}) = ${ms}`, () => assert.equal(parseDuration(text), ms));
  }

  const bad: [string, RegExp][] = [
    ['5', /use a number with a unit/], ['5 s', /use a number with a unit/], ['-1s', /use a number with a unit/],
    ['1.5ms', /finer than one millisecond/], ['0.0001s', /finer than one millisecond/], ['', /must not be empty/],
    ['s', /use a number with a unit/], ['5x', /use a number with a unit/], [' 5s', /use a number with a unit/],
    ['5s ', /use a number with a unit/], ['1d', /use a number with a unit/], ['.5s', /use a number with a unit/],
  ];
  for (const [text, message] of bad) {
    test(`parseDuration(${JSON.stringify(text)}) is an error`, () => {
      const r = parseDuration(text);
      assert.equal(typeof r, 'object', `accepted ${JSON.stringify(text)} as ${String(r)}`);
      assert.match((r as { error: string }).error, message);
      assert.ok((r as { error: string }).error.includes(`"${text}"`));
    });
  }

  const formatted: [number, string][] = [
    [0, '0s'], [1, '1ms'], [250, '250ms'], [1_500, '1500ms'], [5_000, '5s'], [90_000, '90s'],
    [120_000, '2m'], [5_400_000, '90m'], [3_600_000, '1h'], [86_400_000, '24h'],
  ];
  for (const [ms, text] of formatted) {
    test(`formatDuration(${ms}) = ${text} and parses back`, () => {
      assert.equal(formatDuration(ms), text);
      assert.equal(parseDuration(text), ms);
    });
  }

  test('parse(format(ms)) round-trips over a range of values', () => {
    for (const ms of [0, 1, 7, 999, 1_000, 1_001, 59_999, 60_000, 61_000, 3_599_999, 3_600_000, 3_600_001, 86_400_000]) {
      assert.equal(parseDuration(formatDuration(ms)), ms, `round trip of ${ms}`);
    }
  });

  test('format(parse(text)) is the canonical form', () => {
    for (const [text, canonical] of [['1m30s', '90s'], ['60s', '1m'], ['1000ms', '1s'], ['0.5s', '500ms'], ['0', '0s'], ['60m', '1h']]) {
      assert.equal(formatDuration(parseDuration(text!) as number), canonical);
    }
  });

  test('toProtoDuration splits into seconds and nanos', () => {
    assert.deepEqual(toProtoDuration(0), { seconds: 0, nanos: 0 });
    assert.deepEqual(toProtoDuration(1_500), { seconds: 1, nanos: 500_000_000 });
    assert.deepEqual(toProtoDuration(250), { seconds: 0, nanos: 250_000_000 });
    assert.deepEqual(toProtoDuration(90_000), { seconds: 90, nanos: 0 });
  });
});
