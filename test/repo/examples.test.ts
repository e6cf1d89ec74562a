import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseDocuments } from '../../shared/src/config/documents';
import { buildMesh } from '../../shared/src/config/mesh';
import { PACKAGE_ROOT } from '../../shared/src/paths';
import { translate } from '../../control-plane/src/translate/translate';
import { SnapshotCache } from '../../control-plane/src/discovery/snapshot-cache';
import { TEST_TRANSLATE } from '../support/mesh-trust';
import { PUSH_ORDER } from '../../shared/src/xds/resource-kind';

/** Every shipped example must be valid and translate to xDS: users copy them first. */
for (const name of fs.readdirSync(path.join(PACKAGE_ROOT, 'examples')).filter((f) => /\.ya?ml$/.test(f))) {
  test(`examples/${name} validates and translates`, () => {
    const mesh = buildMesh(parseDocuments(fs.readFileSync(path.join(PACKAGE_ROOT, 'examples', name), 'utf8')));
    assert.ok(mesh.services.size > 0);
    const change = new SnapshotCache().set(translate(mesh, [], TEST_TRANSLATE), 1);
    assert.deepEqual([...change.changed.keys()].sort(), [...PUSH_ORDER].sort(), 'resources of every kind');
  });
}
