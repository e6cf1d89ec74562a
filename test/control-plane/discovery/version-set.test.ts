/**
 * Set versions (discovery/version-set.ts): one function of the set of (name, version) pairs,
 * whatever the order or the way it was built, so a SotW response and a delta stream holding the
 * same resources report the same version.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resourcesVersion, setVersion, VersionSet } from '../../../control-plane/src/discovery/version-set';
import { mulberry32 } from '../../../shared/src/prng';

test('a set version does not depend on order, and differs when a name or a version does', () => {
  const a: [string, string][] = [['reviews', 'v1'], ['ratings', 'v2'], ['details', 'v3']];
  assert.equal(setVersion(a), setVersion([...a].reverse()));
  assert.match(setVersion(a), /^[0-9a-f]{16}$/);
  assert.notEqual(setVersion(a), setVersion([['reviews', 'v1'], ['ratings', 'v2'], ['details', 'v4']]));
  assert.notEqual(setVersion(a), setVersion([['reviews', 'v1'], ['ratings', 'v2']]));
  // The pair is hashed with a separator: moving a character between name and version is another pair.
  assert.notEqual(setVersion([['ab', 'c']]), setVersion([['a', 'bc']]));
  assert.equal(resourcesVersion(a.map(([name, version]) => ({ name, version }))), setVersion(a));
});

test('a VersionSet kept pair by pair always has the version of its contents', () => {
  const rand = mulberry32(7);
  const set = new VersionSet();
  const model = new Map<string, string>();
  for (let i = 0; i < 2000; i++) {
    const name = `r${Math.floor(rand() * 40)}`;
    if (rand() < 0.3) { set.delete(name); model.delete(name); } else { const v = `v${Math.floor(rand() * 5)}`; set.set(name, v); model.set(name, v); }
    if (i % 97 === 0) assert.equal(set.version(), setVersion(model), `after ${i + 1} changes`);
  }
  assert.equal(set.version(), setVersion(model));
  assert.equal(set.size, model.size);
  for (const n of model.keys()) set.delete(n);
  assert.equal(set.version(), setVersion([]), 'empty again: the empty set\'s version');
});
