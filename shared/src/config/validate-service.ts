import { isIP } from 'node:net';
import { MTLS_MODES } from './types';
import type { EndpointHealth, Service, ServicePort, StaticEndpoint, Subset } from './types';
import { FieldReader, join, LABEL_KEY_PATTERN, LABEL_MAP, NAME_HINT, NAME_PATTERN } from './reader';
import { CONFIG_LIMITS } from './limits';

/** A Kubernetes-style service account name (a DNS label), as SPIFFE IDs carry it. */
const SERVICE_ACCOUNT = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const HOSTNAME = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/i;

export function validateServiceSpec(r: FieldReader, raw: unknown): Service['spec'] | undefined {
  const o = r.object(raw, 'spec', ['protocol', 'ports', 'subsets', 'endpoints', 'serviceAccount', 'mtls', 'dependsOn']);
  if (o === undefined) return undefined;
  const protocol = o['protocol'] === undefined ? 'grpc' : r.oneOf(o['protocol'], 'spec.protocol', ['grpc', 'http'] as const);
  const ports = portsOf(r, o['ports']);
  const subsets = subsetsOf(r, o['subsets']);
  const endpoints = endpointsOf(r, o['endpoints']);
  const serviceAccount = o['serviceAccount'] === undefined ? undefined : r.string(o['serviceAccount'], 'spec.serviceAccount', { pattern: SERVICE_ACCOUNT, patternHint: 'a DNS label: lower-case letters, digits and \'-\', at most 63, e.g. reviews' });
  const mtls = o['mtls'] === undefined ? 'STRICT' : r.oneOf(o['mtls'], 'spec.mtls', MTLS_MODES);
  const dependsOn = o['dependsOn'] === undefined ? undefined : dependsOnOf(r, o['dependsOn']);
  if (protocol === undefined || ports === undefined || subsets === undefined || endpoints === undefined || mtls === undefined || (o['serviceAccount'] !== undefined && serviceAccount === undefined)) return undefined;
  if (o['dependsOn'] !== undefined && dependsOn === undefined) return undefined;
  return { protocol, ports, subsets, endpoints, ...(serviceAccount === undefined ? {} : { serviceAccount }), mtls, ...(dependsOn === undefined ? {} : { dependsOn }) };
}

/** spec.dependsOn: the Services this service's sidecars may call, each once (that they exist is checked in mesh.ts). */
function dependsOnOf(r: FieldReader, raw: unknown): string[] | undefined {
  const list = r.array(raw, 'spec.dependsOn', { max: CONFIG_LIMITS.dependsOn });
  if (list === undefined) return undefined;
  const out: string[] = [];
  let ok = true;
  list.forEach((n, i) => {
    const name = r.string(n, join('spec.dependsOn', i), { pattern: NAME_PATTERN, patternHint: NAME_HINT });
    if (name === undefined) { ok = false; return; }
    if (out.includes(name)) { ok = false; r.fail(join('spec.dependsOn', i), `duplicate Service "${name}"`); return; }
    out.push(name);
  });
  return ok ? out : undefined;
}

function portsOf(r: FieldReader, raw: unknown): ServicePort[] | undefined {
  if (raw === undefined) return r.fail('spec.ports', 'is required: list at least one port, e.g. [{name: grpc, port: 50051}]');
  const list = r.array(raw, 'spec.ports', { min: 1, max: CONFIG_LIMITS.ports });
  if (list === undefined) return undefined;
  const out: ServicePort[] = [];
  const names = new Set<string>();
  const numbers = new Set<number>();
  list.forEach((p, i) => {
    const path = join('spec.ports', i);
    const o = r.object(p, path, ['name', 'port']);
    if (o === undefined) return;
    const name = r.string(o['name'], join(path, 'name'), { pattern: NAME_PATTERN, patternHint: NAME_HINT });
    const port = r.int(o['port'], join(path, 'port'), { min: 1, max: 65535 });
    if (name === undefined || port === undefined) return;
    if (names.has(name)) { r.fail(join(path, 'name'), `duplicate port name "${name}"`); return; }
    if (numbers.has(port)) { r.fail(join(path, 'port'), `duplicate port ${port}`); return; }
    names.add(name); numbers.add(port);
    out.push({ name, port });
  });
  return out;
}

function subsetsOf(r: FieldReader, raw: unknown): Subset[] | undefined {
  if (raw === undefined) return [];
  const list = r.array(raw, 'spec.subsets', { max: CONFIG_LIMITS.subsets });
  if (list === undefined) return undefined;
  const out: Subset[] = [];
  const names = new Set<string>();
  list.forEach((s, i) => {
    const path = join('spec.subsets', i);
    const o = r.object(s, path, ['name', 'labels']);
    if (o === undefined) return;
    const name = r.string(o['name'], join(path, 'name'), { pattern: NAME_PATTERN, patternHint: NAME_HINT });
    const labels = o['labels'] === undefined
      ? r.fail(join(path, 'labels'), 'is required: the labels that select this subset, e.g. {version: v1}')
      : r.stringMap(o['labels'], join(path, 'labels'), LABEL_MAP, LABEL_KEY_PATTERN);
    if (name === undefined || labels === undefined) return;
    if (Object.keys(labels).length === 0) { r.fail(join(path, 'labels'), 'must select on at least one label'); return; }
    if (names.has(name)) { r.fail(join(path, 'name'), `duplicate subset name "${name}"`); return; }
    names.add(name);
    out.push({ name, labels });
  });
  return out;
}

function endpointsOf(r: FieldReader, raw: unknown): StaticEndpoint[] | undefined {
  if (raw === undefined) return [];
  const list = r.array(raw, 'spec.endpoints', { max: CONFIG_LIMITS.endpoints });
  if (list === undefined) return undefined;
  const out: StaticEndpoint[] = [];
  const seen = new Set<string>();
  list.forEach((e, i) => {
    const path = join('spec.endpoints', i);
    const o = r.object(e, path, ['address', 'port', 'labels', 'zone', 'weight', 'health']);
    if (o === undefined) return;
    let address = r.string(o['address'], join(path, 'address'), { maxLength: 253 });
    if (address !== undefined && isIP(address) === 0 && !HOSTNAME.test(address)) {
      address = r.fail(join(path, 'address'), `"${address}" must be an IPv4/IPv6 address or a DNS name`);
    }
    const port = r.int(o['port'], join(path, 'port'), { min: 1, max: 65535 });
    const labels = o['labels'] === undefined ? {} : r.stringMap(o['labels'], join(path, 'labels'), LABEL_MAP, LABEL_KEY_PATTERN);
    const zone = o['zone'] === undefined ? '' : r.string(o['zone'], join(path, 'zone'), { maxLength: 128 });
    const weight = o['weight'] === undefined ? 1 : r.int(o['weight'], join(path, 'weight'), { min: 1, max: 128 });
    const health: EndpointHealth | undefined = o['health'] === undefined ? 'HEALTHY' : r.oneOf(o['health'], join(path, 'health'), ['HEALTHY', 'UNHEALTHY', 'DRAINING'] as const);
    if (address === undefined || port === undefined || labels === undefined || zone === undefined || weight === undefined || health === undefined) return;
    const key = `${address}:${port}`;
    if (seen.has(key)) { r.fail(path, `duplicate endpoint ${key}`); return; }
    seen.add(key);
    out.push({ address, port, labels, zone, weight, health });
  });
  return out;
}
