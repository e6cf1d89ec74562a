/**
 * Envoy xDS v3 protobuf plumbing, backed by our own subset of the upstream
 * protos in proto/ (see test/repo/proto-drift.test.ts for the compatibility check).
 *
 * Object conventions (the same for encodeAny/decodeAny and the ADS gRPC
 * service definition, so objects can be passed between them unchanged):
 *  - Keys are the proto field names, snake_case (keepCase: true).
 *  - Enums are their value names as strings ('EDS', 'HEALTHY'); numbers are
 *    also accepted on input.
 *  - 64-bit integers (int64/uint64, UInt64Value.value) are decimal strings;
 *    numbers are also accepted on input.
 *  - google.protobuf.Duration / Timestamp are {seconds: string, nanos: number}
 *    (seconds is int64, so a string on output).
 *  - Wrapper types (UInt32Value, BoolValue, ...) are {value: x}.
 *  - google.protobuf.Struct uses protobufjs's built-in field names, i.e.
 *    {fields: {k: {stringValue | numberValue | boolValue | nullValue |
 *    structValue | listValue}}} (camelCase there, unlike our own messages).
 *  - google.protobuf.Any is {type_url, value: Buffer} (never '@type' JSON);
 *    nested Anys are left packed: decode them with decodeAny.
 *  - bytes fields are Buffers on output (Buffer/Uint8Array/base64 on input).
 *  - Defaults are omitted on output (defaults: false): an unset/zero scalar
 *    is absent, and a set message field is present even if empty (e.g. ads: {}).
 *  - Oneofs: output carries an extra virtual key named after the oneof whose
 *    value is the name of the set member (e.g. port_specifier: 'port_value').
 *    Such keys are ignored on input.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import * as protobuf from 'protobufjs';
import { PROTO_DIR } from '../paths';

const TYPE_PREFIX = 'type.googleapis.com/';

export const TYPE_URLS = {
  LISTENER: `${TYPE_PREFIX}envoy.config.listener.v3.Listener`,
  ROUTE: `${TYPE_PREFIX}envoy.config.route.v3.RouteConfiguration`,
  CLUSTER: `${TYPE_PREFIX}envoy.config.cluster.v3.Cluster`,
  ENDPOINT: `${TYPE_PREFIX}envoy.config.endpoint.v3.ClusterLoadAssignment`,
  SECRET: `${TYPE_PREFIX}envoy.extensions.transport_sockets.tls.v3.Secret`,
  HCM: `${TYPE_PREFIX}envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager`,
  ROUTER: `${TYPE_PREFIX}envoy.extensions.filters.http.router.v3.Router`,
  FAULT: `${TYPE_PREFIX}envoy.extensions.filters.http.fault.v3.HTTPFault`,
  LOCAL_RATELIMIT: `${TYPE_PREFIX}envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit`,
  /** Wraps a typed_per_filter_config entry: {config, is_optional, disabled}. */
  FILTER_CONFIG: `${TYPE_PREFIX}envoy.config.route.v3.FilterConfig`,
  HTTP_PROTOCOL_OPTIONS: `${TYPE_PREFIX}envoy.extensions.upstreams.http.v3.HttpProtocolOptions`,
  LB_ROUND_ROBIN: `${TYPE_PREFIX}envoy.extensions.load_balancing_policies.round_robin.v3.RoundRobin`,
  LB_WRR_LOCALITY: `${TYPE_PREFIX}envoy.extensions.load_balancing_policies.wrr_locality.v3.WrrLocality`,
  LB_LEAST_REQUEST: `${TYPE_PREFIX}envoy.extensions.load_balancing_policies.least_request.v3.LeastRequest`,
  LB_RANDOM: `${TYPE_PREFIX}envoy.extensions.load_balancing_policies.random.v3.Random`,
  LB_PEAK_EWMA: `${TYPE_PREFIX}skein.lb.v1.PeakEwma`,
  UPSTREAM_TLS_CONTEXT: `${TYPE_PREFIX}envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext`,
  DOWNSTREAM_TLS_CONTEXT: `${TYPE_PREFIX}envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext`,
  RBAC: `${TYPE_PREFIX}envoy.extensions.filters.http.rbac.v3.RBAC`,
} as const;

export type TypeUrl = (typeof TYPE_URLS)[keyof typeof TYPE_URLS];

/** A packed google.protobuf.Any as produced by encodeAny. */
export interface PackedAny {
  type_url: string;
  value: Buffer;
}

/** Conversion options used for every decode (see the conventions above). */
const TO_OBJECT: protobuf.IConversionOptions = {
  longs: String,
  enums: String,
  defaults: false,
  oneofs: true,
  // `bytes` left unset: protobufjs then returns the decoded Buffer as is.
};

const NOT_XDS = new Set([path.join(PROTO_DIR, 'skein', 'demo'), path.join(PROTO_DIR, 'skein', 'identity'), path.join(PROTO_DIR, 'skein', 'registry')]);

function listProtoFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    // proto/skein/demo (the demo application), proto/skein/identity and proto/skein/registry (skein's own services)
    // are not xDS; proto/skein/lb is: our LB extension.
    if (e.isDirectory()) return NOT_XDS.has(p) ? [] : listProtoFiles(p);
    return e.name.endsWith('.proto') ? [p] : [];
  });
}

function loadXdsRoot(): protobuf.Root {
  const root = new protobuf.Root();
  // Imports are relative to PROTO_DIR; google/protobuf/* are protobufjs built-ins
  // (protobufjs substitutes those before calling resolvePath).
  root.resolvePath = (_origin, target) => (path.isAbsolute(target) ? target : path.join(PROTO_DIR, target));
  root.loadSync(listProtoFiles(PROTO_DIR).sort(), { keepCase: true });
  root.resolveAll();
  return root;
}

/** Every message in proto/, loaded once at module load (keepCase: true). */
export const xdsRoot: protobuf.Root = loadXdsRoot();

/** The protobufjs Type for a full message name ('envoy.config.listener.v3.Listener', leading dot optional). */
export function messageType(fullName: string): protobuf.Type {
  const found = xdsRoot.lookup(fullName.startsWith('.') ? fullName : `.${fullName}`);
  if (!(found instanceof protobuf.Type)) throw new Error(`skein xds: unknown message type ${fullName}`);
  return found;
}

function typeFromUrl(typeUrl: string): protobuf.Type {
  const slash = typeUrl.lastIndexOf('/');
  if (slash < 0) throw new Error(`skein xds: malformed type URL ${JSON.stringify(typeUrl)}`);
  return messageType(typeUrl.slice(slash + 1));
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !ArrayBuffer.isView(v);
}

/** Catches misspelt keys and enum names, which protobufjs fromObject would silently drop. */
function findUnknownKey(type: protobuf.Type, obj: Record<string, unknown>, at: string): string | null {
  for (const [key, value] of Object.entries(obj)) {
    const field = type.fields[key];
    if (!field) {
      if (type.oneofs?.[key] && (typeof value === 'string' || value == null)) continue; // virtual oneof key
      return `${at}${key}: unknown field`;
    }
    const sub = field.resolvedType;
    if (!sub || value == null) continue;
    const items: unknown[] = field.map && isPlainObject(value) ? Object.values(value) : Array.isArray(value) ? value : [value];
    for (const item of items) {
      if (sub instanceof protobuf.Enum) {
        if (typeof item === 'string' && !Object.hasOwn(sub.values, item)) return `${at}${key}: unknown ${sub.name} value ${item}`;
      } else if (isPlainObject(item) && !sub.fullName.startsWith('.google.protobuf.')) {
        const err = findUnknownKey(sub, item, `${at}${key}.`);
        if (err) return err;
      }
    }
  }
  return null;
}

/**
 * Pack a plain object (conventions above) into an Any of the given type URL.
 * Throws an Error naming the type on unknown keys, conversion or verify() failures.
 */
export function encodeAny(typeUrl: string, obj: object): PackedAny {
  const type = typeFromUrl(typeUrl);
  const name = type.fullName.slice(1);
  const unknown = findUnknownKey(type, obj as Record<string, unknown>, '');
  if (unknown) throw new Error(`skein xds: invalid ${name}: ${unknown}`);
  let message: protobuf.Message;
  try {
    message = type.fromObject(obj);
  } catch (e) {
    throw new Error(`skein xds: invalid ${name}: ${(e as Error).message}`);
  }
  const problem = type.verify(message);
  if (problem) throw new Error(`skein xds: invalid ${name}: ${problem}`);
  const bytes = type.encode(message).finish();
  const value = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { type_url: typeUrl, value };
}

/** Unpack an Any into a plain object (conventions above). The type is taken from any.type_url. */
export function decodeAny<T = any>(any: { type_url: string; value: Uint8Array }): T {
  const type = typeFromUrl(any.type_url);
  const buf = Buffer.isBuffer(any.value)
    ? any.value
    : Buffer.from(any.value.buffer, any.value.byteOffset, any.value.byteLength);
  return type.toObject(type.decode(buf), TO_OBJECT) as T;
}

let adsService: grpc.ServiceDefinition | undefined;

/**
 * The grpc-js ServiceDefinition of envoy.service.discovery.v3.AggregatedDiscoveryService
 * (StreamAggregatedResources and DeltaAggregatedResources, both bidi streaming),
 * with messages (de)serialized per the conventions above. Cached.
 */
export function loadAdsServiceDefinition(): grpc.ServiceDefinition {
  if (adsService) return adsService;
  const packageDefinition = protoLoader.loadSync(path.join(PROTO_DIR, 'envoy/service/discovery/v3/ads.proto'), {
    includeDirs: [PROTO_DIR],
    keepCase: true,
    longs: String,
    enums: String,
    defaults: false,
    oneofs: true,
  });
  let node: unknown = grpc.loadPackageDefinition(packageDefinition);
  for (const part of 'envoy.service.discovery.v3.AggregatedDiscoveryService'.split('.')) {
    node = isPlainObject(node) || typeof node === 'function' ? (node as Record<string, unknown>)[part] : undefined;
  }
  const service = typeof node === 'function' ? (node as grpc.ServiceClientConstructor).service : undefined;
  if (!service) throw new Error('skein xds: AggregatedDiscoveryService not found in ads.proto');
  adsService = service;
  return service;
}
