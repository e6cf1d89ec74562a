/** The access log's trace id and sampling (sidecar/src/stats/access-log.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AccessLog, traceIdOf } from '../../../sidecar/src/stats/access-log';

const T32 = '4bf92f3577b34da6a3ce929d0e0e4736';
const CASES: [string, Record<string, string>, string | undefined][] = [
  ['W3C traceparent', { traceparent: `00-${T32}-00f067aa0ba902b7-01` }, T32],
  ['an all-zero W3C trace id is invalid', { traceparent: '00-00000000000000000000000000000000-00f067aa0ba902b7-01' }, undefined],
  ['B3 multi header (64-bit id)', { 'x-b3-traceid': '463ac35c9f6413ad' }, '463ac35c9f6413ad'],
  ['B3 single header', { b3: `${T32}-e457b5a2e4d86bd1-1` }, T32],
  ['traceparent wins over B3', { traceparent: `00-${T32}-00f067aa0ba902b7-01`, 'x-b3-traceid': '463ac35c9f6413ad' }, T32],
  ['malformed headers give none', { traceparent: 'garbage', 'x-b3-traceid': 'XYZ', b3: 'nope' }, undefined],
  ['no context at all', {}, undefined],
];
for (const [name, headers, want] of CASES) test(`trace id: ${name}`, () => assert.equal(traceIdOf(headers), want));

test('sampling: a ratio of 0.25 logs exactly the requests whose draw is under it', async () => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'skein-al-')), 'a.log');
  const draws = [0.1, 0.3, 0.24, 0.25, 0.9, 0.0];
  let i = 0;
  const log = new AccessLog({ destination: file, sampleRatio: 0.25 }, () => draws[i++]!);
  const req = { method: 'GET', route: { name: 'r' }, requestHeaders: {}, downstreamHeaders: {}, attempts: 1, upstreamHost: 'h:1', replyReason: undefined, downstreamPeer: undefined };
  for (let k = 0; k < draws.length; k++) log.record('outbound', req, 'c', 200, -1, 1234.4);
  log.flush();
  await new Promise((r) => setTimeout(r, 50));
  const lines = fs.readFileSync(file, 'utf8').split('\n').filter((l) => l !== '');
  assert.equal(lines.length, 3, 'draws 0.1, 0.24 and 0.0');
  assert.equal((JSON.parse(lines[0]!) as { durationMs: number }).durationMs, 1.234, 'the latency the route stats recorded, in ms, whole µs');
});
