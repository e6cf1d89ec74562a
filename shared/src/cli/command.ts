import type { CommandSpec, Parsed } from './args';

/** One `skein` subcommand: its flags and help, and what it does (returns the exit code). */
export interface Command { spec: CommandSpec; run(p: Parsed, out: (s: string) => void): Promise<number> }
