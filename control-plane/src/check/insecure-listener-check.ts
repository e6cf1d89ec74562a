/** The plaintext xDS listener (--xds-insecure-listen). */
import type { CheckContext, Finding } from './finding';

export function plaintextXdsListener(ctx: CheckContext): Finding[] {
  const l = ctx.xdsInsecure;
  if (l === undefined) return [];
  return [{
    severity: 'warning', check: 'plaintext-xds', subject: l.address,
    what: `the plaintext xDS listener (--xds-insecure-listen) is open on ${l.address}, ${l.loopback ? 'a loopback address: any process on this machine' : 'NOT a loopback address: anyone who can reach it'} can read the mesh's config over it and pose as any proxy, unauthenticated`,
    fix: l.loopback
      ? 'keep it for proxyless gRPC clients on this machine only; drop --xds-insecure-listen once no client needs it'
      : 'bind --xds-insecure-listen to 127.0.0.1 (and drop --xds-insecure-allow-remote), or drop it once no client needs it',
  }];
}
