/**
 * Load balancers (sidecar/src/upstream/lb): round_robin, least_request, ring_hash, random,
 * peak_ewma and the registry. Deterministic: randomness comes from a seeded PRNG, time from
 * `now` values set by hand.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Host } from '../../../sidecar/src/upstream/host';
import type { PickContext, Picker } from '../../../sidecar/src/upstream/host';
import { createLoadBalancer, isLoadBalancerRegistered, registerLoadBalancer, registeredLoadBalancers } from '../../../sidecar/src/upstream/lb/registry';
import type { LbConfig, LbPolicy } from '../../../sidecar/src/upstream/lb/registry';
import { RoundRobinLoadBalancer } from '../../../sidecar/src/upstream/lb/round-robin';
import { LeastRequestLoadBalancer } from '../../../sidecar/src/upstream/lb/least-request';
import { RingHashLoadBalancer, RingHashPicker, hashKey, pointCounts } from '../../../sidecar/src/upstream/lb/ring-hash';
import { fnv1a32 } from '../../../sidecar/src/upstream/lb/hash';
import { RandomLoadBalancer } from '../../../sidecar/src/upstream/lb/random';
import { DEFAULT_RTT_MS, PeakEwmaLoadBalancer, currentEwmaMs, observeLatency } from '../../../sidecar/src/upstream/lb/peak-ewma';
import { ErrorCodes, MeshError } from '../../../shared/src/errors';
import { mulberry32 } from '../../support/prng';

function hosts(n: number, weights: number[] = []): Host[] {
  return Array.from({ length: n }, (_, i) => new Host(`10.0.0.${i + 1}`, 8080, weights[i] ?? 1, 'z1', 'HEALTHY'));
}

function ctx(over: Partial<PickContext> = {}): PickContext {
  return { hash: undefined, tried: undefined, now: 0, ...over };
}

function counts(picker: Picker, n: number, c: PickContext = ctx()): Map<Host | undefined, number> {
  const m = new Map<Host | undefined, number>();
  for (let i = 0; i < n; i++) {
    const h = picker.pick(c);
    m.set(h, (m.get(h) ?? 0) + 1);
  }
  return m;
}

const POLICIES: LbPolicy[] = ['round_robin', 'least_request', 'ring_hash', 'random', 'peak_ewma'];

describe('every policy', () => {
  for (const policy of POLICIES) {
    test(`${policy}: empty before update and after update([]); single host; snapshots; tried`, () => {
      const lb = createLoadBalancer({ policy, random: mulberry32(1) });
      assert.equal(lb.picker.pick(ctx()), undefined);
      const [a, b, c, d] = hosts(4);
      lb.update([a]);
      assert.equal(lb.picker.pick(ctx({ hash: 123 })), a);
      // Only host tried: still returned (a retry to the same host beats no host).
      assert.equal(lb.picker.pick(ctx({ tried: new Set([a]) })), a);

      const input = [a, b];
      lb.update(input);
      const old = lb.picker;
      input.push(c); // the caller's array is copied, not aliased
      lb.update([c, d]);
      assert.notEqual(lb.picker, old);
      for (let i = 0; i < 50; i++) {
        const h = old.pick(ctx({ hash: i * 0x9e3779b9 }));
        assert.ok(h === a || h === b, `old picker picked ${h?.key}`);
        const n = lb.picker.pick(ctx({ hash: i * 0x9e3779b9 }));
        assert.ok(n === c || n === d, `new picker picked ${n?.key}`);
      }
      for (let i = 0; i < 50; i++) assert.equal(lb.picker.pick(ctx({ hash: i * 7919, tried: new Set([c]) })), d);

      lb.update([]);
      assert.equal(lb.picker.pick(ctx()), undefined);
      assert.ok(old.pick(ctx()) !== undefined);
    });
  }
});

describe('round_robin', () => {
  test('rotates in order with equal weights', () => {
    const hs = hosts(3);
    const lb = new RoundRobinLoadBalancer();
    lb.update(hs);
    const seq = Array.from({ length: 7 }, () => hs.indexOf(lb.picker.pick(ctx())!));
    assert.deepEqual(seq, [0, 1, 2, 0, 1, 2, 0]);
  });

  test('is smooth weighted round robin: exact shares per cycle, interleaved like nginx', () => {
    const [a, b] = hosts(2, [3, 1]);
    const lb = new RoundRobinLoadBalancer();
    lb.update([a, b]);
    const seq = Array.from({ length: 8 }, () => lb.picker.pick(ctx()));
    assert.deepEqual(seq, [a, a, b, a, a, a, b, a]);

    // nginx's own example: weights 5,1,1 -> a a b a c a a.
    const hs = hosts(3, [5, 1, 1]);
    lb.update(hs);
    const names = Array.from({ length: 14 }, () => 'abc'[hs.indexOf(lb.picker.pick(ctx())!)]).join('');
    assert.equal(names, 'aabacaaaabacaa');

    // Exact over every full cycle for an irregular mix.
    const ws = [7, 2, 5, 1];
    const hw = hosts(4, ws);
    lb.update(hw);
    for (let cycle = 0; cycle < 3; cycle++) {
      const m = counts(lb.picker, 15);
      assert.deepEqual(hw.map((h) => m.get(h) ?? 0), ws);
    }
  });

  test('skips tried hosts when another is available', () => {
    const [a, b, c] = hosts(3);
    const lb = new RoundRobinLoadBalancer();
    lb.update([a, b, c]);
    const tried = new Set([b]);
    const seq = Array.from({ length: 6 }, () => lb.picker.pick(ctx({ tried })));
    assert.deepEqual(seq, [a, c, c, a, c, c]);
    assert.equal(lb.picker.pick(ctx({ tried: new Set([a, c]) })), b);
    const all = new Set([a, b, c]);
    assert.ok(lb.picker.pick(ctx({ tried: all })) !== undefined);

    const [x, y] = hosts(2, [3, 1]);
    lb.update([x, y]);
    for (let i = 0; i < 8; i++) assert.equal(lb.picker.pick(ctx({ tried: new Set([x]) })), y);
  });

  test('an old picker keeps its own rotation after update', () => {
    const [a, b, c, d] = hosts(4);
    const lb = new RoundRobinLoadBalancer();
    lb.update([a, b]);
    const old = lb.picker;
    assert.equal(old.pick(ctx()), a);
    lb.update([c, d]);
    assert.equal(old.pick(ctx()), b);
    assert.equal(old.pick(ctx()), a);
    assert.equal(lb.picker.pick(ctx()), c);
    assert.equal(lb.picker.pick(ctx()), d);
  });
});

describe('least_request', () => {
  test('(almost) never picks a host with 100 active requests when others are idle', () => {
    const hs = hosts(5);
    hs[2].activeRequests = 100;
    const lb = new LeastRequestLoadBalancer({ policy: 'least_request', random: mulberry32(7) });
    lb.update(hs);
    const m = counts(lb.picker, 1000);
    assert.ok((m.get(hs[2]) ?? 0) <= 10, `busy host picked ${m.get(hs[2])} times`);
    for (const h of hs) if (h !== hs[2]) assert.ok((m.get(h) ?? 0) > 150, `${h.key} picked ${m.get(h)} times`);
  });

  test('breaks ties at random', () => {
    const hs = hosts(4);
    const lb = new LeastRequestLoadBalancer({ policy: 'least_request', random: mulberry32(11) });
    lb.update(hs);
    const m = counts(lb.picker, 4000);
    for (const h of hs) assert.ok(Math.abs((m.get(h) ?? 0) - 1000) < 150, `${h.key} picked ${m.get(h)} times`);

    // Two tied idle hosts among busy ones, all sampled: only the idle two, about evenly.
    hs[0].activeRequests = 5;
    hs[3].activeRequests = 9;
    const all = new LeastRequestLoadBalancer({ policy: 'least_request', choiceCount: 4, random: mulberry32(12) });
    all.update(hs);
    const t = counts(all.picker, 1000);
    assert.equal((t.get(hs[0]) ?? 0) + (t.get(hs[3]) ?? 0), 0);
    assert.ok((t.get(hs[1]) ?? 0) > 400 && (t.get(hs[2]) ?? 0) > 400, `${t.get(hs[1])} / ${t.get(hs[2])}`);
  });

  test('respects choiceCount', () => {
    const hs = hosts(5);
    hs.forEach((h, i) => { h.activeRequests = 10 - i; }); // hs[4] is the least loaded
    let calls = 0;
    const rnd = mulberry32(3);
    const counted = () => { calls++; return rnd(); };

    const three = new LeastRequestLoadBalancer({ policy: 'least_request', choiceCount: 3, random: counted });
    three.update(hs);
    three.picker.pick(ctx());
    assert.equal(calls, 3, 'one random draw per sampled host');

    const every = new LeastRequestLoadBalancer({ policy: 'least_request', choiceCount: 5, random: mulberry32(4) });
    every.update(hs);
    for (let i = 0; i < 100; i++) assert.equal(every.picker.pick(ctx()), hs[4]);

    const one = new LeastRequestLoadBalancer({ policy: 'least_request', choiceCount: 1, random: mulberry32(5) });
    one.update(hs);
    const m = counts(one.picker, 1000);
    for (const h of hs) assert.ok(Math.abs((m.get(h) ?? 0) - 200) < 60, `choiceCount 1 is uniform: ${m.get(h)}`);

    const big = new LeastRequestLoadBalancer({ policy: 'least_request', choiceCount: 50, random: mulberry32(6) });
    big.update(hs);
    assert.equal(big.picker.pick(ctx()), hs[4], 'choiceCount above the host count samples every host');

    assert.throws(() => new LeastRequestLoadBalancer({ policy: 'least_request', choiceCount: 0 }), /choiceCount/);
  });

  test('avoids tried hosts and uses weight / (active + 1) when weights differ', () => {
    const hs = hosts(3);
    hs[1].activeRequests = 50;
    hs[2].activeRequests = 60;
    const lb = new LeastRequestLoadBalancer({ policy: 'least_request', random: mulberry32(8) });
    lb.update(hs);
    const tried = new Set([hs[0]]);
    const m = counts(lb.picker, 300, ctx({ tried }));
    assert.equal(m.get(hs[0]), undefined);
    assert.ok((m.get(hs[1]) ?? 0) > (m.get(hs[2]) ?? 0));

    const [heavy, light] = hosts(2, [4, 1]);
    heavy.activeRequests = 2; // 4 / 3 beats 1 / 1
    const w = new LeastRequestLoadBalancer({ policy: 'least_request', random: mulberry32(9) });
    w.update([heavy, light]);
    for (let i = 0; i < 20; i++) assert.equal(w.picker.pick(ctx()), heavy);
    heavy.activeRequests = 4; // 4 / 5 loses to 1 / 1
    for (let i = 0; i < 20; i++) assert.equal(w.picker.pick(ctx()), light);
  });
});

describe('ring_hash', () => {
  const rnd = mulberry32(42);
  const keys = Array.from({ length: 10000 }, () => Math.floor(rnd() * 4294967296));
  const mapping = (picker: Picker) => keys.map((hash) => picker.pick(ctx({ hash })));

  test('hashKey is FNV-1a over UTF-8 plus the murmur3 finalizer', () => {
    assert.equal(fnv1a32(''), 0x811c9dc5);
    assert.equal(fnv1a32('a'), 0xe40c292c);
    assert.equal(fnv1a32('foobar'), 0xbf9cf968);
    const viaBytes = (s: string) => {
      let h = 0x811c9dc5;
      for (const b of Buffer.from(s, 'utf8')) h = Math.imul(h ^ b, 0x01000193);
      return h >>> 0;
    };
    for (const s of ['user-42', 'é', 'ελληνικά', '日本語', '😀 emoji', 'lone \ud800 surrogate', '\udc00x']) assert.equal(fnv1a32(s), viaBytes(s), s);
    assert.equal(hashKey('user-42'), hashKey('user-42'));
    assert.notEqual(hashKey('user-42'), hashKey('user-43'));
    assert.ok(Number.isInteger(hashKey('x')) && hashKey('x') >= 0 && hashKey('x') < 2 ** 32);
  });

  test('maps the same hash to the same host, across pickers built from the same hosts', () => {
    const hs = hosts(5);
    const a = new RingHashLoadBalancer();
    const b = new RingHashLoadBalancer();
    a.update(hs);
    b.update([...hs].reverse());
    for (const hash of keys.slice(0, 500)) {
      const h = a.picker.pick(ctx({ hash }));
      assert.equal(a.picker.pick(ctx({ hash })), h);
      assert.equal(b.picker.pick(ctx({ hash })), h);
    }
    assert.equal(a.picker.pick(ctx({ hash: 0xffffffff })), a.picker.pick(ctx({ hash: 0 })), 'the ring wraps');
  });

  test('spreads 10000 keys over 5 hosts within 30% of even', () => {
    const hs = hosts(5);
    const lb = new RingHashLoadBalancer();
    lb.update(hs);
    const m = new Map<Host | undefined, number>();
    for (const h of mapping(lb.picker)) m.set(h, (m.get(h) ?? 0) + 1);
    for (const h of hs) assert.ok(Math.abs((m.get(h) ?? 0) - 2000) <= 600, `${h.key}: ${m.get(h)}`);

    // String keys through hashKey spread the same way.
    const s = new Map<Host | undefined, number>();
    for (let i = 0; i < 10000; i++) {
      const h = lb.picker.pick(ctx({ hash: hashKey(`session-${i}`) }));
      s.set(h, (s.get(h) ?? 0) + 1);
    }
    for (const h of hs) assert.ok(Math.abs((s.get(h) ?? 0) - 2000) <= 600, `${h.key}: ${s.get(h)}`);
  });

  test('adding a 6th host moves about 1/6 of the keys, all to the new host', () => {
    const hs = hosts(6);
    const lb = new RingHashLoadBalancer();
    lb.update(hs.slice(0, 5));
    const before = mapping(lb.picker);
    lb.update(hs);
    const after = mapping(lb.picker);
    let moved = 0;
    for (let i = 0; i < keys.length; i++) {
      if (before[i] === after[i]) continue;
      moved++;
      assert.equal(after[i], hs[5], 'a moved key moves to the new host');
    }
    const fraction = moved / keys.length;
    assert.ok(fraction >= 0.1 && fraction <= 0.25, `moved ${fraction}`);
  });

  test('removing a host moves only that host\'s keys', () => {
    const hs = hosts(5);
    const lb = new RingHashLoadBalancer();
    lb.update(hs);
    const before = mapping(lb.picker);
    lb.update([hs[0], hs[1], hs[3], hs[4]]);
    const after = mapping(lb.picker);
    let moved = 0;
    for (let i = 0; i < keys.length; i++) {
      if (before[i] === hs[2]) { moved++; assert.notEqual(after[i], hs[2]); }
      else assert.equal(after[i], before[i]);
    }
    assert.ok(moved > 1000);
  });

  test('walks to the next distinct host past tried ones (same as the ring without them)', () => {
    const hs = hosts(5);
    const lb = new RingHashLoadBalancer();
    lb.update(hs);
    const full = lb.picker;
    const without = new RingHashLoadBalancer();
    for (const hash of keys.slice(0, 1000)) {
      const first = full.pick(ctx({ hash }))!;
      const tried = new Set([first]);
      const second = full.pick(ctx({ hash, tried }))!;
      assert.notEqual(second, first);
      without.update(hs.filter((h) => h !== first));
      assert.equal(second, without.picker.pick(ctx({ hash })));
      tried.add(second);
      const third = full.pick(ctx({ hash, tried }))!;
      assert.ok(!tried.has(third));
    }
  });

  test('picks a random point without a hash, and keeps the ring size within bounds', () => {
    const hs = hosts(5);
    const lb = new RingHashLoadBalancer({ policy: 'ring_hash', random: mulberry32(2) });
    lb.update(hs);
    const m = counts(lb.picker, 5000);
    for (const h of hs) assert.ok(Math.abs((m.get(h) ?? 0) - 1000) < 300, `${h.key}: ${m.get(h)}`);

    const size = (p: Picker) => (p as RingHashPicker).size;
    assert.ok(size(lb.picker) >= 1024 && size(lb.picker) <= 2048, `${size(lb.picker)}`);
    const weighted = hosts(3, [1, 2, 3]);
    for (const [min, max] of [[16, 64], [100, 100], [1024, 8388608], [1, 4]]) {
      const r = new RingHashLoadBalancer({ policy: 'ring_hash', minRingSize: min, maxRingSize: max });
      r.update(weighted);
      const s = size(r.picker);
      assert.ok(s <= max && (s >= min || max < 2 * min), `min ${min} max ${max}: ${s}`);
      const c = pointCounts(weighted, min, max);
      assert.ok(c[0] <= c[1] && c[1] <= c[2] && c[0] >= 1, `weight-proportional: ${[...c]}`);
    }
    assert.deepEqual([...pointCounts(weighted, 1024, 8388608)], [256, 512, 768]);
    assert.throws(() => new RingHashLoadBalancer({ policy: 'ring_hash', minRingSize: 2048, maxRingSize: 1024 }), /minRingSize/);
  });
});

describe('random', () => {
  test('respects weights statistically', () => {
    const hs = hosts(3, [1, 2, 7]);
    const lb = new RandomLoadBalancer({ policy: 'random', random: mulberry32(99) });
    lb.update(hs);
    const m = counts(lb.picker, 10000);
    const expect = [1000, 2000, 7000];
    hs.forEach((h, i) => assert.ok(Math.abs((m.get(h) ?? 0) - expect[i]) < expect[i] * 0.1, `${h.key}: ${m.get(h)}`));

    const eq = hosts(4);
    lb.update(eq);
    const e = counts(lb.picker, 8000);
    for (const h of eq) assert.ok(Math.abs((e.get(h) ?? 0) - 2000) < 200, `${h.key}: ${e.get(h)}`);
  });

  test('avoids tried hosts', () => {
    const hs = hosts(3, [1, 1, 8]);
    const lb = new RandomLoadBalancer({ policy: 'random', random: mulberry32(5) });
    lb.update(hs);
    const m = counts(lb.picker, 500, ctx({ tried: new Set([hs[2]]) }));
    assert.equal(m.get(hs[2]), undefined);
  });
});

describe('peak_ewma', () => {
  const config: LbConfig = { policy: 'peak_ewma', decayMs: 10_000 };

  test('observeLatency: peaks replace the estimate, lower samples blend in, idle decays toward 0', () => {
    const [h] = hosts(1);
    assert.equal(currentEwmaMs(h, 0), DEFAULT_RTT_MS);
    observeLatency(h, 20, 1000, 10_000);
    assert.equal(h.ewmaMs, 20);
    assert.equal(h.ewmaAt, 1000);
    observeLatency(h, 100, 1000, 10_000);
    assert.equal(h.ewmaMs, 100, 'a peak replaces the estimate at once');
    observeLatency(h, 10, 1000, 10_000);
    assert.equal(h.ewmaMs, 100, 'no time has passed: a lower sample has no weight yet');
    observeLatency(h, 10, 11_000, 10_000);
    assert.ok(h.ewmaMs > 10 && h.ewmaMs < 100 * Math.exp(-1), `blended ${h.ewmaMs}`);
    const v = h.ewmaMs;
    assert.ok(Math.abs(currentEwmaMs(h, 21_000, 10_000) - v * Math.exp(-1)) < 1e-9);
  });

  test('chooses a 1 ms host far more often than a 100 ms one', () => {
    const [slow, fast, other] = hosts(3);
    observeLatency(slow, 100, 0, 10_000);
    observeLatency(fast, 1, 0, 10_000);
    observeLatency(other, 50, 0, 10_000);
    const lb = new PeakEwmaLoadBalancer({ ...config, random: mulberry32(17) });
    lb.update([slow, fast, other]);
    const m = counts(lb.picker, 1000, ctx({ now: 10 }));
    assert.equal(m.get(slow) ?? 0, 0, 'P2C never takes the worst of three');
    assert.ok((m.get(fast) ?? 0) > 600, `fast: ${m.get(fast)}`);

    // Load counts too: a fast host with many requests in flight loses to a slower idle one.
    fast.activeRequests = 100;
    const busy = counts(lb.picker, 300, ctx({ now: 10 }));
    assert.ok((busy.get(fast) ?? 0) < (busy.get(slow) ?? 0));
  });

  test('tries a fresh host', () => {
    const [slow, fresh] = hosts(2);
    observeLatency(slow, 100, 0, 10_000);
    const lb = new PeakEwmaLoadBalancer({ ...config, random: mulberry32(3) });
    lb.update([slow, fresh]);
    assert.equal(lb.picker.pick(ctx({ now: 100 })), fresh, `default ${DEFAULT_RTT_MS} ms beats 100 ms`);
    // A fresh host is not free: a proven 5 ms host still wins over it.
    const [quick, fresh2] = hosts(2);
    observeLatency(quick, 5, 0, 10_000);
    lb.update([quick, fresh2]);
    assert.equal(lb.picker.pick(ctx({ now: 100 })), quick);
  });

  test('lets an old spike fade', () => {
    const [spiky, steady] = hosts(2);
    observeLatency(spiky, 500, 0, 10_000);
    observeLatency(steady, 20, 0, 10_000);
    const lb = new PeakEwmaLoadBalancer({ ...config, random: mulberry32(23) });
    lb.update([spiky, steady]);
    assert.equal(lb.picker.pick(ctx({ now: 1000 })), steady);
    // steady keeps answering in 20 ms; spiky gets no traffic and decays toward 0.
    for (let t = 5000; t <= 60_000; t += 5000) observeLatency(steady, 20, t, 10_000);
    assert.ok(currentEwmaMs(spiky, 60_000, 10_000) < 2);
    assert.equal(lb.picker.pick(ctx({ now: 60_000 })), spiky);
  });
});

describe('registry', () => {
  test('creates the right balancer for each name', () => {
    const expected: Record<LbPolicy, new () => object> = {
      round_robin: RoundRobinLoadBalancer,
      least_request: LeastRequestLoadBalancer,
      ring_hash: RingHashLoadBalancer,
      random: RandomLoadBalancer,
      peak_ewma: PeakEwmaLoadBalancer,
    };
    for (const policy of POLICIES) {
      assert.ok(createLoadBalancer({ policy }) instanceof expected[policy], policy);
      assert.ok(isLoadBalancerRegistered(policy));
    }
    assert.deepEqual(registeredLoadBalancers().filter((n) => (POLICIES as string[]).includes(n)), [...POLICIES].sort());
  });

  test('throws a validation error naming an unknown policy', () => {
    assert.throws(
      () => createLoadBalancer({ policy: 'maglev' } as unknown as LbConfig),
      (err: unknown) => err instanceof MeshError && err.code === ErrorCodes.VALIDATION && /"maglev"/.test(err.message) && /round_robin/.test(err.message),
    );
    assert.throws(() => createLoadBalancer({ policy: 'peak_ewma', decayMs: 0 }), /decayMs/);
  });

  test('accepts new policies', () => {
    const first = new RoundRobinLoadBalancer();
    registerLoadBalancer('test_first_host', () => first);
    assert.equal(createLoadBalancer({ policy: 'test_first_host' } as unknown as LbConfig), first);
  });
});
