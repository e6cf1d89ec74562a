import { parseArgs } from 'node:util';
import { ErrorCodes, MeshError } from '../errors';

/** One flag of a subcommand: documented with its default, the single source for --help. */
export interface FlagSpec {
  name: string;
  type: 'string' | 'boolean';
  short?: string;
  /** Shown as the default in --help; string flags get it as their value when unset. */
  default?: string;
  /** Environment variable that supplies the default, if any. */
  env?: string;
  value?: string;
  /**
   * For a string flag whose value is optional: the value a bare `--name` stands for. A value is
   * then given as `--name=VALUE`.
   */
  bare?: string;
  help: string;
}

export interface CommandSpec {
  name: string;
  usage: string;
  summary: string;
  flags: FlagSpec[];
  /** Extra help text after the flags (examples). */
  more?: string;
}

export const API_FLAG: FlagSpec = { name: 'api', type: 'string', env: 'SKEIN_API', default: 'https://127.0.0.1:18001', value: 'URL', help: 'the control plane SRE API (TLS from the mesh CA)' };

export function helpText(cmd: CommandSpec): string {
  const rows = [...cmd.flags, { name: 'help', type: 'boolean' as const, short: 'h', help: 'show this help' }].map((f) => {
    const value = f.type !== 'string' ? '' : 'bare' in f && f.bare !== undefined ? `[=${f.value ?? 'VALUE'}]` : ` ${f.value ?? 'VALUE'}`;
    const left = `${f.short ? `-${f.short}, ` : '    '}--${f.name}${value}`;
    const dflt = f.default !== undefined ? ` (default: ${f.env ? `$${f.env} or ` : ''}${f.default})` : f.env ? ` (default: $${f.env})` : '';
    return `  ${left.padEnd(30)} ${f.help}${dflt}`;
  });
  return `Usage: skein ${cmd.usage}\n\n${cmd.summary}\n\nFlags:\n${rows.join('\n')}\n${cmd.more ? `\n${cmd.more}\n` : ''}`;
}

export interface Parsed { values: Record<string, string | boolean | undefined>; positionals: string[]; help: boolean }

/** Parses argv strictly: unknown flags and missing values are errors that name the flag. */
export function parse(cmd: CommandSpec, argv: string[]): Parsed {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = { help: { type: 'boolean', short: 'h' } };
  for (const f of cmd.flags) options[f.name] = f.short ? { type: f.type, short: f.short } : { type: f.type };
  const bare = new Map(cmd.flags.filter((f) => f.bare !== undefined).map((f) => [`--${f.name}`, `--${f.name}=${f.bare}`]));
  const args = bare.size === 0 ? argv : argv.map((a) => bare.get(a) ?? a);
  let parsed;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new MeshError(ErrorCodes.VALIDATION, `${(e as Error).message.split('\n')[0]}\nRun 'skein ${cmd.name} --help' for usage.`);
  }
  const values: Record<string, string | boolean | undefined> = { ...parsed.values };
  for (const f of cmd.flags) {
    if (values[f.name] !== undefined || f.type !== 'string') continue;
    const fromEnv = f.env ? process.env[f.env] : undefined;
    values[f.name] = fromEnv !== undefined && fromEnv !== '' ? fromEnv : f.default;
  }
  return { values, positionals: parsed.positionals, help: values['help'] === true };
}

export function str(p: Parsed, name: string): string {
  const v = p.values[name];
  if (typeof v !== 'string') throw new MeshError(ErrorCodes.VALIDATION, `--${name} is required`);
  return v;
}

export function optStr(p: Parsed, name: string): string | undefined {
  const v = p.values[name];
  return typeof v === 'string' ? v : undefined;
}

export function intFlag(p: Parsed, name: string, min: number, max: number): number | undefined {
  const v = optStr(p, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < min || n > max) throw new MeshError(ErrorCodes.VALIDATION, `--${name}: must be an integer from ${min} to ${max}, got "${v}"`);
  return n;
}
