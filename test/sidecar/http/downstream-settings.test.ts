/** The sidecar's downstream flags: defaults, accepted values, and errors naming the flag. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_DOWNSTREAM, DOWNSTREAM_FLAGS, parseDownstreamFlags } from '../../../sidecar/src/http/downstream-settings';

const parse = (flags: Record<string, string>) => parseDownstreamFlags((name) => flags[name]);

describe('downstream flags', () => {
  test('defaults: 5m stream idle, 100 streams, 10s request headers, 60s HTTP/1.1 idle; --help shows them', () => {
    assert.deepEqual(parse({}), { streamIdleTimeoutMs: 300_000, maxConcurrentStreams: 100, requestHeadersTimeoutMs: 10_000, http1IdleTimeoutMs: 60_000 });
    assert.deepEqual(parse({}), DEFAULT_DOWNSTREAM);
    assert.deepEqual(DOWNSTREAM_FLAGS.map((f) => [f.name, f.default]), [['stream-idle-timeout', '5m'], ['max-concurrent-streams', '100'], ['request-headers-timeout', '10s'], ['http1-idle-timeout', '1m']]);
  });

  const good: [Record<string, string>, Partial<typeof DEFAULT_DOWNSTREAM>][] = [
    [{ 'stream-idle-timeout': '30s' }, { streamIdleTimeoutMs: 30_000 }],
    [{ 'stream-idle-timeout': '0' }, { streamIdleTimeoutMs: 0 }],
    [{ 'max-concurrent-streams': '1' }, { maxConcurrentStreams: 1 }],
    [{ 'max-concurrent-streams': '2147483647' }, { maxConcurrentStreams: 2147483647 }],
    [{ 'request-headers-timeout': '250ms' }, { requestHeadersTimeoutMs: 250 }],
    [{ 'http1-idle-timeout': '24h' }, { http1IdleTimeoutMs: 86_400_000 }],
  ];
  for (const [flags, want] of good) {
    test(`accepts ${JSON.stringify(flags)}`, () => assert.deepEqual(parse(flags), { ...DEFAULT_DOWNSTREAM, ...want }));
  }

  const bad: [Record<string, string>, RegExp][] = [
    [{ 'stream-idle-timeout': '5' }, /^--stream-idle-timeout: invalid duration "5"/],
    [{ 'stream-idle-timeout': '25h' }, /^--stream-idle-timeout: must be at most 24h/],
    [{ 'request-headers-timeout': 'soon' }, /^--request-headers-timeout: invalid duration/],
    [{ 'http1-idle-timeout': '-1s' }, /^--http1-idle-timeout: invalid duration/],
    [{ 'max-concurrent-streams': '0' }, /^--max-concurrent-streams: must be an integer from 1 to 2147483647, got "0"/],
    [{ 'max-concurrent-streams': '1.5' }, /^--max-concurrent-streams: must be an integer/],
    [{ 'max-concurrent-streams': '2147483648' }, /^--max-concurrent-streams: must be an integer/],
  ];
  for (const [flags, msg] of bad) {
    test(`refuses ${JSON.stringify(flags)} naming the flag`, () => assert.throws(() => parse(flags), (e: Error & { code?: string }) => msg.test(e.message) && e.code === 'SKEIN_ERR_VALIDATION'));
  }
});
