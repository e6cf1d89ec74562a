/**
 * Reads what the injector needs from a Pod: whether it opted in or out, whether it is already
 * injected, and the sidecar's per-pod settings from annotations (each with a default). Invalid
 * annotations are collected as FieldIssues, each naming its annotation, never guessed around.
 *
 * | annotation | default | meaning |
 * | skein.io/inject | (label of the same name) | enabled / disabled; disabled (label or annotation) wins |
 * | skein.io/service | label app.kubernetes.io/name, else label app | the mesh service (--service) |
 * | skein.io/app-port | the first containerPort of the first container | the app's port (--app 127.0.0.1:PORT) |
 * | skein.io/app-protocol | grpc | grpc or http (--app-protocol) |
 * | skein.io/version | label version, else app.kubernetes.io/version, else v1 | --version |
 * | skein.io/token-secret | skein-join-<service, else service account> | the Secret holding the join token (key `token`) |
 *
 * With a service and an app port the sidecar serves inbound and registers; with neither it is
 * outbound only (a client). One without the other is refused.
 */
import type { FieldIssue } from '../../shared/src/errors';
import { NAME_HINT, NAME_PATTERN } from '../../shared/src/config/reader';
import { SIDECAR_CONTAINER, SIDECAR_PORTS } from './injection-settings';

export const INJECT_KEY = 'skein.io/inject';
export const STATUS_KEY = 'skein.io/status';
export const INJECTED = 'injected';
export const ANNOTATIONS = {
  service: 'skein.io/service', appPort: 'skein.io/app-port', appProtocol: 'skein.io/app-protocol',
  version: 'skein.io/version', tokenSecret: 'skein.io/token-secret',
} as const;

/** The parts of a Pod the injector reads (the rest is passed through untouched). */
export interface PodLike {
  metadata?: { name?: string; generateName?: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: {
    serviceAccountName?: string;
    containers?: { name?: string; ports?: { containerPort?: number }[]; env?: { name?: string }[] }[];
    initContainers?: { name?: string }[];
    volumes?: { name?: string }[];
  };
}

/** How the namespace selected the pod: the webhook is called per MutatingWebhookConfiguration entry. */
export type Selection = 'pod' | 'namespace';

/** The sidecar's per-pod settings. */
export interface Workload {
  namespace: string;
  serviceAccount: string;
  /** Absent for an outbound-only (client) sidecar. */
  inbound?: { service: string; appPort: number; appProtocol: 'grpc' | 'http' };
  version: string;
  tokenSecret: string;
}

/** The sidecar's ports, which the app may not use (the pod shares one network namespace). */
const RESERVED: number[] = Object.values(SIDECAR_PORTS);
const LABEL_VALUE = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;

/**
 * Whether the pod asks for a sidecar. With `namespace` selection (its namespace is labelled
 * skein.io/inject=enabled) every pod is injected unless it opts out; with `pod` selection only
 * pods that opt in by label or annotation. `disabled`, as label or annotation, always wins.
 */
export function wantsInjection(pod: PodLike, selection: Selection): boolean {
  const values = [pod.metadata?.labels?.[INJECT_KEY], pod.metadata?.annotations?.[INJECT_KEY]];
  if (values.includes('disabled')) return false;
  return selection === 'namespace' || values.includes('enabled');
}

/** Whether the pod already has skein's sidecar (or says so): injecting twice is never right. */
export function alreadyInjected(pod: PodLike): boolean {
  if (pod.metadata?.annotations?.[STATUS_KEY] === INJECTED) return true;
  const named = (cs: { name?: string }[] | undefined) => (cs ?? []).some((c) => c.name === SIDECAR_CONTAINER);
  return named(pod.spec?.containers) || named(pod.spec?.initContainers);
}

/** The pod's sidecar settings, or every problem with its annotations. `namespace`: the review's. */
export function readWorkload(pod: PodLike, namespace: string): Workload | FieldIssue[] {
  const issues: FieldIssue[] = [];
  const a = pod.metadata?.annotations ?? {};
  const labels = pod.metadata?.labels ?? {};
  const issue = (key: string, message: string) => issues.push({ resource: 'Pod', path: `metadata.annotations["${key}"]`, message });

  const service = a[ANNOTATIONS.service] ?? labels['app.kubernetes.io/name'] ?? labels['app'];
  if (service !== undefined && !NAME_PATTERN.test(service)) issue(ANNOTATIONS.service, `"${service}" ${NAME_HINT}${a[ANNOTATIONS.service] === undefined ? ' (taken from the pod\'s app label; set the annotation)' : ''}`);

  let appPort: number | undefined;
  const portText = a[ANNOTATIONS.appPort];
  if (portText !== undefined) {
    appPort = Number(portText);
    if (!/^\d+$/.test(portText) || appPort < 1 || appPort > 65535) { issue(ANNOTATIONS.appPort, `"${portText}" must be a port number from 1 to 65535`); appPort = undefined; }
  } else {
    appPort = pod.spec?.containers?.[0]?.ports?.[0]?.containerPort;
  }
  if (appPort !== undefined && RESERVED.includes(appPort)) issue(ANNOTATIONS.appPort, `${appPort} is one of the sidecar's own ports (${RESERVED.join(', ')}); move the app or set the annotation`);

  const appProtocol = a[ANNOTATIONS.appProtocol] ?? 'grpc';
  if (appProtocol !== 'grpc' && appProtocol !== 'http') issue(ANNOTATIONS.appProtocol, `must be grpc or http, got "${appProtocol}"`);

  const version = a[ANNOTATIONS.version] ?? labels['version'] ?? labels['app.kubernetes.io/version'] ?? 'v1';
  if (!LABEL_VALUE.test(version)) issue(ANNOTATIONS.version, `"${version}" must be a label value: letters, digits, '-', '_' and '.', at most 63`);

  const serviceAccount = pod.spec?.serviceAccountName ?? 'default';
  const tokenSecret = a[ANNOTATIONS.tokenSecret] ?? `skein-join-${service ?? serviceAccount}`;
  if (!/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(tokenSecret)) issue(ANNOTATIONS.tokenSecret, `"${tokenSecret}" is not a Secret name (lower-case DNS subdomain)`);

  if (portText !== undefined && service === undefined) issue(ANNOTATIONS.service, 'is needed with skein.io/app-port: the service the app serves (or label the pod app.kubernetes.io/name)');
  if (a[ANNOTATIONS.service] !== undefined && appPort === undefined && portText === undefined) issue(ANNOTATIONS.appPort, 'is needed with skein.io/service when no container declares a port: the port the app listens on');
  if (issues.length > 0) return issues;
  const inbound = service !== undefined && appPort !== undefined ? { service, appPort, appProtocol: appProtocol as 'grpc' | 'http' } : undefined;
  return { namespace, serviceAccount, version, tokenSecret, ...(inbound === undefined ? {} : { inbound }) };
}
