/** The record of issued workload certificates skein check reads: the latest per identity, bounded. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IssuedCertificates } from '../../../control-plane/src/identity/issued-certificates';
import type { IssuedRecord } from '../../../control-plane/src/identity/issued-certificates';

const rec = (sa: string, serial: string, how: IssuedRecord['how'] = 'token'): IssuedRecord => ({ spiffeId: `spiffe://skein.local/ns/default/sa/${sa}`, serial, notBefore: 0, notAfter: 1000, how });

test('keeps only the latest certificate of each identity', () => {
  const issued = new IssuedCertificates();
  issued.record(rec('reviews', '1'));
  issued.record(rec('ratings', '2'));
  issued.record(rec('reviews', '3', 'renewal'));
  assert.deepEqual([...issued.latest()].map((r) => [r.spiffeId.slice(-7), r.serial, r.how]), [['ratings', '2', 'token'], ['reviews', '3', 'renewal']]);
});

test('past its bound it forgets the identity issued to longest ago, not one that renewed since', () => {
  const issued = new IssuedCertificates(2);
  issued.record(rec('a', '1'));
  issued.record(rec('b', '2'));
  issued.record(rec('a', '3', 'renewal'));
  issued.record(rec('c', '4'));
  assert.equal(issued.size, 2);
  assert.deepEqual([...issued.latest()].map((r) => r.serial), ['3', '4']);
});
