import { ErrorCodes, MeshError } from '../../../shared/src/errors';
import { createLogger } from '../../../shared/src/log';
import { optStr, str } from '../../../shared/src/cli/args';
import { checkTrustDomain } from '../../../shared/src/identity/spiffe';
import type { Command } from '../../../shared/src/cli/command';
import { INJECTOR_DEFAULTS } from '../injection-settings';

export const injector: Command = {
  spec: {
    name: 'injector', usage: 'injector --tls-cert FILE --tls-key FILE [flags]',
    summary: 'Run the Kubernetes sidecar injector: a mutating admission webhook (HTTPS) that adds skein\'s sidecar to pods that opt in\n' +
      '(POST /inject/pod, /inject/namespace: AdmissionReview v1; GET /healthz). See deploy/README.md.\n' +
      'When ready it prints one JSON line to stdout: {"ready":true,"listen":"HOST:PORT"}. Logs go to stderr.',
    flags: [
      { name: 'listen', type: 'string', value: 'HOST:PORT', default: '0.0.0.0:9443', help: 'where the webhook serves HTTPS; port 0 picks a free port' },
      { name: 'tls-cert', type: 'string', value: 'FILE', help: 'PEM certificate (chain) of the webhook, for DNS <service>.<namespace>.svc; re-read every minute (required)' },
      { name: 'tls-key', type: 'string', value: 'FILE', help: 'PEM private key of --tls-cert (required)' },
      { name: 'sidecar-image', type: 'string', value: 'IMAGE', env: 'SKEIN_SIDECAR_IMAGE', default: INJECTOR_DEFAULTS.sidecarImage, help: 'the image of the injected sidecar (the skein image)' },
      { name: 'xds', type: 'string', value: 'HOST:PORT[,HOST:PORT]', default: INJECTOR_DEFAULTS.xds, help: 'the control plane xDS address(es) given to each sidecar\'s --xds' },
      { name: 'trust-domain', type: 'string', value: 'DOMAIN', default: INJECTOR_DEFAULTS.trustDomain, help: 'the mesh\'s trust domain, given to each sidecar\'s --trust-domain' },
      { name: 'trust-bundle-configmap', type: 'string', value: 'NAME', default: INJECTOR_DEFAULTS.trustBundleConfigMap, help: 'the ConfigMap (key ca.pem, in each pod\'s namespace) mounted as the sidecar\'s --xds-ca-file' },
      { name: 'log-level', type: 'string', value: 'LEVEL', env: 'SKEIN_LOG_LEVEL', default: 'info', help: 'trace, debug, info, warn, error or silent' },
    ],
  },
  async run(p, out) {
    const certFile = optStr(p, 'tls-cert');
    const keyFile = optStr(p, 'tls-key');
    if (certFile === undefined || keyFile === undefined) throw new MeshError(ErrorCodes.VALIDATION, '--tls-cert and --tls-key are required: the API server only calls webhooks over HTTPS (deploy/kubernetes/injector-tls.sh makes them)');
    const xds = str(p, 'xds');
    if (!xds.split(',').every((a) => /^[^\s,:]+:\d{1,5}$|^\[[0-9a-fA-F:.]+\]:\d{1,5}$/.test(a))) throw new MeshError(ErrorCodes.VALIDATION, `--xds: must be HOST:PORT, or several separated by commas, got "${xds}"`);
    const cm = str(p, 'trust-bundle-configmap');
    if (!/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(cm)) throw new MeshError(ErrorCodes.VALIDATION, `--trust-bundle-configmap: "${cm}" is not a ConfigMap name (lower-case DNS subdomain)`);
    const image = str(p, 'sidecar-image');
    if (image === '' || /\s/.test(image)) throw new MeshError(ErrorCodes.VALIDATION, `--sidecar-image: must be an image reference, got "${image}"`);
    const log = createLogger('skein-injector', str(p, 'log-level'));
    const { WebhookServer } = await import('../webhook-server');
    const server = await WebhookServer.start({
      listen: str(p, 'listen'), tlsCertFile: certFile, tlsKeyFile: keyFile, log,
      settings: { sidecarImage: image, xds, trustDomain: checkTrustDomain(str(p, 'trust-domain'), '--trust-domain'), trustBundleConfigMap: cm },
    });
    const listen = str(p, 'listen');
    out(JSON.stringify({ ready: true, listen: `${listen.slice(0, listen.lastIndexOf(':'))}:${server.port}` }));
    await new Promise<void>((resolve) => {
      process.once('SIGTERM', () => resolve());
      process.once('SIGINT', () => resolve());
    });
    await server.close();
    log.flush();
    return 0;
  },
};
