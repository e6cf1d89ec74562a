/** `skein check`: what the control plane sees wrong with the mesh right now (GET /v1/check). */
import { API_FLAG } from '../../../shared/src/cli/args';
import type { Command } from '../../../shared/src/cli/command';
import type { CheckReport } from '../check/checks';
import { client, outputFormat } from './config-commands';
import { API_CA_FLAG } from './admin-credential';
import { table } from './format';

/** Exit codes: no error found (warnings allowed), or at least one error. */
export const EXIT_CHECK_OK = 0;
export const EXIT_CHECK_ERRORS = 1;

export const check: Command = {
  spec: {
    name: 'check', usage: 'check [flags]',
    summary: 'Check the mesh for problems: workload certificates not renewed in time, the CA expiring, services that accept plaintext,\n' +
      'proxies NACKED or STALE for more than a minute, a plaintext xDS listener. One finding per line: severity, check, what, and the fix.\n' +
      'Exit 1 if any finding is an error, 0 otherwise (warnings only, or none). A read: needs no admin token.',
    flags: [API_FLAG, API_CA_FLAG, { name: 'output', short: 'o', type: 'string', value: 'FORMAT', default: 'table', help: 'output format: table or json (the API answer)' }],
    more: 'Examples:\n  skein check\n  skein check -o json | jq \'.findings[] | select(.severity == "error")\'',
  },
  async run(p, out) {
    const fmt = outputFormat(p, ['table', 'json']);
    const r = await client(p).call<CheckReport>('GET', '/v1/check');
    if (fmt === 'json') out(JSON.stringify(r, null, 2));
    else if (r.findings.length === 0) out(`no findings (checked at ${r.checkedAt})`);
    else out(table(['SEVERITY', 'CHECK', 'WHAT', 'FIX'], r.findings.map((f) => [f.severity, f.check, f.what, f.fix])));
    return r.errors > 0 ? EXIT_CHECK_ERRORS : EXIT_CHECK_OK;
  },
};
