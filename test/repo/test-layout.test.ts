/**
 * The tests stay where a newcomer looks for them (docs/architecture.md, "Where the tests are"):
 * a test of a package sits in the folder that mirrors its subject's folder in the source tree;
 * whole-mesh suites in test/e2e, repository checks in test/repo, helpers' own tests in
 * test/support. And they are written one way: test(), grouped by describe() where that helps.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PACKAGE_ROOT } from '../../shared/src/paths';

const TEST_DIR = path.join(PACKAGE_ROOT, 'test');
const OWN_FOLDERS = ['e2e', 'repo', 'support'];
/** Source folders with no src/ of their own: their tests mirror the folder itself (bench/x.ts -> test/bench/x.test.ts). */
const FLAT_SOURCES = ['bench'];

function testFiles(dir = TEST_DIR): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return testFiles(p);
    return e.name.endsWith('.test.ts') ? [path.relative(TEST_DIR, p).split(path.sep).join('/')] : [];
  });
}

test('every test file sits in a folder that mirrors a source folder (bench/ has no src/), or in e2e/, repo/ or support/', () => {
  const misplaced = testFiles().filter((file) => {
    const [top, ...rest] = path.posix.dirname(file).split('/');
    if (top === '.') return true;
    if (OWN_FOLDERS.includes(top!)) return rest.length > 0;
    if (FLAT_SOURCES.includes(top!)) return !fs.existsSync(path.join(PACKAGE_ROOT, top!, ...rest));
    return !fs.existsSync(path.join(PACKAGE_ROOT, top!, 'src', ...rest));
  });
  assert.deepEqual(misplaced, [], 'move these to the folder of what they test (docs/architecture.md, "Where the tests are")');
});

test('tests are written with test(), not it()', () => {
  const withIt = testFiles().filter((file) => /^import \{[^}]*\bit\b[^}]*\} from 'node:test';$/m.test(fs.readFileSync(path.join(TEST_DIR, file), 'utf8')));
  assert.deepEqual(withIt, []);
});
