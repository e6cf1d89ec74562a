/**
 * A real pseudo-terminal for tests of terminal programs: a tmux server of the test's own (its own
 * socket, so nothing else's sessions are touched), a detached session of a given size running a
 * command, the screen read back with capture-pane, keys sent with send-keys. tmux is installed
 * from Debian when missing (scripts/ensure-debian-tools.sh).
 */
import { execFileSync } from 'node:child_process';
import { ensureDebianTools } from './debian-tools';

export class TmuxSession {
  private constructor(private readonly socket: string, readonly name: string) {}

  /** Starts `command` (a shell command line) in a detached `width` × `height` session; the pane stays after the command exits. */
  static start(name: string, command: string, width = 200, height = 50): TmuxSession {
    ensureDebianTools('tmux');
    const socket = `skein-test-${process.pid}-${name}`;
    execFileSync('tmux', ['-L', socket, '-f', '/dev/null', 'new-session', '-d', '-s', name, '-x', String(width), '-y', String(height), command]);
    const s = new TmuxSession(socket, name);
    s.tmux('set-option', '-t', name, 'remain-on-exit', 'on');
    return s;
  }

  /** The visible screen, one string per line; with `escapes`, colour and attributes as SGR codes. */
  screen(escapes = false): string {
    return this.tmux('capture-pane', '-p', ...(escapes ? ['-e'] : []), '-t', this.name);
  }

  /** Keys as tmux names them (`q`, `C-c`, `s`). */
  keys(...keys: string[]): void { this.tmux('send-keys', '-t', this.name, ...keys); }

  /** Ends the session and this test's tmux server. */
  kill(): void {
    try { this.tmux('kill-server'); } catch { /* already gone */ }
  }

  private tmux(...args: string[]): string {
    return execFileSync('tmux', ['-L', this.socket, ...args], { encoding: 'utf8' });
  }
}
