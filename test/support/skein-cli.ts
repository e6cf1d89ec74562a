/** The `skein` CLI as a child process (the built entry point), for black-box tests. */
import { spawn } from 'node:child_process';
import { SKEIN_MAIN } from '../../harness/src/control-plane-process';

export interface Run { code: number | null; stdout: string; stderr: string }

/** Runs `skein ARGS` (asynchronously, so the test process keeps serving its pipes). */
export function skein(args: string[], opts: { env?: Record<string, string | undefined>; input?: string } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries({ ...process.env, ...(opts.env ?? {}) })) if (v !== undefined) env[k] = v;
    const child = spawn(process.execPath, [SKEIN_MAIN, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(opts.input ?? '');
  });
}

/** A run's exit code and output, for assertion messages. */
export function show(r: Run): string { return `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`; }
