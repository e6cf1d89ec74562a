/**
 * The HTTP/2 engine a whole test run uses: $SKEIN_TEST_H2_ENGINE (node or skein; unset: the
 * sidecar's default), e.g. `SKEIN_TEST_H2_ENGINE=skein node test/run.mjs e2e router`. Sidecar
 * processes get it from the harness (harness/src/sidecar-process.ts, --h2-engine); sidecars and
 * clusters built in the test's process get it from these.
 */
import { DEFAULT_H2_ENGINE } from '../../sidecar/src/h2/default-engine';
import { H2Stats } from '../../sidecar/src/h2/limits';
import type { SkeinH2Engine } from '../../sidecar/src/upstream/pool/skein-h2-client';

function engine(): 'node' | 'skein' | undefined {
  const e = process.env['SKEIN_TEST_H2_ENGINE'];
  if (e === undefined || e === '') return undefined;
  if (e !== 'node' && e !== 'skein') throw new Error(`SKEIN_TEST_H2_ENGINE: must be node or skein, got "${e}"`);
  return e;
}

/** The engine a sidecar of this run uses: $SKEIN_TEST_H2_ENGINE, else the sidecar's default. */
export function effectiveH2Engine(): 'node' | 'skein' {
  return engine() ?? DEFAULT_H2_ENGINE;
}

/** As a Sidecar option. */
export function testH2Engine(): { h2Engine?: 'node' | 'skein' } {
  const e = engine();
  return e === undefined ? {} : { h2Engine: e };
}

/** As a Cluster's env: skein's engine (with its own counters) when the run asks for it. */
export function testClusterH2(): { h2?: SkeinH2Engine } {
  return engine() === 'skein' ? { h2: { stats: new H2Stats() } } : {};
}

/** As a ConnectionManager option: skein's engine on the downstream side when the run asks for it. */
export function testListenerH2(): { h2Engine?: 'skein' } {
  return engine() === 'skein' ? { h2Engine: 'skein' } : {};
}
