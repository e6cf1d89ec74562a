/**
 * `skein top`: a live view of the mesh-wide route stats (GET /v1/stats/routes), as `linkerd viz
 * top`: one row per route and destination version with its rate, success rate, p50/p95/p99 and
 * canary weight, and which proxies report; redrawn every second. `s` cycles the sort, `q` or
 * Ctrl-C quits and gives the terminal back as it was. `-o json` prints one snapshot and exits.
 * Colour only on a terminal and when NO_COLOR is unset or empty; with no terminal, plain frames
 * one after another.
 */
import { API_FLAG, optStr, str } from '../../../shared/src/cli/args';
import type { Parsed } from '../../../shared/src/cli/args';
import type { Command } from '../../../shared/src/cli/command';
import { ErrorCodes, MeshError } from '../../../shared/src/errors';
import type { RouteStatsView } from '../telemetry/route-stats-store';
import { API_CA_FLAG } from './admin-credential';
import { client, outputFormat } from './config-commands';
import { renderTop, SORTS, topRows } from './top-view';
import type { TopFilter, TopSort } from './top-view';

/** How often the view is fetched and redrawn (ms). */
export const TOP_REFRESH_MS = 1000;

export const top: Command = {
  spec: {
    name: 'top', usage: 'top [flags]',
    summary: 'Live mesh-wide route stats: per route and destination version, requests per second, success rate, p50/p95/p99 latency\n' +
      'and canary weight, merged from every sidecar\'s reports (GET /v1/stats/routes), redrawn every second, with the proxies that report.\n' +
      'Keys: s cycles the sort (rps, p99, success, route), q or Ctrl-C quits. A read: needs no admin token.',
    flags: [API_FLAG, API_CA_FLAG,
      { name: 'window', type: 'string', value: 'DURATION', default: '30s', help: 'the time the numbers cover (5s to 15m)' },
      { name: 'sort', type: 'string', value: 'KEY', default: 'rps', help: `row order: ${SORTS.join(', ')} (rps and p99 highest first, success lowest first)` },
      { name: 'route', type: 'string', value: 'TEXT', help: 'only routes whose name contains TEXT (default: all)' },
      { name: 'service', type: 'string', value: 'NAME', help: 'only rows whose destination service is NAME (default: all)' },
      { name: 'output', short: 'o', type: 'string', value: 'FORMAT', default: 'table', help: 'table (the live view) or json (one snapshot, then exit)' }],
    more: 'Examples:\n  skein top\n  skein top --service reviews --sort p99\n  skein top -o json --window 1m | jq \'.routes[] | {route, version, rps, p99: .latencyMs.p99}\'',
  },
  async run(p, out) {
    const format = outputFormat(p, ['table', 'json']);
    const sort = sortOf(str(p, 'sort'));
    const route = optStr(p, 'route');
    const service = optStr(p, 'service');
    const filter: TopFilter = { ...(route === undefined ? {} : { route }), ...(service === undefined ? {} : { service }) };
    const fetchView = viewFetcher(p);
    const first = await fetchView(); // a bad --window or an unreachable API fails here, before the screen is taken
    if (format === 'json') {
      out(JSON.stringify({ ...first, sort, ...filter, routes: topRows(first, sort, filter) }, null, 2));
      return 0;
    }
    return live(first, fetchView, sort, filter);
  },
};

function sortOf(v: string): TopSort {
  if (!(SORTS as readonly string[]).includes(v)) throw new MeshError(ErrorCodes.VALIDATION, `--sort: must be one of ${SORTS.join(', ')}, got "${v}"`);
  return v as TopSort;
}

function viewFetcher(p: Parsed): () => Promise<RouteStatsView> {
  const api = client(p);
  const path = `/v1/stats/routes?window=${encodeURIComponent(str(p, 'window'))}`;
  return () => api.call<RouteStatsView>('GET', path).catch((e: unknown) => {
    if (e instanceof MeshError && e.code === ErrorCodes.VALIDATION) throw new MeshError(ErrorCodes.VALIDATION, `--window: ${e.message.replace(/^query\.window: /, '')}`);
    throw e;
  });
}

/** The no-color.org rule: colour on a terminal unless NO_COLOR is set and not empty. */
export function useColor(isTty: boolean, env: NodeJS.ProcessEnv): boolean {
  return isTty && (env['NO_COLOR'] === undefined || env['NO_COLOR'] === '');
}

const ENTER = '\x1b[?1049h\x1b[?25l'; // alternate screen, cursor hidden
const LEAVE = '\x1b[?25h\x1b[?1049l';

/** The live loop; resolves with exit code 0 on q, Ctrl-C, SIGINT or SIGTERM, the terminal restored. */
function live(first: RouteStatsView, fetchView: () => Promise<RouteStatsView>, initialSort: TopSort, filter: TopFilter): Promise<number> {
  const stdout = process.stdout;
  const stdin = process.stdin;
  const tty = stdout.isTTY === true;
  const color = useColor(tty, process.env);
  let view = first;
  let error: string | undefined;
  let sort = initialSort;
  let inFlight = false;
  const draw = (): void => {
    const lines = renderTop(view, { sort, filter, color, width: tty ? stdout.columns : 1000, height: tty ? stdout.rows : 10_000, now: Date.now(), ...(error === undefined ? {} : { error }) });
    if (tty) stdout.write(`\x1b[H${lines.join('\x1b[K\r\n')}\x1b[K\x1b[J`);
    else stdout.write(`${lines.join('\n')}\n\n`);
  };
  return new Promise<number>((resolve) => {
    let done = false;
    const rawStdin = stdin.isTTY === true;
    const quit = (): void => {
      if (done) return;
      done = true;
      clearInterval(timer);
      process.off('SIGINT', quit);
      process.off('SIGTERM', quit);
      stdout.off('resize', draw);
      stdin.off('data', onKey);
      if (rawStdin) stdin.setRawMode(false);
      stdin.pause();
      if (tty) stdout.write(LEAVE);
      resolve(0);
    };
    const onKey = (d: Buffer): void => {
      for (const ch of d.toString('utf8')) {
        if (ch === 'q' || ch === 'Q' || ch === '\x03' || ch === '\x04') { quit(); return; }
        if (ch === 's' || ch === 'S') { sort = SORTS[(SORTS.indexOf(sort) + 1) % SORTS.length]!; draw(); }
      }
    };
    const tick = (): void => {
      if (inFlight) return;
      inFlight = true;
      fetchView().then((v) => { view = v; error = undefined; }, (e: unknown) => { error = (e as Error).message; })
        .finally(() => { inFlight = false; if (!done) draw(); });
    };
    process.on('SIGINT', quit);
    process.on('SIGTERM', quit);
    if (tty) { stdout.write(ENTER); stdout.on('resize', draw); }
    if (rawStdin) stdin.setRawMode(true);
    stdin.on('data', onKey);
    stdin.resume();
    const timer = setInterval(tick, TOP_REFRESH_MS);
    try {
      draw();
    } catch (e) {
      quit();
      throw e;
    }
  });
}
