import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RetryBudget } from '../../../sidecar/src/resilience/retry-budget';
import { IMPLICIT_RETRIES, RetryState } from '../../../sidecar/src/resilience/retry-state';
import type { AttemptOutcome } from '../../../sidecar/src/resilience/retry-state';
import { parseRetryPolicy } from '../../../sidecar/src/route/retry-policy';
import type { RetryPolicy } from '../../../sidecar/src/route/retry-policy';
import { parseHeaderMatcher } from '../../../sidecar/src/route/header-matcher';
import { decodeOrThrow } from '../../../shared/src/xds/issues';

const policy = (retryOn: string[], extra: Partial<RetryPolicy> = {}): RetryPolicy => ({
  retryOn: new Set(retryOn), numRetries: 3, perTryTimeoutMs: 0, baseIntervalMs: 25, maxIntervalMs: 250, retriableStatusCodes: [], retriableHeaders: [], retriesResponses: true, ...extra,
});
const resp = (status: number, grpcStatus?: number, headers?: Record<string, string>): AttemptOutcome => ({ kind: 'response', status, grpcStatus, ...(headers === undefined ? {} : { headers }) } as AttemptOutcome);
const tryAgain = [decodeOrThrow('RetryPolicy', (issues) => parseHeaderMatcher({ name: 'x-try-again', string_match: { exact: 'yes' } }, 'm', issues))];
const state = (p: RetryPolicy | undefined, o: { replayable?: boolean; budget?: RetryBudget; random?: number } = {}) =>
  new RetryState(p, o.budget ?? new RetryBudget(), { bodyReplayable: o.replayable ?? true, random: () => o.random ?? 1 });

describe('RetryState: which outcomes are retried', () => {
  const cases: { name: string; policy: RetryPolicy | undefined; outcome: AttemptOutcome; retry: boolean; reason?: string }[] = [
    { name: 'success is never retried', policy: policy(['5xx']), outcome: resp(200), retry: false, reason: 'success' },
    { name: 'gRPC OK is never retried', policy: policy(['unavailable']), outcome: resp(200, 0), retry: false, reason: 'success' },
    { name: 'no policy: a POST that got a 503 is NOT retried (no hidden retries)', policy: undefined, outcome: resp(503), retry: false, reason: 'no-policy' },
    { name: 'no policy: a reset after bytes were sent is not retried', policy: undefined, outcome: { kind: 'reset', sentBytes: true }, retry: false, reason: 'no-policy' },
    { name: 'no policy: even a reset before any byte is not retried (only connect failure / refused stream are)', policy: undefined, outcome: { kind: 'reset', sentBytes: false }, retry: false, reason: 'no-policy' },
    { name: 'no policy: a connect failure is retried (nothing reached the upstream)', policy: undefined, outcome: { kind: 'connect-failure' }, retry: true },
    { name: 'no policy: a refused stream is retried', policy: undefined, outcome: { kind: 'refused-stream' }, retry: true },
    { name: '5xx retries a 500', policy: policy(['5xx']), outcome: resp(500), retry: true },
    { name: 'gateway-error retries a 502', policy: policy(['gateway-error']), outcome: resp(502), retry: true },
    { name: 'gateway-error does not retry a 500', policy: policy(['gateway-error']), outcome: resp(500), retry: false, reason: 'not-retriable' },
    { name: 'retriable-status-codes retries a listed 409', policy: policy(['retriable-status-codes'], { retriableStatusCodes: [409] }), outcome: resp(409), retry: true },
    { name: 'retriable-status-codes does not retry an unlisted 429', policy: policy(['retriable-status-codes'], { retriableStatusCodes: [409] }), outcome: resp(429), retry: false, reason: 'success' },
    { name: 'gRPC unavailable', policy: policy(['unavailable']), outcome: resp(200, 14), retry: true },
    { name: 'gRPC cancelled', policy: policy(['cancelled']), outcome: resp(200, 1), retry: true },
    { name: 'gRPC deadline-exceeded', policy: policy(['deadline-exceeded']), outcome: resp(200, 4), retry: true },
    { name: 'gRPC resource-exhausted', policy: policy(['resource-exhausted']), outcome: resp(200, 8), retry: true },
    { name: 'gRPC internal', policy: policy(['internal']), outcome: resp(200, 13), retry: true },
    { name: 'gRPC NOT_FOUND is not retried by unavailable', policy: policy(['unavailable']), outcome: resp(200, 5), retry: false, reason: 'not-retriable' },
    { name: 'reset with retryOn reset', policy: policy(['reset']), outcome: { kind: 'reset', sentBytes: true }, retry: true },
    { name: 'connect-failure policy', policy: policy(['connect-failure']), outcome: { kind: 'connect-failure' }, retry: true },
    { name: 'refused-stream policy', policy: policy(['refused-stream']), outcome: { kind: 'refused-stream' }, retry: true },
    { name: 'per-try timeout under 5xx', policy: policy(['5xx']), outcome: { kind: 'per-try-timeout' }, retry: true },
    { name: 'per-try timeout not under unavailable', policy: policy(['unavailable']), outcome: { kind: 'per-try-timeout' }, retry: false, reason: 'not-retriable' },
    // Envoy's retriable-4xx is 409 Conflict only.
    { name: 'retriable-4xx retries a 409', policy: policy(['retriable-4xx']), outcome: resp(409), retry: true },
    { name: 'retriable-4xx does not retry a 429', policy: policy(['retriable-4xx']), outcome: resp(429), retry: false, reason: 'success' },
    { name: 'retriable-4xx does not retry a 500', policy: policy(['retriable-4xx']), outcome: resp(500), retry: false, reason: 'not-retriable' },
    { name: 'a 409 without retriable-4xx is passed on', policy: policy(['5xx']), outcome: resp(409), retry: false, reason: 'success' },
    // reset-before-request: only when no request byte can have reached the upstream.
    { name: 'reset-before-request retries a reset before any byte was sent', policy: policy(['reset-before-request']), outcome: { kind: 'reset', sentBytes: false }, retry: true },
    { name: 'reset-before-request retries a connect failure', policy: policy(['reset-before-request']), outcome: { kind: 'connect-failure' }, retry: true },
    { name: 'reset-before-request does not retry a reset after bytes were sent', policy: policy(['reset-before-request']), outcome: { kind: 'reset', sentBytes: true }, retry: false, reason: 'not-retriable' },
    { name: 'reset-before-request does not retry a per-try timeout', policy: policy(['reset-before-request']), outcome: { kind: 'per-try-timeout' }, retry: false, reason: 'not-retriable' },
    // envoy-ratelimited: the response carries x-envoy-ratelimited (any status).
    { name: 'envoy-ratelimited retries a 429 with x-envoy-ratelimited', policy: policy(['envoy-ratelimited']), outcome: resp(429, undefined, { 'x-envoy-ratelimited': 'true' }), retry: true },
    { name: 'envoy-ratelimited does not retry a plain 429', policy: policy(['envoy-ratelimited']), outcome: resp(429, undefined, {}), retry: false, reason: 'success' },
    { name: 'x-envoy-ratelimited without the condition is not retried', policy: policy(['5xx']), outcome: resp(429, undefined, { 'x-envoy-ratelimited': 'true' }), retry: false, reason: 'success' },
    // retriable-headers: a response matching any of retriable_headers (any status).
    { name: 'retriable-headers retries a matching 200', policy: policy(['retriable-headers'], { retriableHeaders: tryAgain }), outcome: resp(200, undefined, { 'x-try-again': 'yes' }), retry: true },
    { name: 'retriable-headers does not retry a non-matching response', policy: policy(['retriable-headers'], { retriableHeaders: tryAgain }), outcome: resp(503, undefined, { 'x-try-again': 'no' }), retry: false, reason: 'not-retriable' },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const d = state(c.policy).decide(c.outcome);
      assert.equal(d.retry, c.retry, JSON.stringify(d));
      if (!d.retry && c.reason !== undefined) assert.equal(d.reason, c.reason);
    });
  }
});

describe('RetryState: limits', () => {
  test('stops after numRetries, and after IMPLICIT_RETRIES without a policy', () => {
    const s = state(policy(['5xx'], { numRetries: 2 }));
    assert.equal(s.decide(resp(503)).retry, true);
    assert.equal(s.decide(resp(503)).retry, true);
    assert.deepEqual(s.decide(resp(503)), { retry: false, reason: 'attempts-exhausted' });
    assert.equal(s.retriesMade, 2);
    const implicit = state(undefined);
    for (let i = 0; i < IMPLICIT_RETRIES; i++) assert.equal(implicit.decide({ kind: 'connect-failure' }).retry, true);
    assert.deepEqual(implicit.decide({ kind: 'connect-failure' }), { retry: false, reason: 'attempts-exhausted' });
  });

  test('a body that cannot be replayed is never retried, even when nothing was sent', () => {
    assert.deepEqual(state(policy(['5xx']), { replayable: false }).decide(resp(503)), { retry: false, reason: 'body-not-replayable' });
  });

  test('backoff: exponential with full jitter, capped at max', () => {
    const top = state(policy(['5xx'], { numRetries: 6, baseIntervalMs: 25, maxIntervalMs: 250 }), { random: 0.999999 });
    const delays = Array.from({ length: 6 }, () => (top.decide(resp(503)) as { delayMs: number }).delayMs);
    assert.deepEqual(delays, [24, 49, 99, 199, 249, 249]);
    const half = state(policy(['5xx'], { numRetries: 3 }), { random: 0.5 });
    assert.deepEqual([1, 2, 3].map(() => (half.decide(resp(503)) as { delayMs: number }).delayMs), [12, 25, 50]);
    assert.equal((state(policy(['5xx']), { random: 0 }).decide(resp(503)) as { delayMs: number }).delayMs, 0);
  });
});

describe('RetryBudget', () => {
  test('allows max(minRetryConcurrency, budgetPercent x active requests) retries at once', () => {
    const b = new RetryBudget(20, 3);
    b.activeRequests = 10;
    assert.equal(b.limit(), 3, '20% of 10 is 2, below the minimum of 3');
    b.activeRequests = 100;
    assert.equal(b.limit(), 20);
  });

  test('retries waiting in backoff hold their slot until the attempt ends (envoy#30205)', () => {
    const budget = new RetryBudget(20, 3);
    budget.activeRequests = 10;
    const waiting = [state(policy(['5xx']), { budget }), state(policy(['5xx']), { budget }), state(policy(['5xx']), { budget })];
    for (const s of waiting) assert.equal(s.decide(resp(503)).retry, true); // all three now sleeping in backoff
    assert.equal(budget.activeRetries, 3);
    assert.deepEqual(state(policy(['5xx']), { budget }).decide(resp(503)), { retry: false, reason: 'budget-exhausted' });
    waiting[0]!.attemptDone(); // the first retry's attempt finished
    assert.equal(budget.activeRetries, 2);
    assert.equal(state(policy(['5xx']), { budget }).decide(resp(503)).retry, true);
  });

  test('a retry of a request that reached no upstream (connect failure, refused stream) takes no slot, even with the budget exhausted', () => {
    const budget = new RetryBudget(20, 3);
    budget.activeRequests = 10;
    const holders = [0, 1, 2].map(() => state(policy(['5xx']), { budget }));
    for (const s of holders) assert.equal(s.decide(resp(503)).retry, true);
    assert.equal(budget.remaining(), 0, 'the budget is exhausted by retries after real responses');
    for (const outcome of [{ kind: 'connect-failure' }, { kind: 'refused-stream' }] as const) {
      for (const p of [undefined, policy(['connect-failure', 'refused-stream', 'reset'])]) {
        const s = state(p, { budget });
        const d = s.decide(outcome);
        assert.equal(d.retry, true, `${outcome.kind} with ${p ? 'a policy' : 'no policy'}: ${JSON.stringify(d)}`);
        assert.equal(budget.activeRetries, 3, 'no slot taken');
        s.attemptDone();
        assert.equal(budget.activeRetries, 3, 'and none released');
      }
    }
    // A reset after bytes went out may have reached the app: it is budgeted like a response.
    assert.deepEqual(state(policy(['reset']), { budget }).decide({ kind: 'reset', sentBytes: true }), { retry: false, reason: 'budget-exhausted' });
    // The exemption does not lift the retry count: IMPLICIT_RETRIES without a policy.
    const s = state(undefined, { budget });
    for (let i = 0; i < IMPLICIT_RETRIES; i++) assert.equal(s.decide({ kind: 'connect-failure' }).retry, true);
    assert.deepEqual(s.decide({ kind: 'connect-failure' }), { retry: false, reason: 'attempts-exhausted' });
  });

  test('with every attempt failing, the retries in flight never exceed the budget', () => {
    const budget = new RetryBudget(20, 3);
    budget.activeRequests = 50; // limit 10
    const states = Array.from({ length: 50 }, () => state(policy(['5xx'], { numRetries: 5 }), { budget }));
    let granted = 0;
    let refused = 0;
    let peak = 0;
    for (let round = 0; round < 5; round++) {
      for (const s of states) {
        const d = s.decide(resp(503)); // ends this request's previous attempt, then decides
        if (d.retry) granted++; else if (d.reason === 'budget-exhausted') refused++;
        peak = Math.max(peak, budget.activeRetries);
      }
    }
    assert.equal(peak, 10, 'retries in flight reached, and never passed, 20% of 50');
    assert.ok(refused > 0, 'the budget refused retries');
    assert.ok(granted < 50 * 5, `far fewer retries than a budget-less policy would make (${granted})`);
    for (const s of states) s.attemptDone();
    assert.equal(budget.activeRetries, 0);
  });
});

describe('parseRetryPolicy: every accepted retry_on condition has an effect', () => {
  const bad: [label: string, raw: Record<string, unknown>, error: string][] = [
    ['http3-post-connect-failure (the sidecar has no HTTP/3)', { retry_on: '5xx,http3-post-connect-failure' },
      'rp.retry_on: "http3-post-connect-failure" cannot have an effect: the skein sidecar does not speak HTTP/3'],
    ['retriable-headers without retriable_headers', { retry_on: 'retriable-headers' },
      'rp.retriable_headers: is required (non-empty) with retry_on "retriable-headers"'],
    ['retriable_headers without retriable-headers', { retry_on: '5xx', retriable_headers: [{ name: 'x-a', present_match: true }] },
      'rp.retriable_headers: has no effect without retry_on "retriable-headers"'],
    ['a pseudo-header in retriable_headers', { retry_on: 'retriable-headers', retriable_headers: [{ name: ':status', string_match: { exact: '503' } }] },
      'rp.retriable_headers[0].name: pseudo-headers are not supported here (use retriable_status_codes for :status)'],
  ];
  for (const [label, raw, error] of bad) {
    test(`rejects ${label}`, () => assert.throws(() => decodeOrThrow('RetryPolicy', (issues) => parseRetryPolicy(raw, 'rp', issues)), (e: Error) => { assert.equal(e.message, error); return true; }));
  }

  test('accepts the conditions it honours', () => {
    const p = decodeOrThrow('RetryPolicy', (issues) => parseRetryPolicy({ retry_on: 'retriable-4xx,reset-before-request,envoy-ratelimited,retriable-headers', retriable_headers: [{ name: 'x-try-again', string_match: { exact: 'yes' } }] }, 'rp', issues));
    assert.deepEqual([...p.retryOn], ['retriable-4xx', 'reset-before-request', 'envoy-ratelimited', 'retriable-headers']);
    assert.equal(p.retriableHeaders.length, 1);
    assert.equal(p.retriableHeaders[0]!.name, 'x-try-again');
  });
});
