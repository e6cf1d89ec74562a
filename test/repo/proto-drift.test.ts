/**
 * Guards our proto/ subset against drift from Envoy's upstream v3 protos (as
 * shipped by @grpc/grpc-js-xds under deps/): every message, enum and service we
 * define must exist upstream with identical field numbers/types/labels, enum
 * values and RPC signatures, and our encodings must decode with upstream.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as protobuf from 'protobufjs';
import { PROTO_DIR } from '../../shared/src/paths';
import { TYPE_URLS, decodeAny, encodeAny, loadAdsServiceDefinition, xdsRoot } from '../../shared/src/xds/protos';

const DEPS_DIR = path.join(path.dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');
const UPSTREAM_INCLUDE_DIRS = [
  ...['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => path.join(DEPS_DIR, d)),
  // google/protobuf/descriptor.proto (imported by the annotation protos) is not a
  // protobufjs built-in, but protobufjs ships its source.
  path.dirname(require.resolve('protobufjs/package.json')),
];

function subsetFiles(dir = PROTO_DIR): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return p === path.join(PROTO_DIR, 'skein') ? [] : subsetFiles(p); // our own app protos
    return e.name.endsWith('.proto') ? [path.relative(PROTO_DIR, p).split(path.sep).join('/')] : [];
  });
}

let upstreamCache: protobuf.Root | undefined;
/** Upstream root holding the upstream version of every file in our subset (same relative paths). */
function upstreamRoot(): protobuf.Root {
  if (upstreamCache) return upstreamCache;
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => {
    if (path.isAbsolute(target)) return target;
    for (const dir of UPSTREAM_INCLUDE_DIRS) {
      const full = path.join(dir, target);
      if (fs.existsSync(full)) return full;
    }
    throw new Error(`upstream proto ${target} not found in ${UPSTREAM_INCLUDE_DIRS.join(', ')}`);
  };
  root.loadSync(subsetFiles(), { keepCase: true });
  root.resolveAll();
  upstreamCache = root;
  return root;
}

function typeName(field: protobuf.Field): string {
  return field.resolvedType ? field.resolvedType.fullName : field.type;
}

interface DriftReport {
  problems: string[];
  counts: { messages: number; fields: number; enums: number; services: number };
}

function compareSubset(ours: protobuf.Root, upstream: protobuf.Root): DriftReport {
  const problems: string[] = [];
  const counts = { messages: 0, fields: 0, enums: 0, services: 0 };

  const visit = (ns: protobuf.NamespaceBase): void => {
    for (const obj of ns.nestedArray) {
      // google.protobuf.* are protobufjs built-ins, not part of our subset.
      if (obj.fullName === '.google.protobuf') continue;
      // .skein.* are our own messages (the demo service, our LB extension): nothing upstream to match.
      if (obj.fullName === '.skein') continue;
      const up = upstream.lookup(obj.fullName);
      if (obj instanceof protobuf.Type) {
        counts.messages++;
        if (!(up instanceof protobuf.Type)) {
          problems.push(`message ${obj.fullName}: not a message upstream`);
        } else {
          for (const field of obj.fieldsArray) {
            counts.fields++;
            const where = `${obj.fullName}.${field.name}`;
            const upField = up.fields[field.name];
            if (!upField) {
              problems.push(`${where}: no such field upstream`);
              continue;
            }
            const check = (what: string, mine: unknown, theirs: unknown): void => {
              if (mine !== theirs) problems.push(`${where}: ${what} is ${String(mine)}, upstream ${String(theirs)}`);
            };
            check('field number', field.id, upField.id);
            check('type', typeName(field), typeName(upField));
            check('repeated', field.repeated, upField.repeated);
            check('map', field.map, upField.map);
            const keyType = (f: protobuf.Field): string | undefined => (f instanceof protobuf.MapField ? f.keyType : undefined);
            check('map key type', keyType(field), keyType(upField));
            check('oneof', field.partOf?.name, upField.partOf?.name);
          }
        }
      } else if (obj instanceof protobuf.Enum) {
        counts.enums++;
        if (!(up instanceof protobuf.Enum)) {
          problems.push(`enum ${obj.fullName}: not an enum upstream`);
        } else {
          for (const [name, num] of Object.entries(obj.values)) {
            if (up.values[name] !== num) {
              problems.push(`enum ${obj.fullName}.${name}: value ${num}, upstream ${String(up.values[name])}`);
            }
          }
        }
      } else if (obj instanceof protobuf.Service) {
        counts.services++;
        if (!(up instanceof protobuf.Service)) {
          problems.push(`service ${obj.fullName}: not a service upstream`);
        } else {
          for (const method of obj.methodsArray) {
            const where = `rpc ${obj.fullName}.${method.name}`;
            const upMethod = up.methods[method.name];
            if (!upMethod) {
              problems.push(`${where}: no such method upstream`);
              continue;
            }
            const sig = (m: protobuf.Method): string =>
              `(${m.requestStream ? 'stream ' : ''}${m.resolvedRequestType?.fullName}) returns ` +
              `(${m.responseStream ? 'stream ' : ''}${m.resolvedResponseType?.fullName})`;
            if (sig(method) !== sig(upMethod)) problems.push(`${where}: ${sig(method)}, upstream ${sig(upMethod)}`);
          }
        }
      }
      if (obj instanceof protobuf.Namespace) visit(obj); // nested messages/enums (and packages)
    }
  };
  visit(ours);
  return { problems, counts };
}

test('proto/ subset matches upstream Envoy v3 protos (names, field numbers, types, labels, oneofs, enums, rpcs)', () => {
  const { problems, counts } = compareSubset(xdsRoot, upstreamRoot());
  assert.deepEqual(problems, [], `proto drift against upstream:\n  ${problems.join('\n  ')}`);
  // Make sure the walk really covered the subset.
  assert.ok(counts.messages >= 100, `only ${counts.messages} messages checked`);
  assert.ok(counts.fields >= 500, `only ${counts.fields} fields checked`);
  assert.ok(counts.enums >= 20, `only ${counts.enums} enums checked`);
  assert.equal(counts.services, 1);
});

test('drift check reports a changed field number or type', () => {
  const ours = new protobuf.Root();
  ours.resolvePath = (_o, t) => (path.isAbsolute(t) ? t : path.join(PROTO_DIR, t));
  ours.loadSync(path.join(PROTO_DIR, 'envoy/config/core/v3/address.proto'), { keepCase: true });
  const socketAddress = ours.lookupType('envoy.config.core.v3.SocketAddress');
  socketAddress.fields.resolver_name!.id = 99;
  socketAddress.fields.ipv4_compat!.type = 'string';
  const { problems } = compareSubset(ours, upstreamRoot());
  assert.deepEqual(problems, [
    '.envoy.config.core.v3.SocketAddress.resolver_name: field number is 99, upstream 5',
    '.envoy.config.core.v3.SocketAddress.ipv4_compat: type is string, upstream bool',
  ]);
});

/** Decode with the UPSTREAM root using the same conversion conventions as decodeAny. */
function upstreamDecode(any: { type_url: string; value: Uint8Array }): any {
  const type = upstreamRoot().lookupType(any.type_url.slice(any.type_url.lastIndexOf('/') + 1));
  return type.toObject(type.decode(any.value), { longs: String, enums: String, defaults: false, oneofs: true });
}

test('resources encoded with our subset decode with the upstream protos', () => {
  // --- Listener: api_listener -> HCM (RDS over ADS) -> router filter.
  const router = encodeAny(TYPE_URLS.ROUTER, { suppress_envoy_headers: true });
  const hcm = encodeAny(TYPE_URLS.HCM, {
    stat_prefix: 'ingress_http',
    codec_type: 'AUTO',
    rds: { route_config_name: 'local_route', config_source: { ads: {}, resource_api_version: 'V3' } },
    http_filters: [{ name: 'envoy.filters.http.router', typed_config: router }],
    stream_idle_timeout: { seconds: 300 },
  });
  const listener = upstreamDecode(
    encodeAny(TYPE_URLS.LISTENER, { name: 'outbound|8080', api_listener: { api_listener: hcm }, traffic_direction: 'OUTBOUND' }),
  );
  assert.equal(listener.name, 'outbound|8080');
  assert.equal(listener.traffic_direction, 'OUTBOUND');
  assert.equal(listener.api_listener.api_listener.type_url, TYPE_URLS.HCM);
  const upHcm = upstreamDecode(listener.api_listener.api_listener);
  assert.equal(upHcm.stat_prefix, 'ingress_http');
  assert.equal(upHcm.route_specifier, 'rds');
  assert.equal(upHcm.rds.route_config_name, 'local_route');
  assert.deepEqual(upHcm.rds.config_source.ads, {});
  assert.equal(upHcm.rds.config_source.resource_api_version, 'V3');
  assert.equal(upHcm.stream_idle_timeout.seconds, '300');
  assert.equal(upHcm.http_filters[0].name, 'envoy.filters.http.router');
  assert.equal(upHcm.http_filters[0].typed_config.type_url, TYPE_URLS.ROUTER);
  assert.equal(upstreamDecode(upHcm.http_filters[0].typed_config).suppress_envoy_headers, true);

  // --- RouteConfiguration with weighted_clusters and retry_policy.
  const route = upstreamDecode(
    encodeAny(TYPE_URLS.ROUTE, {
      name: 'local_route',
      virtual_hosts: [
        {
          name: 'reviews',
          domains: ['reviews', 'reviews:9080'],
          routes: [
            {
              name: 'default',
              match: { prefix: '/', headers: [{ name: 'x-canary', string_match: { exact: '1' } }] },
              route: {
                weighted_clusters: {
                  clusters: [
                    { name: 'reviews-v1', weight: { value: 90 } },
                    { name: 'reviews-v2', weight: { value: 10 } },
                  ],
                },
                timeout: { seconds: 15 },
                retry_policy: {
                  retry_on: '5xx,reset',
                  num_retries: { value: 3 },
                  per_try_timeout: { seconds: 2, nanos: 500_000_000 },
                  retry_back_off: { base_interval: { nanos: 25_000_000 }, max_interval: { seconds: 1 } },
                  retriable_status_codes: [503],
                },
                hash_policy: [{ header: { header_name: 'x-user' }, terminal: true }],
              },
            },
          ],
        },
      ],
    }),
  );
  const r = route.virtual_hosts[0].routes[0];
  assert.equal(route.virtual_hosts[0].name, 'reviews');
  assert.deepEqual(route.virtual_hosts[0].domains, ['reviews', 'reviews:9080']);
  assert.equal(r.match.prefix, '/');
  assert.equal(r.match.headers[0].string_match.exact, '1');
  assert.equal(r.action, 'route');
  assert.deepEqual(
    r.route.weighted_clusters.clusters.map((c: any) => [c.name, c.weight.value]),
    [['reviews-v1', 90], ['reviews-v2', 10]],
  );
  assert.equal(r.route.retry_policy.retry_on, '5xx,reset');
  assert.equal(r.route.retry_policy.num_retries.value, 3);
  assert.deepEqual(r.route.retry_policy.per_try_timeout, { seconds: '2', nanos: 500_000_000 });
  assert.equal(r.route.retry_policy.retry_back_off.base_interval.nanos, 25_000_000);
  assert.deepEqual(r.route.retry_policy.retriable_status_codes, [503]);
  assert.equal(r.route.hash_policy[0].header.header_name, 'x-user');
  assert.equal(r.route.hash_policy[0].terminal, true);

  // --- Cluster: EDS over ADS, circuit breakers, outlier detection, HTTP/2 upstream.
  const cluster = upstreamDecode(
    encodeAny(TYPE_URLS.CLUSTER, {
      name: 'reviews-v1',
      type: 'EDS',
      eds_cluster_config: { eds_config: { ads: {}, resource_api_version: 'V3' }, service_name: 'reviews-v1' },
      connect_timeout: { seconds: 1 },
      lb_policy: 'LEAST_REQUEST',
      circuit_breakers: {
        thresholds: [{ priority: 'DEFAULT', max_connections: { value: 1024 }, max_pending_requests: { value: 64 }, max_retries: { value: 3 } }],
      },
      outlier_detection: {
        consecutive_5xx: { value: 5 },
        interval: { seconds: 10 },
        base_ejection_time: { seconds: 30 },
        max_ejection_percent: { value: 50 },
      },
      typed_extension_protocol_options: {
        'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': encodeAny(TYPE_URLS.HTTP_PROTOCOL_OPTIONS, {
          explicit_http_config: { http2_protocol_options: { max_concurrent_streams: { value: 100 } } },
        }),
      },
    }),
  );
  assert.equal(cluster.name, 'reviews-v1');
  assert.equal(cluster.type, 'EDS');
  assert.equal(cluster.cluster_discovery_type, 'type');
  assert.deepEqual(cluster.eds_cluster_config.eds_config.ads, {});
  assert.equal(cluster.eds_cluster_config.service_name, 'reviews-v1');
  assert.equal(cluster.connect_timeout.seconds, '1');
  assert.equal(cluster.lb_policy, 'LEAST_REQUEST');
  assert.equal(cluster.circuit_breakers.thresholds[0].max_connections.value, 1024);
  assert.equal(cluster.circuit_breakers.thresholds[0].max_pending_requests.value, 64);
  assert.equal(cluster.circuit_breakers.thresholds[0].max_retries.value, 3);
  assert.equal(cluster.outlier_detection.consecutive_5xx.value, 5);
  assert.equal(cluster.outlier_detection.base_ejection_time.seconds, '30');
  assert.equal(cluster.outlier_detection.max_ejection_percent.value, 50);
  const hpo = upstreamDecode(cluster.typed_extension_protocol_options['envoy.extensions.upstreams.http.v3.HttpProtocolOptions']);
  assert.equal(hpo.explicit_http_config.http2_protocol_options.max_concurrent_streams.value, 100);

  // --- ClusterLoadAssignment.
  const cla = upstreamDecode(
    encodeAny(TYPE_URLS.ENDPOINT, {
      cluster_name: 'reviews-v1',
      endpoints: [
        {
          locality: { region: 'eu-west', zone: 'eu-west-1a' },
          priority: 1,
          load_balancing_weight: { value: 7 },
          lb_endpoints: [
            {
              endpoint: { address: { socket_address: { address: '10.0.0.7', port_value: 9080 } } },
              health_status: 'HEALTHY',
              load_balancing_weight: { value: 3 },
            },
          ],
        },
      ],
      policy: { overprovisioning_factor: { value: 140 } },
    }),
  );
  assert.equal(cla.cluster_name, 'reviews-v1');
  assert.equal(cla.endpoints[0].locality.zone, 'eu-west-1a');
  assert.equal(cla.endpoints[0].priority, 1);
  assert.equal(cla.endpoints[0].load_balancing_weight.value, 7);
  const lbe = cla.endpoints[0].lb_endpoints[0];
  assert.equal(lbe.endpoint.address.socket_address.address, '10.0.0.7');
  assert.equal(lbe.endpoint.address.socket_address.port_value, 9080);
  assert.equal(lbe.health_status, 'HEALTHY');
  assert.equal(lbe.load_balancing_weight.value, 3);
  assert.equal(cla.policy.overprovisioning_factor.value, 140);
});

test('upstream-encoded resources decode identically with decodeAny', () => {
  const upType = upstreamRoot().lookupType('envoy.config.cluster.v3.Cluster');
  const obj = {
    name: 'c',
    type: 'STRICT_DNS',
    dns_lookup_family: 'V4_ONLY',
    circuit_breakers: { thresholds: [{ max_requests: { value: 9 } }] },
    cleanup_interval: { seconds: '7' },
  };
  const value = Buffer.from(upType.encode(upType.fromObject(obj)).finish());
  assert.deepEqual(decodeAny({ type_url: TYPE_URLS.CLUSTER, value }), { ...obj, cluster_discovery_type: 'type' });
});

test('an RBAC http filter encoded with our subset decodes with the upstream protos', () => {
  const principal = { authenticated: { principal_name: { prefix: 'spiffe://skein.local/ns/prod/' } } };
  const permission = { and_rules: { rules: [{ url_path: { path: { prefix: '/api/' } } }, { header: { name: ':method', string_match: { exact: 'GET' } } }] } };
  const rbac = upstreamDecode(encodeAny(TYPE_URLS.RBAC, { rules: { action: 'DENY', policies: { 'p/rules[0]': { principals: [principal], permissions: [permission] } } } }));
  assert.equal(rbac.rules.action, 'DENY');
  const p = rbac.rules.policies['p/rules[0]'];
  assert.equal(p.principals[0].authenticated.principal_name.prefix, 'spiffe://skein.local/ns/prod/');
  assert.equal(p.permissions[0].and_rules.rules[0].url_path.path.prefix, '/api/');
  assert.equal(p.permissions[0].and_rules.rules[1].header.string_match.exact, 'GET');
});

test('encodeAny rejects invalid objects, naming the type', () => {
  assert.throws(() => encodeAny(TYPE_URLS.CLUSTER, { nmae: 'x' }), /envoy\.config\.cluster\.v3\.Cluster.*nmae: unknown field/);
  assert.throws(() => encodeAny(TYPE_URLS.CLUSTER, { type: 'EDSS' }), /Cluster.*type: unknown DiscoveryType value EDSS/);
  assert.throws(() => encodeAny(TYPE_URLS.CLUSTER, { eds_cluster_config: 'x' }), /Cluster.*object expected/);
  assert.throws(() => encodeAny('type.googleapis.com/envoy.Nope', {}), /unknown message type envoy\.Nope/);
});

test('ADS service definition has both bidi-streaming RPCs', () => {
  const svc = loadAdsServiceDefinition();
  for (const [name, req] of [
    ['StreamAggregatedResources', 'DiscoveryRequest'],
    ['DeltaAggregatedResources', 'DeltaDiscoveryRequest'],
  ] as const) {
    const m = svc[name];
    assert.ok(m, name);
    assert.equal(m.path, `/envoy.service.discovery.v3.AggregatedDiscoveryService/${name}`);
    assert.equal(m.requestStream, true);
    assert.equal(m.responseStream, true);
    // Round-trip through the gRPC (de)serializers with the documented conventions.
    const msg = { type_url: TYPE_URLS.CLUSTER, response_nonce: 'n1', node: { id: 'sidecar~1', cluster: 'reviews' } };
    const decoded = m.requestDeserialize(m.requestSerialize(msg)) as Record<string, unknown>;
    assert.deepEqual(decoded, msg, `${req} round trip`);
  }
  const resp = svc.StreamAggregatedResources!;
  const any = encodeAny(TYPE_URLS.CLUSTER, { name: 'c' });
  const out = resp.responseDeserialize(resp.responseSerialize({ version_info: '1', type_url: TYPE_URLS.CLUSTER, resources: [any] })) as any;
  assert.ok(Buffer.isBuffer(out.resources[0].value));
  assert.deepEqual(decodeAny(out.resources[0]), { name: 'c' });
});
