#!/usr/bin/env node
/**
 * `skein`: a thin dispatcher. Each command lives with the part it drives: the control plane and
 * config commands in control-plane/src/cli, the sidecar command in sidecar/src/cli, the demo here.
 */
import { formatCliError } from '../../shared/src/cli/format-error';
import { helpText, parse } from '../../shared/src/cli/args';
import type { Command } from '../../shared/src/cli/command';

/**
 * Each command by name, loaded when it runs: a command's module pulls in what it drives, and a
 * sidecar should not hold the control plane's CLI, YAML or undici (a few MiB of heap each).
 * In usage order. test/cli/help.test.ts checks each entry's name is its command's.
 */
const COMMANDS: Record<string, () => Command> = {
  'control-plane': () => (require('../../control-plane/src/cli/control-plane-command') as typeof import('../../control-plane/src/cli/control-plane-command')).controlPlane,
  'sidecar': () => (require('../../sidecar/src/cli/sidecar-command') as typeof import('../../sidecar/src/cli/sidecar-command')).sidecar,
  'apply': () => configCommands().apply,
  'delete': () => configCommands().del,
  'get': () => configCommands().get,
  'revisions': () => configCommands().revisions,
  'rollback': () => configCommands().rollback,
  'canary': () => configCommands().canary,
  'rollout': () => configCommands().rollout,
  'proxy-status': () => configCommands().proxyStatus,
  'endpoints': () => configCommands().endpoints,
  'token': () => identityCommands().token,
  'ca': () => identityCommands().ca,
  'cert': () => (require('../../control-plane/src/cli/cert-commands') as typeof import('../../control-plane/src/cli/cert-commands')).cert,
  'check': () => (require('../../control-plane/src/cli/check-command') as typeof import('../../control-plane/src/cli/check-command')).check,
  'top': () => (require('../../control-plane/src/cli/top-command') as typeof import('../../control-plane/src/cli/top-command')).top,
  'injector': () => (require('../../injector/src/cli/injector-command') as typeof import('../../injector/src/cli/injector-command')).injector,
  'demo': () => (require('./demo/demo-command') as typeof import('./demo/demo-command')).demo,
};

function configCommands(): typeof import('../../control-plane/src/cli/config-commands') { return require('../../control-plane/src/cli/config-commands') as typeof import('../../control-plane/src/cli/config-commands'); }
function identityCommands(): typeof import('../../control-plane/src/cli/identity-commands') { return require('../../control-plane/src/cli/identity-commands') as typeof import('../../control-plane/src/cli/identity-commands'); }

/** Every command, loaded (for usage and tests). */
export function allCommands(): Command[] { return Object.values(COMMANDS).map((load) => load()); }

/** The names `skein NAME` dispatches on, in usage order. */
export function commandNames(): string[] { return Object.keys(COMMANDS); }

function usage(): string {
  const rows = allCommands().map((c) => `  ${c.spec.name.padEnd(15)} ${c.spec.summary.split('\n')[0]}`);
  return `skein: a service mesh (xDS v3 control plane, sidecar, SRE tools)\n\nUsage: skein COMMAND [flags]\n\nCommands:\n${rows.join('\n')}\n\nRun 'skein COMMAND --help' for a command's flags and their defaults.\n`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') { process.stdout.write(usage()); return name === undefined ? 2 : 0; }
  const load = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (load === undefined) { process.stderr.write(`skein: unknown command "${name}"\n\n${usage()}`); return 2; }
  try {
    const cmd = load();
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
