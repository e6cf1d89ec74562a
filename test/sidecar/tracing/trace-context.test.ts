/** The caller's trace context, table-driven: W3C first, else B3 (single, then multi); none or invalid: undefined. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseTraceParent } from '@opentelemetry/core';
import { incomingContext, isSampled, traceparent } from '../../../sidecar/src/tracing/trace-context';

const T = '4bf92f3577b34da6a3ce929d0e0e4736';
const S = '00f067aa0ba902b7';

const CASES: { name: string; headers: Record<string, string>; want: { traceId: string; spanId: string; sampled: boolean; traceState?: string } | undefined }[] = [
  { name: 'no context', headers: { 'x-request-id': 'r' }, want: undefined },
  { name: 'W3C sampled', headers: { traceparent: `00-${T}-${S}-01` }, want: { traceId: T, spanId: S, sampled: true } },
  { name: 'W3C not sampled, with tracestate', headers: { traceparent: `00-${T}-${S}-00`, tracestate: 'vendor=x,other=y' }, want: { traceId: T, spanId: S, sampled: false, traceState: 'vendor=x,other=y' } },
  { name: 'W3C with an all-zero trace id is invalid', headers: { traceparent: `00-${'0'.repeat(32)}-${S}-01` }, want: undefined },
  { name: 'W3C garbage, B3 multi taken instead', headers: { traceparent: 'garbage', 'x-b3-traceid': T, 'x-b3-spanid': S, 'x-b3-sampled': '1' }, want: { traceId: T, spanId: S, sampled: true } },
  { name: 'B3 multi not sampled', headers: { 'x-b3-traceid': T, 'x-b3-spanid': S, 'x-b3-sampled': '0' }, want: { traceId: T, spanId: S, sampled: false } },
  { name: 'B3 single, 64-bit trace id (left-padded)', headers: { b3: `a3ce929d0e0e4736-${S}-1` }, want: { traceId: `0000000000000000a3ce929d0e0e4736`, spanId: S, sampled: true } },
  { name: 'B3 single, debug flag', headers: { b3: `${T}-${S}-d` }, want: { traceId: T, spanId: S, sampled: true } },
  { name: 'W3C wins over B3', headers: { traceparent: `00-${T}-${S}-00`, b3: `${'1'.repeat(32)}-${'2'.repeat(16)}-1` }, want: { traceId: T, spanId: S, sampled: false } },
];

describe('incomingContext', () => {
  for (const c of CASES) {
    test(c.name, () => {
      const sc = incomingContext(c.headers);
      if (c.want === undefined) { assert.equal(sc, undefined); return; }
      assert.ok(sc !== undefined);
      assert.deepEqual({ traceId: sc.traceId, spanId: sc.spanId, sampled: isSampled(sc), ...(sc.traceState ? { traceState: sc.traceState.serialize() } : {}) }, c.want);
    });
  }
  test('traceparent writes the sampled flag', () => {
    assert.equal(traceparent(T, S, true), `00-${T}-${S}-01`);
    assert.equal(traceparent(T, S, false), `00-${T}-${S}-00`);
  });
  test('a traceparent is read as OpenTelemetry\'s parser reads it: exact version 00, and every one-character change of it', () => {
    const valid = `00-${T}-${S}-01`;
    const inputs = [valid, `00-${T}-${S}-00`, `00-${T}-${S}-ff`, `ff-${T}-${S}-01`, `01-${T}-${S}-01`, `00-${T.toUpperCase()}-${S}-01`, `00-${T}-${'0'.repeat(16)}-01`, ` 00-${T}-${S}-0`, `00-${T}-${S}-01-extra`, `01-${T}-${S}-01-extra`];
    const alphabet = '0123456789abcdefABCDEF-gz _';
    for (let i = 0; i < valid.length; i++) for (const ch of alphabet) inputs.push(valid.slice(0, i) + ch + valid.slice(i + 1));
    for (const tp of inputs) {
      const ours = incomingContext({ traceparent: tp });
      const theirs = parseTraceParent(tp);
      const view = (sc: { traceId: string; spanId: string; traceFlags: number } | null | undefined) => (sc ? { traceId: sc.traceId, spanId: sc.spanId, traceFlags: sc.traceFlags } : null);
      assert.deepEqual(view(ours), view(theirs), tp);
    }
  });
});
