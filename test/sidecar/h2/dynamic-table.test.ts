/** The HPACK dynamic table ring against a plain reference model (seeded): adds, evictions, size changes, growth and wrap-around. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DynamicTable } from '../../../sidecar/src/h2/dynamic-table';
import { mulberry32 } from '../../support/prng';

test('the ring behaves as a newest-first list evicted from the end (RFC 7541 4.3, 4.4)', () => {
  const rnd = mulberry32(4096);
  const t = new DynamicTable(4096);
  let model: [string, string][] = [];
  let max = 4096;
  const size = (l: [string, string][]): number => l.reduce((s, [n, v]) => s + n.length + v.length + 32, 0);
  const evict = (): void => { while (size(model) > max) model.pop(); };
  for (let step = 0; step < 5000; step++) {
    if (rnd() < 0.03) {
      max = [0, 31, 32, 100, 256, 4096, 16384][Math.floor(rnd() * 7)]!;
      t.setMaxSize(max);
      evict();
    } else {
      const name = 'n' + Math.floor(rnd() * 50);
      const value = 'v'.repeat(Math.floor(rnd() * (rnd() < 0.05 ? 5000 : 60)));
      t.add(name, value);
      if (name.length + value.length + 32 > max) model = [];
      else { model.unshift([name, value]); evict(); }
    }
    assert.deepEqual(t.entries(), model, `step ${step}`);
    assert.equal(t.size, size(model));
    assert.equal(t.length, model.length);
  }
});

test('an entry of exactly the table size fits alone; one byte more empties the table', () => {
  const t = new DynamicTable(64);
  t.add('a', 'b');
  t.add('x'.repeat(16), 'y'.repeat(16)); // 64
  assert.deepEqual(t.entries(), [['x'.repeat(16), 'y'.repeat(16)]]);
  t.add('x'.repeat(16), 'y'.repeat(17)); // 65
  assert.deepEqual(t.entries(), []);
  assert.equal(t.size, 0);
});
