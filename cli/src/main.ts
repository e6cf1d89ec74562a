#!/usr/bin/env node
/**
 * `skein`: a thin dispatcher. Each command lives with the part it drives: the control plane and
 * config commands in control-plane/src/cli, the sidecar command in sidecar/src/cli, the demo here.
 */
import { formatCliError } from '../../shared/src/cli/format-error';
import { helpText, parse } from '../../shared/src/cli/args';
import type { Command } from '../../shared/src/cli/command';
import { apply, canary, del, endpoints, get, proxyStatus, revisions, rollback, rollout } from '../../control-plane/src/cli/config-commands';
import { ca, token } from '../../control-plane/src/cli/identity-commands';
import { cert } from '../../control-plane/src/cli/cert-commands';
import { check } from '../../control-plane/src/cli/check-command';
import { top } from '../../control-plane/src/cli/top-command';
import { controlPlane } from '../../control-plane/src/cli/control-plane-command';
import { sidecar } from '../../sidecar/src/cli/sidecar-command';
import { injector } from '../../injector/src/cli/injector-command';
import { demo } from './demo/demo-command';

const COMMANDS: Command[] = [controlPlane, sidecar, apply, del, get, revisions, rollback, canary, rollout, proxyStatus, endpoints, token, ca, cert, check, top, injector, demo];

function usage(): string {
  const rows = COMMANDS.map((c) => `  ${c.spec.name.padEnd(15)} ${c.spec.summary.split('\n')[0]}`);
  return `skein: a service mesh (xDS v3 control plane, sidecar, SRE tools)\n\nUsage: skein COMMAND [flags]\n\nCommands:\n${rows.join('\n')}\n\nRun 'skein COMMAND --help' for a command's flags and their defaults.\n`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') { process.stdout.write(usage()); return name === undefined ? 2 : 0; }
  const cmd = COMMANDS.find((c) => c.spec.name === name);
  if (cmd === undefined) { process.stderr.write(`skein: unknown command "${name}"\n\n${usage()}`); return 2; }
  try {
    const parsed = parse(cmd.spec, rest);
    if (parsed.help) { process.stdout.write(helpText(cmd.spec)); return 0; }
    return await cmd.run(parsed, (s) => process.stdout.write(`${s}\n`));
  } catch (e) {
    process.stderr.write(`${formatCliError(e)}\n`);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (e) => { process.stderr.write(`${formatCliError(e)}\n`); process.exitCode = 1; });
}
