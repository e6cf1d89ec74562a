/**
 * RotatingIdentity (shared/src/identity/rotating-identity.ts) on a FakeClock with an injected
 * `random`, so every renewal time is exact. The CA is a test `issue` function that answers after
 * the caller yields (as a real Sign call does), counts its calls and fails on demand; the logger
 * is a real pino writing JSON lines into an array, each stamped with the fake clock's time.
 * Certificates are stand-in strings: nothing here parses them.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import type * as grpc from '@grpc/grpc-js';
import { FakeClock } from '../../../shared/src/clock';
import { ROTATION, RotatingIdentity } from '../../../shared/src/identity/rotating-identity';
import type { IssuedIdentity } from '../../../shared/src/identity/rotating-identity';

/** Lifetime of every test certificate: one hour. */
const LIFE = 3_600_000;
/** The test CA backdates notBefore by a minute, so "from notBefore" and "from now" differ. */
const BACKDATE = 60_000;

interface LogLine { level: number; msg: string; at: number; expiresAt?: string; expiresInS?: number; err?: string }
const INFO = 30;
const WARN = 40;
const ERROR = 50;

/** Lets the issue() call and the code awaiting it run to the end. No time passes. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

class TestCa {
  calls = 0;
  failing = false;
  constructor(private readonly clock: FakeClock) {}

  readonly issue = async (): Promise<IssuedIdentity> => {
    const n = ++this.calls;
    await Promise.resolve(); // the CA answers after the caller yields
    if (this.failing) throw new Error(`CA unavailable (call ${n})`);
    const notBefore = this.clock.now() - BACKDATE;
    return {
      spiffeId: 'spiffe://test.local/ns/default/sa/greeter',
      serial: `serial-${n}`,
      keyPem: `key ${n}`,
      certChainPem: `chain ${n}`,
      trustBundlePem: `bundle ${n}`,
      notBefore,
      notAfter: notBefore + LIFE,
    };
  };
}

function setup(random = () => 0.5) {
  const clock = new FakeClock();
  const ca = new TestCa(clock);
  const lines: LogLine[] = [];
  const log = pino({ level: 'info' }, { write: (s: string) => { lines.push({ ...(JSON.parse(s) as LogLine), at: clock.now() }); } });
  const rot = new RotatingIdentity({ issue: ca.issue, clock, log, what: 'workload', random });
  /** Moves the clock to `at` (absolute) and lets any renewal it started finish. */
  const advanceTo = async (at: number): Promise<void> => { clock.advance(at - clock.now()); await settle(); };
  return { clock, ca, lines, rot, advanceTo };
}

/**
 * When `id` is due for renewal with the given random() value: (50% ± 10%) of its life counted
 * from when it arrived (the test CA's answer time, notBefore + BACKDATE), not from the backdated notBefore.
 */
function dueAt(id: IssuedIdentity, random: number): number {
  const start = id.notBefore + BACKDATE;
  return start + (id.notAfter - start) * (ROTATION.renewAt + (2 * random - 1) * ROTATION.jitter);
}

describe('RotatingIdentity', () => {
  test('start() issues once and renews at notBefore + 50% of the lifetime, 40% at random()=0 and about 60% at random()→1', async () => {
    for (const [random, fraction] of [[0.5, 0.5], [0, 0.4], [0.999999, 0.6]] as const) {
      const { ca, rot, advanceTo } = setup(() => random);
      const first = await rot.start();
      assert.equal(ca.calls, 1);
      assert.equal(rot.current, first);
      const due = dueAt(first, random);
      assert.ok(Math.abs(due - (first.notBefore + BACKDATE + (LIFE - BACKDATE) * fraction)) < 1, `random()=${random}: due at ${fraction} of the lifetime from issuance`);
      await advanceTo(Math.ceil(due) - 1);
      assert.equal(ca.calls, 1, `random()=${random}: not renewed just before ${fraction} of the lifetime`);
      await advanceTo(Math.ceil(due));
      assert.equal(ca.calls, 2, `random()=${random}: renewed at ${fraction} of the lifetime`);
      assert.equal(rot.current.serial, 'serial-2');
      rot.close();
    }
  });

  test('a failed renewal is retried after 1s, 2s, 4s… capped at 30s, keeping the old identity; after a success the backoff resets and the next renewal is due from the new certificate', async () => {
    const { clock, ca, rot, advanceTo } = setup();
    const first = await rot.start();
    ca.failing = true;
    await advanceTo(dueAt(first, 0.5));
    assert.equal(ca.calls, 2);
    assert.equal(rot.failures, 1);

    const backoff = [1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000];
    for (const [i, delay] of backoff.entries()) {
      const from = clock.now();
      await advanceTo(from + delay - 1);
      assert.equal(ca.calls, 2 + i, `no retry before ${delay}ms`);
      await advanceTo(from + delay);
      assert.equal(ca.calls, 3 + i, `retry after ${delay}ms`);
      assert.equal(rot.failures, 2 + i);
      assert.equal(rot.current, first, 'the old identity stays current while renewal fails');
      assert.equal(rot.renewals, 0);
    }

    ca.failing = false;
    await advanceTo(clock.now() + 30_000);
    const second = rot.current;
    assert.equal(second.serial, `serial-${ca.calls}`);
    assert.equal(rot.renewals, 1);
    assert.equal(rot.failures, 1 + backoff.length);

    const callsAfterSuccess = ca.calls;
    await advanceTo(dueAt(second, 0.5) - 1);
    assert.equal(ca.calls, callsAfterSuccess, 'no renewal before notBefore + 50% of the new certificate');
    ca.failing = true;
    await advanceTo(dueAt(second, 0.5));
    assert.equal(ca.calls, callsAfterSuccess + 1, 'renewed at notBefore + 50% of the new certificate');
    await advanceTo(clock.now() + 999);
    assert.equal(ca.calls, callsAfterSuccess + 1);
    await advanceTo(clock.now() + 1);
    assert.equal(ca.calls, callsAfterSuccess + 2, 'the backoff starts again at 1s');
    rot.close();
  });

  test('failed renewals log at info, then a warning at most once a minute naming the expiry in the last 10% of the lifetime, then an error saying EXPIRED', async () => {
    const { clock, ca, lines, rot, advanceTo } = setup();
    const id = await rot.start();
    ca.failing = true;
    for (let at = dueAt(id, 0.5); at <= id.notAfter + 120_000; at += 1000) await advanceTo(at);
    rot.close();
    assert.ok(clock.now() > id.notAfter);

    const warnFrom = id.notAfter - LIFE * ROTATION.warnBelow;
    const expiresAt = new Date(id.notAfter).toISOString();
    assert.equal(lines.length, rot.failures, 'one line per failed renewal');
    for (const l of lines) assert.equal(l.expiresAt, expiresAt);

    const early = lines.filter((l) => l.at <= warnFrom);
    assert.ok(early.length > 5);
    for (const l of early) assert.deepEqual([l.level, l.msg], [INFO, 'workload certificate renewal failed; retrying'], `at ${l.at - id.notBefore}ms`);

    const late = lines.filter((l) => l.at > warnFrom && l.at < id.notAfter);
    const warnings = late.filter((l) => l.level === WARN);
    assert.equal(late[0]?.level, WARN, 'the first failure in the last 10% warns');
    for (const l of late) assert.ok(l.level === WARN || l.level === INFO);
    for (const w of warnings) {
      assert.equal(w.msg, 'workload certificate expires soon and could not be renewed; retrying');
      assert.equal(w.expiresInS, Math.round((id.notAfter - w.at) / 1000));
    }
    const gaps = warnings.slice(1).map((w, i) => w.at - warnings[i]!.at);
    assert.ok(warnings.length >= 4, `${warnings.length} warnings in the last 6 minutes`);
    for (const gap of gaps) assert.ok(gap >= ROTATION.warnEveryMs && gap <= ROTATION.warnEveryMs + ROTATION.maxRetryMs, `warnings ${gap}ms apart`);

    const expired = lines.filter((l) => l.at >= id.notAfter);
    assert.ok(expired.length >= 3);
    for (const l of expired) {
      assert.equal(l.level, ERROR);
      assert.match(l.msg, /EXPIRED/);
    }
    assert.equal(rot.renewals, 0);
  });

  test('onChange listeners get each new identity, renewals counts successes, and renewNow() renews at once and restarts the schedule', async () => {
    const { clock, ca, rot, advanceTo } = setup();
    const seen: string[] = [];
    rot.onChange((id) => seen.push(id.serial));
    const first = await rot.start();
    assert.deepEqual(seen, ['serial-1']);
    assert.equal(rot.renewals, 0);

    await advanceTo(dueAt(first, 0.5));
    const second = rot.current;
    assert.deepEqual(seen, ['serial-1', 'serial-2']);
    assert.equal(rot.renewals, 1);

    await advanceTo(clock.now() + 600_000);
    const third = await rot.renewNow();
    assert.equal(ca.calls, 3);
    assert.equal(rot.current, third);
    assert.deepEqual(seen, ['serial-1', 'serial-2', 'serial-3']);
    assert.equal(rot.renewals, 2);

    await advanceTo(dueAt(third, 0.5) - 1);
    assert.ok(clock.now() > dueAt(second, 0.5));
    assert.equal(ca.calls, 3, 'the renewal due from the replaced certificate does not run');
    await advanceTo(dueAt(third, 0.5));
    assert.equal(ca.calls, 4, 'the renewal runs when due from the renewNow() certificate');
    assert.deepEqual(seen, ['serial-1', 'serial-2', 'serial-3', 'serial-4']);
    assert.equal(rot.renewals, 3);
    rot.close();
  });

  test('a failed renewNow() leaves the scheduled renewal and the retries in place', async () => {
    const { clock, ca, rot, advanceTo } = setup();
    const first = await rot.start();
    ca.failing = true;
    await assert.rejects(rot.renewNow(), /CA unavailable/);
    assert.equal(rot.current, first);
    ca.failing = false;
    await advanceTo(dueAt(first, 0.5));
    assert.equal(ca.calls, 3, 'the renewal due at 50% still runs');
    const second = rot.current;
    assert.equal(second.serial, 'serial-3');

    ca.failing = true;
    await advanceTo(dueAt(second, 0.5));
    assert.equal(ca.calls, 4);
    await assert.rejects(rot.renewNow(), /CA unavailable/);
    assert.equal(ca.calls, 5);
    await advanceTo(clock.now() + 1000);
    assert.equal(ca.calls, 6, 'the 1s retry still runs');
    rot.close();
  });

  test('close() stops renewals: far past expiry, issue is not called again', async () => {
    const { clock, ca, rot, advanceTo } = setup();
    const first = await rot.start();
    rot.close();
    for (let at = clock.now(); at < first.notAfter + 10 * LIFE; at += 60_000) await advanceTo(at);
    assert.equal(ca.calls, 1);
    assert.equal(rot.current, first);
    assert.equal(clock.pending(), 0);
  });

  test('close() during failing renewals stops the retries', async () => {
    const { clock, ca, rot, advanceTo } = setup();
    const first = await rot.start();
    ca.failing = true;
    await advanceTo(dueAt(first, 0.5));
    await advanceTo(clock.now() + 1000);
    assert.equal(ca.calls, 3);
    rot.close();
    for (let at = clock.now(); at < first.notAfter + LIFE; at += 1000) await advanceTo(at);
    assert.equal(ca.calls, 3);
    assert.equal(clock.pending(), 0);
  });

  test('close() while a renewal is in flight installs nothing it returns and retries nothing if it fails', async () => {
    for (const failing of [false, true]) {
      const { clock, ca, rot } = setup();
      const seen: string[] = [];
      const first = await rot.start();
      rot.onChange((id) => seen.push(id.serial));
      ca.failing = failing;
      clock.advance(dueAt(first, 0.5) - clock.now());
      assert.equal(ca.calls, 2, 'the renewal has started');
      rot.close();
      await settle();
      assert.equal(rot.current, first);
      assert.deepEqual([rot.renewals, rot.failures, seen], [0, 0, []]);
      assert.equal(clock.pending(), 0, `nothing scheduled after a ${failing ? 'failed' : 'successful'} issue`);
    }
  });

  test('provider hands listeners added after start() the current trust bundle and certificate+key as Buffers, after the caller returns; renewals reach them until they are removed', async () => {
    const { rot, advanceTo } = setup();
    const first = await rot.start();
    const ca: (grpc.experimental.CaCertificateUpdate | null)[] = [];
    const ids: (grpc.experimental.IdentityCertificateUpdate | null)[] = [];
    const onCa = (u: grpc.experimental.CaCertificateUpdate | null): void => { ca.push(u); };
    const onId = (u: grpc.experimental.IdentityCertificateUpdate | null): void => { ids.push(u); };
    rot.provider.addCaCertificateListener(onCa);
    rot.provider.addIdentityCertificateListener(onId);
    assert.deepEqual([ca.length, ids.length], [0, 0], 'nothing is delivered inside add…Listener');
    await Promise.resolve();
    assert.deepEqual([ca.length, ids.length], [1, 1], 'delivered after a microtask');
    assert.ok(Buffer.isBuffer(ca[0]?.caCertificate));
    assert.ok(Buffer.isBuffer(ids[0]?.certificate) && Buffer.isBuffer(ids[0]?.privateKey));
    assert.equal(ca[0]?.caCertificate.toString(), first.trustBundlePem);
    assert.equal(ids[0]?.certificate.toString(), first.certChainPem);
    assert.equal(ids[0]?.privateKey.toString(), first.keyPem);

    await advanceTo(dueAt(first, 0.5));
    const second = rot.current;
    assert.notEqual(second, first);
    assert.deepEqual([ca.length, ids.length], [2, 2]);
    assert.equal(ca[1]?.caCertificate.toString(), second.trustBundlePem);
    assert.equal(ids[1]?.certificate.toString(), second.certChainPem);
    assert.equal(ids[1]?.privateKey.toString(), second.keyPem);

    rot.provider.removeCaCertificateListener(onCa);
    rot.provider.removeIdentityCertificateListener(onId);
    await rot.renewNow();
    await settle();
    assert.deepEqual([ca.length, ids.length], [2, 2], 'removed listeners get nothing more');
    rot.close();
  });

  test('provider gives nothing to a listener removed before its first delivery', async () => {
    const { rot } = setup();
    await rot.start();
    const got: unknown[] = [];
    const onCa = (u: unknown): void => { got.push(u); };
    const onId = (u: unknown): void => { got.push(u); };
    rot.provider.addCaCertificateListener(onCa);
    rot.provider.addIdentityCertificateListener(onId);
    rot.provider.removeCaCertificateListener(onCa);
    rot.provider.removeIdentityCertificateListener(onId);
    await settle();
    assert.deepEqual(got, []);
    rot.close();
  });

  test('a process paused past the renewal time renews at once when it wakes, with one issue call', async () => {
    const { clock, ca, rot, advanceTo } = setup();
    const first = await rot.start();
    await advanceTo(clock.now() + 2 * LIFE);
    assert.ok(clock.now() > first.notAfter, 'woke after the certificate expired');
    assert.equal(ca.calls, 2);
    const renewed = rot.current;
    assert.equal(renewed.serial, 'serial-2');
    assert.ok(renewed.notAfter > clock.now());
    await advanceTo(clock.now());
    assert.equal(ca.calls, 2, 'no second renewal right after the first');
    await advanceTo(dueAt(renewed, 0.5) - 1);
    assert.equal(ca.calls, 2);
    await advanceTo(dueAt(renewed, 0.5));
    assert.equal(ca.calls, 3, 'the next renewal is due from the new certificate');
    rot.close();
  });

  test('a machine that slept past the renewal time (wall clock jumped, timers did not) renews within a minute of waking', async () => {
    const fake = new FakeClock();
    let slept = 0;
    // Node's timers run on a monotonic clock that stops during sleep; Date.now() does not.
    const clock = { now: () => fake.now() + slept, setTimer: (ms: number, fn: () => void) => fake.setTimer(ms, fn) };
    const ca = new TestCa(fake);
    const rot = new RotatingIdentity({ issue: async () => { const id = await ca.issue(); return { ...id, notBefore: id.notBefore + slept, notAfter: id.notAfter + slept }; }, clock, log: pino({ level: 'silent' }), what: 'workload', random: () => 0.5 });
    const first = await rot.start();
    fake.advance(60_000);
    await settle();
    slept = LIFE; // asleep for a whole lifetime: the certificate expired meanwhile
    assert.ok(clock.now() > first.notAfter);
    fake.advance(60_000);
    await settle();
    assert.equal(ca.calls, 2, 'renewed at the first wall-clock check after waking');
    assert.ok(rot.expiresInSeconds() > 0, 'the new certificate is valid now');
    rot.close();
  });

  test('a short certificate backdated past its renewal point renews at its point from arrival, not in a loop', async () => {
    const clock = new FakeClock();
    let calls = 0;
    // 1 minute of validity from now, backdated 10 minutes: 5% of the whole window lies in the past.
    const issue = async (): Promise<IssuedIdentity> => ({ spiffeId: 'spiffe://t/ns/d/sa/a', serial: `s${++calls}`, keyPem: 'k', certChainPem: 'c', trustBundlePem: 'b', notBefore: clock.now() - 600_000, notAfter: clock.now() + 60_000 });
    const rot = new RotatingIdentity({ issue, clock, log: pino({ level: 'silent' }), what: 'workload', random: () => 0.5, renewAt: 0.05, jitter: 0.01 });
    await rot.start();
    await settle();
    assert.equal(calls, 1, 'not renewed at once');
    clock.advance(2_999);
    await settle();
    assert.equal(calls, 1);
    clock.advance(1);
    await settle();
    assert.equal(calls, 2, 'renewed at 5% of the minute it was valid for from arrival (3 s)');
    rot.close();
  });
});

describe('RotatingIdentity.resume (skein cert renew --loop)', () => {
  const earlier = (clock: FakeClock, issuedAgo: number): IssuedIdentity => {
    const notBefore = clock.now() - issuedAgo;
    return { spiffeId: 'spiffe://test.local/ns/default/sa/greeter', serial: 'from-files', keyPem: 'k', certChainPem: 'c', trustBundlePem: 'b', notBefore, notAfter: notBefore + LIFE };
  };

  test('takes over a certificate issued earlier without issuing, and renews it at half of its own lifetime', async () => {
    const { clock, ca, rot, advanceTo } = setup();
    const cur = earlier(clock, LIFE / 4);
    rot.resume(cur);
    assert.equal(ca.calls, 0);
    assert.equal(rot.current.serial, 'from-files');
    await advanceTo(cur.notBefore + LIFE / 2 - 1);
    assert.equal(ca.calls, 0);
    await advanceTo(cur.notBefore + LIFE / 2);
    assert.equal(ca.calls, 1);
    assert.equal(rot.current.serial, 'serial-1');
    rot.close();
  });

  test('a certificate already past half its lifetime renews at once', async () => {
    const { clock, ca, rot, advanceTo } = setup();
    rot.resume(earlier(clock, (LIFE * 3) / 4));
    await advanceTo(clock.now());
    assert.equal(ca.calls, 1);
    assert.equal(rot.current.serial, 'serial-1');
    rot.close();
  });
});
