/**
 * The injected sidecar: a native sidecar container (an init container with restartPolicy Always,
 * Kubernetes 1.29+), so it is started, and ready, before the app's containers and stopped after
 * them; its volumes (the join token Secret, the trust bundle ConfigMap); and the env vars that tell
 * the app's containers where their sidecar is.
 *
 * Its args are `skein sidecar` flags (sidecar/src/cli/sidecar-command.ts); a test parses them with
 * that command's own flag spec.
 */
import type { InjectorSettings } from './injection-settings';
import { MOUNTS, SIDECAR_CONTAINER, SIDECAR_NODE_OPTIONS, SIDECAR_PORTS, SIDECAR_RESOURCES, SKEIN_UID } from './injection-settings';
import type { Workload } from './workload';

/** Env vars given to every app container that does not set them itself. */
export function appEnv(): { name: string; value: string }[] {
  return [
    { name: 'SKEIN_OUTBOUND_ADDR', value: `127.0.0.1:${SIDECAR_PORTS.outbound}` },
    { name: 'SKEIN_OUTBOUND_URL', value: `http://127.0.0.1:${SIDECAR_PORTS.outbound}` },
    { name: 'SKEIN_ADMIN_URL', value: `http://127.0.0.1:${SIDECAR_PORTS.admin}` },
  ];
}

export function sidecarArgs(s: InjectorSettings, w: Workload): string[] {
  return [
    'sidecar',
    '--xds', s.xds,
    '--token-file', `${MOUNTS.tokenDir}/${MOUNTS.tokenKey}`,
    '--xds-ca-file', `${MOUNTS.caDir}/${MOUNTS.caKey}`,
    '--trust-domain', s.trustDomain,
    '--namespace', w.namespace,
    '--service-account', w.serviceAccount,
    ...(w.inbound === undefined ? [] : [
      '--service', w.inbound.service,
      '--app', `127.0.0.1:${w.inbound.appPort}`,
      '--app-protocol', w.inbound.appProtocol,
    ]),
    '--version', w.version,
    // Kubernetes expands $(VAR) in args from the container's env (the downward API below).
    '--advertise-address', '$(SKEIN_POD_IP)',
    '--node-id', '$(SKEIN_POD_NAME).$(SKEIN_POD_NAMESPACE)',
    '--outbound-listen', `127.0.0.1:${SIDECAR_PORTS.outbound}`,
    // The kubelet probes, and Prometheus scrapes, the admin port from outside the pod.
    '--admin-listen', `0.0.0.0:${SIDECAR_PORTS.admin}`,
  ];
}

export function sidecarContainer(s: InjectorSettings, w: Workload): Record<string, unknown> {
  const field = (name: string, fieldPath: string) => ({ name, valueFrom: { fieldRef: { fieldPath } } });
  return {
    name: SIDECAR_CONTAINER,
    image: s.sidecarImage,
    restartPolicy: 'Always',
    args: sidecarArgs(s, w),
    env: [field('SKEIN_POD_IP', 'status.podIP'), field('SKEIN_POD_NAME', 'metadata.name'), field('SKEIN_POD_NAMESPACE', 'metadata.namespace'), { name: 'NODE_OPTIONS', value: SIDECAR_NODE_OPTIONS }],
    ports: [
      ...(w.inbound === undefined ? [] : [{ name: 'skein-inbound', containerPort: SIDECAR_PORTS.inbound, protocol: 'TCP' }]),
      { name: 'skein-admin', containerPort: SIDECAR_PORTS.admin, protocol: 'TCP' },
    ],
    // /healthz: the process serves; /ready: config from the control plane and a live app.
    startupProbe: { httpGet: { path: '/healthz', port: SIDECAR_PORTS.admin }, periodSeconds: 1, failureThreshold: 60 },
    livenessProbe: { httpGet: { path: '/healthz', port: SIDECAR_PORTS.admin }, periodSeconds: 10, failureThreshold: 3 },
    readinessProbe: { httpGet: { path: '/ready', port: SIDECAR_PORTS.admin }, periodSeconds: 2, failureThreshold: 3 },
    resources: { requests: { ...SIDECAR_RESOURCES.requests }, limits: { ...SIDECAR_RESOURCES.limits } },
    securityContext: {
      runAsNonRoot: true, runAsUser: SKEIN_UID, runAsGroup: SKEIN_UID,
      readOnlyRootFilesystem: true, allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' },
    },
    volumeMounts: [
      { name: MOUNTS.tokenVolume, mountPath: MOUNTS.tokenDir, readOnly: true },
      { name: MOUNTS.caVolume, mountPath: MOUNTS.caDir, readOnly: true },
    ],
  };
}

/** The sidecar's volumes. 0444: the sidecar runs as its own uid, and only it mounts them. */
export function sidecarVolumes(s: InjectorSettings, w: Workload): Record<string, unknown>[] {
  return [
    { name: MOUNTS.tokenVolume, secret: { secretName: w.tokenSecret, defaultMode: 0o444, items: [{ key: MOUNTS.tokenKey, path: MOUNTS.tokenKey }] } },
    { name: MOUNTS.caVolume, configMap: { name: s.trustBundleConfigMap, defaultMode: 0o444, items: [{ key: MOUNTS.caKey, path: MOUNTS.caKey }] } },
  ];
}
