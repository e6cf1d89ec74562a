/**
 * Black-box tests of the SRE API (HTTP/JSON) against a real `skein control-plane` process.
 * The tests in the main describe block share one process and run in order: each builds on the
 * config the previous ones left, and says which revision it expects.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { API_VERSION, MESH_YAML, assertApiError, assertUnchanged, call, edsAddresses, ratingsService, reviewsRoute, reviewsService, routeTargets, startPlane, state, stopPlane } from '../support/skein';
import { adminTokenFor, apiFetch } from '../../harness/src/control-plane-process';
import type { ErrorExpectation, Plane } from '../support/skein';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function route(backendRefs: unknown[], name = 'reviews', kind = 'GRPCRoute', parent = 'reviews'): Record<string, unknown> {
  return { apiVersion: API_VERSION, kind, metadata: { name }, spec: { parentRefs: [{ name: parent }], rules: [{ backendRefs }] } };
}

describe('SRE API against a real control plane', () => {
  let plane: Plane | undefined;
  let api = '';

  before(async () => {
    plane = await startPlane();
    api = plane.api;
  });

  after(() => stopPlane(plane));

  test('GET /healthz answers ok with the current revision', async () => {
    const r = await call(api, 'GET', '/healthz');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { ok: true, revision: 0 });
  });

  test('POST /v1/config with multi-document YAML creates revision 1 and returns the diff', async () => {
    const r = await call(api, 'POST', '/v1/config', { body: MESH_YAML, type: 'application/yaml' });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.deepEqual(changeOf(r.body), { revision: 1, dryRun: false, changed: true, diff: [{ key: 'GRPCRoute/reviews', op: 'added' }, { key: 'Service/reviews', op: 'added' }] });
    const cfg = await call(api, 'GET', '/v1/config');
    assert.equal(cfg.body.revision, 1);
    assert.deepEqual(cfg.body.resources, [reviewsRoute(90, 10), reviewsService()]);
    const xds = await call(api, 'GET', '/v1/xds?type=routes');
    assert.equal(xds.body.revision, 1);
    assert.deepEqual(routeTargets(xds.body, 'reviews'), { 'reviews/v1': 90, 'reviews/v2': 10 });
    assert.equal((await call(api, 'GET', '/healthz')).body.revision, 1);
  });

  test('POST /v1/config with JSON creates a revision', async () => {
    const r = await call(api, 'POST', '/v1/config', { body: ratingsService(), type: 'application/json' });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.deepEqual(changeOf(r.body), { revision: 2, dryRun: false, changed: true, diff: [{ key: 'Service/ratings', op: 'added' }] });
    const cfg = await call(api, 'GET', '/v1/config');
    assert.equal(cfg.body.revision, 2);
    assert.deepEqual(cfg.body.resources.map((x: { kind: string; metadata: { name: string } }) => `${x.kind}/${x.metadata.name}`), ['GRPCRoute/reviews', 'Service/ratings', 'Service/reviews']);
    assert.equal((await call(api, 'GET', '/v1/xds')).body.revision, 2);
  });

  test('?dryRun=true returns the diff with 200 and stores nothing', async () => {
    const before = await state(api);
    const r = await call(api, 'POST', '/v1/config?dryRun=true', { body: reviewsRoute(80, 20) });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.dryRun, true);
    assert.equal(r.body.changed, true);
    assert.equal(r.body.revision, 2, 'a dry run reports the current revision');
    assert.deepEqual(r.body.diff, [{
      key: 'GRPCRoute/reviews', op: 'changed',
      fields: [
        { path: 'spec.rules[0].backendRefs[0].weight', op: 'changed', from: 90, to: 80 },
        { path: 'spec.rules[0].backendRefs[1].weight', op: 'changed', from: 10, to: 20 },
      ],
    }]);
    await assertUnchanged(api, before, 'dry run');
  });

  test('re-POSTing the identical config is a no-op: 200, changed:false, no new revision', async () => {
    const before = await state(api);
    const r = await call(api, 'POST', '/v1/config', { body: MESH_YAML });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(changeOf(r.body), { revision: 2, dryRun: false, changed: false, diff: [] });
    await assertUnchanged(api, before, 'identical apply');
  });

  test('records x-skein-author and x-skein-message in the revision (defaults: api / apply)', async () => {
    const r = await call(api, 'POST', '/v1/config', { body: reviewsRoute(70, 30), headers: { 'x-skein-author': 'alice', 'x-skein-message': 'shift reviews to 70/30' } });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.revision, 3);
    const list = await call(api, 'GET', '/v1/revisions');
    assert.equal(list.status, 200);
    const metas = list.body.revisions as { revision: number; author: string; message: string; summary: unknown; createdAt: string }[];
    assert.deepEqual(metas.map((m) => m.revision), [1, 2, 3]);
    assert.deepEqual(metas.map((m) => [m.author, m.message]), [['api', 'apply'], ['api', 'apply'], ['alice', 'shift reviews to 70/30']]);
    assert.deepEqual(metas[0]!.summary, { added: ['GRPCRoute/reviews', 'Service/reviews'], changed: [], removed: [] });
    assert.deepEqual(metas[2]!.summary, { added: [], changed: ['GRPCRoute/reviews'], removed: [] });
    for (const m of metas) assert.ok(!Number.isNaN(Date.parse(m.createdAt)), m.createdAt);
    const rev3 = await call(api, 'GET', '/v1/revisions/3');
    assert.equal(rev3.status, 200);
    assert.equal(rev3.body.author, 'alice');
    assert.equal(rev3.body.message, 'shift reviews to 70/30');
  });

  test('GET /v1/revisions/N and /v1/config?revision=N return that revision in full; unknown N is 404', async () => {
    const r1 = await call(api, 'GET', '/v1/revisions/1');
    assert.equal(r1.status, 200);
    assert.equal(r1.body.revision, 1);
    assert.deepEqual(r1.body.resources, [reviewsRoute(90, 10), reviewsService()]);
    const c1 = await call(api, 'GET', '/v1/config?revision=1');
    assert.deepEqual(c1.body, r1.body);
    assertApiError(await call(api, 'GET', '/v1/revisions/99'), { status: 404, code: 'SKEIN_ERR_NOT_FOUND', message: 'revision 99' });
    assertApiError(await call(api, 'GET', '/v1/config?revision=abc'), { status: 422, code: 'SKEIN_ERR_VALIDATION', path: 'query.revision' });
  });

  test('POST /v1/revisions/N/rollback creates a new revision whose resources equal revision N', async () => {
    const r = await call(api, 'POST', '/v1/revisions/1/rollback', { headers: { 'x-skein-author': 'bob' } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.revision, 4);
    assert.equal(r.body.changed, true);
    assert.deepEqual(r.body.diff.map((d: { key: string; op: string }) => [d.key, d.op]), [['GRPCRoute/reviews', 'changed'], ['Service/ratings', 'removed']]);
    const [cur, r1] = await Promise.all([call(api, 'GET', '/v1/config'), call(api, 'GET', '/v1/revisions/1')]);
    assert.equal(cur.body.revision, 4);
    assert.deepEqual(cur.body.resources, r1.body.resources);
    assert.equal(cur.body.author, 'bob');
    assert.equal(cur.body.message, 'rollback to revision 1');
    assert.deepEqual(routeTargets((await call(api, 'GET', '/v1/xds?type=routes')).body, 'reviews'), { 'reviews/v1': 90, 'reviews/v2': 10 });
    // History is append-only: revision 3 still holds what it held.
    assert.deepEqual((await call(api, 'GET', '/v1/revisions/3')).body.resources[0], reviewsRoute(70, 30));
    // Rolling back to what is already current changes nothing.
    const again = await call(api, 'POST', '/v1/revisions/1/rollback');
    assert.equal(again.status, 200);
    assert.deepEqual(changeOf(again.body), { revision: 4, dryRun: false, changed: false, diff: [] });
    const before = await state(api);
    assertApiError(await call(api, 'POST', '/v1/revisions/99/rollback'), { status: 404, code: 'SKEIN_ERR_NOT_FOUND', message: 'revision 99' });
    await assertUnchanged(api, before, 'rollback to a missing revision');
  });

  test('mode=replace makes the body the whole config: resources not in it are deleted', async () => {
    const add = await call(api, 'POST', '/v1/config', { body: ratingsService() });
    assert.equal(add.status, 201);
    assert.equal(add.body.revision, 5);
    const r = await call(api, 'POST', '/v1/config?mode=replace', { body: MESH_YAML });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.deepEqual(changeOf(r.body), { revision: 6, dryRun: false, changed: true, diff: [{ key: 'Service/ratings', op: 'removed' }] });
    const cfg = await call(api, 'GET', '/v1/config');
    assert.deepEqual(cfg.body.resources, [reviewsRoute(90, 10), reviewsService()]);
    const xds = await call(api, 'GET', '/v1/xds?type=clusters');
    assert.deepEqual(xds.body.clusters.map((c: { name: string }) => c.name).sort(), ['reviews', 'reviews/v1', 'reviews/v2']);
    // merge (the default) never deletes
    const merge = await call(api, 'POST', '/v1/config?mode=merge', { body: reviewsService() });
    assert.deepEqual(changeOf(merge.body), { revision: 6, dryRun: false, changed: false, diff: [] });
    const before = await state(api);
    assertApiError(await call(api, 'POST', '/v1/config?mode=overwrite', { body: MESH_YAML }), { status: 422, code: 'SKEIN_ERR_VALIDATION', path: 'query.mode' });
    await assertUnchanged(api, before, 'bad mode');
  });

  test('?expectedRevision: a stale revision is 409 and changes nothing; the current one succeeds', async () => {
    const before = await state(api);
    assertApiError(await call(api, 'POST', '/v1/config?expectedRevision=5', { body: ratingsService() }), { status: 409, code: 'SKEIN_ERR_CONFLICT', message: 'current revision is 6' });
    assertApiError(await call(api, 'POST', '/v1/revisions/3/rollback?expectedRevision=1'), { status: 409, code: 'SKEIN_ERR_CONFLICT' });
    assertApiError(await call(api, 'POST', '/v1/canary?expectedRevision=2', { body: { route: 'reviews', weights: { v1: 1, v2: 1 } } }), { status: 409, code: 'SKEIN_ERR_CONFLICT' });
    await assertUnchanged(api, before, 'conflict');
    const ok = await call(api, 'POST', '/v1/config?expectedRevision=6', { body: ratingsService() });
    assert.equal(ok.status, 201, JSON.stringify(ok.body));
    assert.equal(ok.body.revision, 7);
  });

  describe('rejected config bodies: right status, the field named, nothing stored, nothing pushed', () => {
    const cases: { name: string; body: string | object; type?: string; want: ErrorExpectation }[] = [
      {
        name: 'malformed YAML (400, names the line)',
        body: `apiVersion: ${API_VERSION}\nkind: Service\nmetadata: {name: reviews\nspec: [\n`,
        want: { status: 400, code: 'SKEIN_ERR_MALFORMED_INPUT', message: /line \d+, column \d+/ },
      },
      {
        name: 'malformed JSON (400)',
        body: `{"apiVersion": "${API_VERSION}", "kind": "Service", "metadata": {"name": "reviews"},`, type: 'application/json',
        want: { status: 400, code: 'SKEIN_ERR_MALFORMED_INPUT', message: /malformed .*line 1/ },
      },
      {
        name: 'unknown field (422, full path of the typo)',
        body: route([{ name: 'reviews', subset: 'v1', wieght: 90 }]),
        want: { status: 422, code: 'SKEIN_ERR_VALIDATION', resource: 'GRPCRoute/reviews', path: 'spec.rules[0].backendRefs[0].wieght', message: 'unknown field' },
      },
      {
        name: 'negative weight (422)',
        body: route([{ name: 'reviews', subset: 'v1', weight: 100 }, { name: 'reviews', subset: 'v2', weight: -5 }]),
        want: { status: 422, code: 'SKEIN_ERR_VALIDATION', resource: 'GRPCRoute/reviews', path: 'spec.rules[0].backendRefs[1].weight', message: 'must be >= 0' },
      },
      {
        name: 'all weights zero (422)',
        body: route([{ name: 'reviews', subset: 'v1', weight: 0 }, { name: 'reviews', subset: 'v2', weight: 0 }]),
        want: { status: 422, code: 'SKEIN_ERR_VALIDATION', resource: 'GRPCRoute/reviews', path: 'spec.rules[0].backendRefs', message: 'must not all be 0' },
      },
      {
        name: 'duplicate names in one body (422)',
        body: [reviewsService(), { ...reviewsService(), spec: { ports: [{ name: 'grpc', port: 9 }] } }],
        want: { status: 422, code: 'SKEIN_ERR_VALIDATION', resource: 'Service/reviews', path: 'metadata.name', message: 'duplicate name' },
      },
      {
        name: 'route to a missing service (422)',
        body: route([{ name: 'ghost' }], 'to-ghost', 'HTTPRoute'),
        want: { status: 422, code: 'SKEIN_ERR_VALIDATION', resource: 'HTTPRoute/to-ghost', path: 'spec.rules[0].backendRefs[0].name', message: 'Service "ghost", which does not exist' },
      },
      {
        name: 'route to a missing subset (422)',
        body: route([{ name: 'reviews', subset: 'v1', weight: 50 }, { name: 'reviews', subset: 'v3', weight: 50 }]),
        want: { status: 422, code: 'SKEIN_ERR_VALIDATION', resource: 'GRPCRoute/reviews', path: 'spec.rules[0].backendRefs[1].subset', message: 'no subset "v3"' },
      },
      {
        name: 'wrong apiVersion (422)',
        body: { ...reviewsService(), apiVersion: 'skein.dev/v9' },
        want: { status: 422, code: 'SKEIN_ERR_VALIDATION', path: 'apiVersion', message: API_VERSION },
      },
      {
        name: 'body over the 1 MiB default limit (413)',
        body: `# ${'x'.repeat(1024 * 1024)}\n${MESH_YAML}`,
        want: { status: 413, code: 'SKEIN_ERR_BODY_TOO_LARGE', message: /^body: exceeds the limit of 1048576 bytes .*--max-body-bytes/ },
      },
      {
        name: 'body far over the limit still gets the 413, not a reset connection',
        body: `# ${'x'.repeat(8 * 1024 * 1024)}\n`,
        want: { status: 413, code: 'SKEIN_ERR_BODY_TOO_LARGE', message: '1048576' },
      },
      {
        name: 'unsupported content-type (415)',
        body: MESH_YAML, type: 'text/html',
        want: { status: 415, code: 'SKEIN_ERR_UNSUPPORTED', message: 'content-type text/html' },
      },
      {
        name: 'empty body (422: no documents)',
        body: '', type: 'application/yaml',
        want: { status: 422, code: 'SKEIN_ERR_VALIDATION', message: 'no documents' },
      },
      {
        name: 'a YAML document that is not an object (422)',
        body: '- just\n- a list\n',
        want: { status: 422, code: 'SKEIN_ERR_VALIDATION', resource: 'document[0]', path: '', message: 'must be an object' },
      },
    ];

    for (const c of cases) {
      test(c.name, async () => {
        const before = await state(api);
        const r = await call(api, 'POST', '/v1/config', { body: c.body, ...(c.type ? { type: c.type } : {}) });
        assertApiError(r, c.want);
        await assertUnchanged(api, before, c.name);
      });
    }

    test('a body over the limit sent without content-length (chunked) gets the 413', async () => {
      const before = await state(api);
      const chunk = new TextEncoder().encode(`# ${'y'.repeat(64 * 1024 - 3)}\n`);
      let sent = 0;
      const body = new ReadableStream<Uint8Array>({
        pull(ctl) { if (sent >= 40) ctl.close(); else { sent++; ctl.enqueue(chunk); } },
      });
      const res = await apiFetch(new URL('/v1/config', api), { method: 'POST', headers: { 'content-type': 'application/yaml', authorization: `Bearer ${adminTokenFor(api)}` }, body, duplex: 'half' } as never);
      assertApiError({ status: res.status, headers: res.headers, body: await res.json() }, { status: 413, code: 'SKEIN_ERR_BODY_TOO_LARGE', message: '1048576' });
      await assertUnchanged(api, before, 'chunked oversized body');
    });

    test('a dry run of invalid config is rejected the same way', async () => {
      const before = await state(api);
      assertApiError(await call(api, 'POST', '/v1/config?dryRun=true', { body: route([{ name: 'reviews', subset: 'v1', weight: -1 }]) }),
        { status: 422, code: 'SKEIN_ERR_VALIDATION', path: 'spec.rules[0].backendRefs[0].weight', message: 'must be >= 0' });
      assertApiError(await call(api, 'POST', '/v1/config?dryRun=maybe', { body: MESH_YAML }), { status: 422, code: 'SKEIN_ERR_VALIDATION', path: 'query.dryRun', named: 'dryRun' });
      await assertUnchanged(api, before, 'invalid dry run');
    });

    test('the API still works after every rejected request', async () => {
      const r = await call(api, 'GET', '/healthz');
      assert.deepEqual(r.body, { ok: true, revision: 7 });
    });
  });

  describe('DELETE /v1/config/KIND/NAME', () => {
    test('404 for a resource or kind that does not exist', async () => {
      const before = await state(api);
      assertApiError(await call(api, 'DELETE', '/v1/config/HTTPRoute/x'), { status: 404, code: 'SKEIN_ERR_NOT_FOUND', message: 'HTTPRoute/x' });
      assertApiError(await call(api, 'DELETE', '/v1/config/Gateway/x'), { status: 404, code: 'SKEIN_ERR_NOT_FOUND', message: 'Gateway' });
      await assertUnchanged(api, before, 'delete missing');
    });

    test('400, not 500, for a name with broken percent-encoding', async () => {
      const before = await state(api);
      assertApiError(await call(api, 'DELETE', '/v1/config/Service/%E0%A4%A'), { status: 400, code: 'SKEIN_ERR_MALFORMED_INPUT' });
      await assertUnchanged(api, before, 'bad percent-encoding');
    });

    test('deleting a Service that a route references is 422 and names the route', async () => {
      const before = await state(api);
      assertApiError(await call(api, 'DELETE', '/v1/config/Service/reviews'),
        { status: 422, code: 'SKEIN_ERR_VALIDATION', resource: 'GRPCRoute/reviews', path: 'spec.parentRefs[0].name', message: 'Service "reviews", which does not exist' });
      await assertUnchanged(api, before, 'delete referenced service');
    });

    test('deletes an unreferenced resource as a new revision (dryRun stores nothing)', async () => {
      const before = await state(api);
      const dry = await call(api, 'DELETE', '/v1/config/Service/ratings?dryRun=true');
      assert.equal(dry.status, 200);
      assert.deepEqual(dry.body, { revision: 7, dryRun: true, changed: true, diff: [{ key: 'Service/ratings', op: 'removed' }], warnings: [] });
      await assertUnchanged(api, before, 'dry-run delete');
      const r = await call(api, 'DELETE', '/v1/config/Service/ratings', { headers: { 'x-skein-author': 'carol', 'x-skein-message': 'ratings is gone' } });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.deepEqual(changeOf(r.body), { revision: 8, dryRun: false, changed: true, diff: [{ key: 'Service/ratings', op: 'removed' }] });
      const rev = await call(api, 'GET', '/v1/revisions/8');
      assert.deepEqual([rev.body.author, rev.body.message, rev.body.summary.removed], ['carol', 'ratings is gone', ['Service/ratings']]);
      assert.equal((await call(api, 'GET', '/v1/xds')).body.revision, 8);
    });
  });

  describe('POST /v1/canary', () => {
    test('sets the subset weights: visible in the stored config and in the RDS weighted_clusters', async () => {
      const r = await call(api, 'POST', '/v1/canary', { body: { route: 'reviews', weights: { v1: 50, v2: 50 } } });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.revision, 9);
      assert.deepEqual(r.body.diff, [{
        key: 'GRPCRoute/reviews', op: 'changed',
        fields: [
          { path: 'spec.rules[0].backendRefs[0].weight', op: 'changed', from: 90, to: 50 },
          { path: 'spec.rules[0].backendRefs[1].weight', op: 'changed', from: 10, to: 50 },
        ],
      }]);
      const cfg = await call(api, 'GET', '/v1/config');
      assert.deepEqual(cfg.body.resources.find((x: { kind: string }) => x.kind === 'GRPCRoute'), reviewsRoute(50, 50));
      assert.equal(cfg.body.message, 'canary reviews v1=50 v2=50');
      const xds = await call(api, 'GET', '/v1/xds?type=routes');
      assert.equal(xds.body.revision, 9);
      assert.deepEqual(routeTargets(xds.body, 'reviews'), { 'reviews/v1': 50, 'reviews/v2': 50 });
    });

    test('a weight of 0 drops the subset from RDS; KIND/NAME route form works', async () => {
      const r = await call(api, 'POST', '/v1/canary', { body: { route: 'GRPCRoute/reviews', weights: { v1: 0, v2: 100 } }, headers: { 'x-skein-message': 'all to v2' } });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.revision, 10);
      assert.deepEqual(routeTargets((await call(api, 'GET', '/v1/xds?type=routes')).body, 'reviews'), { 'reviews/v2': 1 });
      assert.equal((await call(api, 'GET', '/v1/revisions/10')).body.message, 'all to v2');
    });

    test('dryRun shows the diff and stores nothing', async () => {
      const before = await state(api);
      const r = await call(api, 'POST', '/v1/canary?dryRun=true', { body: { route: 'reviews', weights: { v1: 90, v2: 10 } } });
      assert.equal(r.status, 200);
      assert.equal(r.body.dryRun, true);
      assert.equal(r.body.changed, true);
      assert.equal(r.body.diff[0].key, 'GRPCRoute/reviews');
      await assertUnchanged(api, before, 'canary dry run');
    });

    const errors: { name: string; body: unknown; want: ErrorExpectation }[] = [
      { name: 'unknown route (404)', body: { route: 'nope', weights: { v1: 50, v2: 50 } }, want: { status: 404, code: 'SKEIN_ERR_NOT_FOUND', message: 'route "nope" does not exist' } },
      { name: 'unknown subset (422)', body: { route: 'reviews', weights: { v1: 50, v3: 50 } }, want: { status: 422, code: 'SKEIN_ERR_VALIDATION', path: 'spec.rules[0].backendRefs[1].subset', message: 'no subset "v3"' } },
      { name: 'negative weight (422, names weights.v2)', body: { route: 'reviews', weights: { v1: 50, v2: -1 } }, want: { status: 422, code: 'SKEIN_ERR_VALIDATION', path: 'weights.v2', message: 'must be >= 0' } },
      { name: 'all weights zero (422)', body: { route: 'reviews', weights: { v1: 0, v2: 0 } }, want: { status: 422, code: 'SKEIN_ERR_VALIDATION', path: 'weights', message: 'must not all be 0' } },
      { name: 'no weights (422)', body: { route: 'reviews', weights: {} }, want: { status: 422, code: 'SKEIN_ERR_VALIDATION', path: 'weights', message: 'at least one subset' } },
      { name: 'fractional weight (422)', body: { route: 'reviews', weights: { v1: 1.5 } }, want: { status: 422, code: 'SKEIN_ERR_VALIDATION', path: 'weights.v1', message: 'integer' } },
      { name: 'unknown field (422)', body: { route: 'reviews', weights: { v1: 1 }, wieghts: {} }, want: { status: 422, code: 'SKEIN_ERR_VALIDATION', path: 'wieghts', message: 'unknown field' } },
      { name: 'unknown rule (404)', body: { route: 'reviews', weights: { v1: 1 }, rule: 'canary' }, want: { status: 404, code: 'SKEIN_ERR_NOT_FOUND', message: 'no rule named "canary"' } },
      { name: 'malformed JSON (400)', body: '{"route": "reviews",', want: { status: 400, code: 'SKEIN_ERR_MALFORMED_INPUT', message: 'malformed JSON' } },
      { name: 'empty body (400)', body: '', want: { status: 400, code: 'SKEIN_ERR_MALFORMED_INPUT', message: 'empty' } },
    ];
    for (const c of errors) {
      test(`rejects ${c.name} and changes nothing`, async () => {
        const before = await state(api);
        assertApiError(await call(api, 'POST', '/v1/canary', { body: c.body, type: 'application/json' }), c.want);
        await assertUnchanged(api, before, c.name);
      });
    }

    test('rejects a route whose rule sends to two services (422) and changes nothing', async () => {
      const mixed = route([{ name: 'reviews', subset: 'v1', weight: 1 }, { name: 'ratings', weight: 1 }], 'mixed', 'GRPCRoute', 'ratings');
      const setup = await call(api, 'POST', '/v1/config', { body: [ratingsService(), mixed] });
      assert.equal(setup.status, 201, JSON.stringify(setup.body));
      const before = await state(api);
      assertApiError(await call(api, 'POST', '/v1/canary', { body: { route: 'mixed', weights: { v1: 50, v2: 50 } } }),
        { status: 422, code: 'SKEIN_ERR_VALIDATION', resource: 'GRPCRoute/mixed', path: 'spec.rules[0].backendRefs', message: 'exactly one service' });
      await assertUnchanged(api, before, 'canary across two services');
    });
    test('rewrites only the rules that split traffic, never a rule that pins one version', async () => {
      const pinned = { apiVersion: 'skein.dev/v1alpha1', kind: 'GRPCRoute', metadata: { name: 'pinned' }, spec: { parentRefs: [{ name: 'reviews' }], rules: [
        { name: 'force-v2', matches: [{ headers: [{ name: 'x-canary', value: 'true' }] }], backendRefs: [{ name: 'reviews', subset: 'v2' }] },
        { name: 'split', backendRefs: [{ name: 'reviews', subset: 'v1', weight: 90 }, { name: 'reviews', subset: 'v2', weight: 10 }] },
      ] } };
      assert.equal((await call(api, 'POST', '/v1/config', { body: [pinned] })).status, 201);
      const r = await call(api, 'POST', '/v1/canary', { body: { route: 'pinned', weights: { v1: 30, v2: 70 } } });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const doc = (await call(api, 'GET', '/v1/config')).body.resources.find((d: { kind: string; metadata: { name: string } }) => d.kind === 'GRPCRoute' && d.metadata.name === 'pinned');
      assert.deepEqual(doc.spec.rules[0].backendRefs, [{ name: 'reviews', subset: 'v2' }], 'the pinning rule is untouched');
      assert.deepEqual(doc.spec.rules[1].backendRefs, [{ name: 'reviews', subset: 'v1', weight: 30 }, { name: 'reviews', subset: 'v2', weight: 70 }]);
    });

    test('asks for --rule when several rules each send to a single backend', async () => {
      const two = { apiVersion: 'skein.dev/v1alpha1', kind: 'GRPCRoute', metadata: { name: 'two-pins' }, spec: { parentRefs: [{ name: 'reviews' }], rules: [
        { name: 'a', matches: [{ headers: [{ name: 'x-a', value: '1' }] }], backendRefs: [{ name: 'reviews', subset: 'v1' }] },
        { name: 'b', backendRefs: [{ name: 'reviews', subset: 'v2' }] },
      ] } };
      assert.equal((await call(api, 'POST', '/v1/config', { body: [two] })).status, 201);
      const before = await state(api);
      assertApiError(await call(api, 'POST', '/v1/canary', { body: { route: 'two-pins', weights: { v1: 50, v2: 50 } } }),
        { status: 422, code: 'SKEIN_ERR_VALIDATION', path: 'rule', message: 'is required' });
      await assertUnchanged(api, before, 'ambiguous canary');
      const ok = await call(api, 'POST', '/v1/canary', { body: { route: 'two-pins', rule: 'b', weights: { v1: 50, v2: 50 } } });
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
    });
  });

  describe('endpoint registry: /v1/endpoints', () => {
    let id = '';
    const reg = { service: 'reviews', address: '10.1.2.3', port: 50051, labels: { version: 'v2' }, ttl: '5m', node: 'test-node' };

    test('POST registers a lease: listed, and in EDS for the service and matching subset clusters only', async () => {
      const before = await state(api);
      const r = await call(api, 'POST', '/v1/endpoints', { body: reg });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.match(r.body.id, UUID);
      id = r.body.id;
      assert.equal(r.body.service, 'reviews');
      assert.equal(r.body.address, '10.1.2.3');
      assert.equal(r.body.port, 50051);
      assert.equal(r.body.health, 'HEALTHY');
      assert.equal(r.body.ttlMs, 300_000);
      assert.equal(Date.parse(r.body.expiresAt) - Date.parse(r.body.registeredAt), 300_000);
      const list = await call(api, 'GET', '/v1/endpoints');
      assert.deepEqual(list.body.endpoints.map((e: { id: string; node: string }) => [e.id, e.node]), [[id, 'test-node']]);
      const xds = (await call(api, 'GET', '/v1/xds?type=endpoints')).body;
      assert.deepEqual(edsAddresses(xds, 'reviews'), ['10.1.2.3:50051']);
      assert.deepEqual(edsAddresses(xds, 'reviews/v2'), ['10.1.2.3:50051']);
      assert.deepEqual(edsAddresses(xds, 'reviews/v1'), []);
      // endpoints are not config: no new config revision
      assert.equal((await call(api, 'GET', '/v1/config')).body.revision, (before.config as { revision: number }).revision);
      assert.deepEqual((await call(api, 'GET', '/v1/revisions')).body, before.revisions);
    });

    test('registering the same address again updates the same lease', async () => {
      const r = await call(api, 'POST', '/v1/endpoints', { body: { ...reg, health: 'DRAINING' } });
      assert.equal(r.status, 200);
      assert.equal(r.body.id, id);
      assert.equal((await call(api, 'GET', '/v1/endpoints')).body.endpoints.length, 1);
      const xds = (await call(api, 'GET', '/v1/xds?type=endpoints')).body;
      const cla = xds.endpoints.find((e: { name: string }) => e.name === 'reviews');
      assert.equal(cla.resource.endpoints[0].lb_endpoints[0].health_status, 'DRAINING');
    });

    test('PUT /v1/endpoints/ID renews the lease', async () => {
      const before = (await call(api, 'GET', '/v1/endpoints')).body.endpoints[0];
      const r = await call(api, 'PUT', `/v1/endpoints/${id}`);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.id, id);
      assert.ok(Date.parse(r.body.expiresAt) >= Date.parse(before.expiresAt), `${r.body.expiresAt} < ${before.expiresAt}`);
      assertApiError(await call(api, 'PUT', '/v1/endpoints/00000000-0000-4000-8000-000000000000'), { status: 404, code: 'SKEIN_ERR_NOT_FOUND', message: 'register again' });
    });

    test('DELETE /v1/endpoints/ID removes it from the list and from EDS; a second DELETE is 404', async () => {
      const r = await call(api, 'DELETE', `/v1/endpoints/${id}`);
      assert.equal(r.status, 200);
      assert.deepEqual(r.body, { deregistered: id });
      assert.deepEqual((await call(api, 'GET', '/v1/endpoints')).body, { endpoints: [] });
      const xds = (await call(api, 'GET', '/v1/xds?type=endpoints')).body;
      assert.deepEqual(edsAddresses(xds, 'reviews'), []);
      assert.deepEqual(edsAddresses(xds, 'reviews/v2'), []);
      assertApiError(await call(api, 'DELETE', `/v1/endpoints/${id}`), { status: 404, code: 'SKEIN_ERR_NOT_FOUND', message: id });
      assertApiError(await call(api, 'PUT', `/v1/endpoints/${id}`), { status: 404, code: 'SKEIN_ERR_NOT_FOUND', message: id });
    });

    const bad: { name: string; body: unknown; want: ErrorExpectation }[] = [
      { name: 'address that is not an IP', body: { ...reg, address: 'reviews.local' }, want: { status: 422, code: 'SKEIN_ERR_VALIDATION', path: 'address', message: 'IPv4 or IPv6' } },
      { name: 'port 0', body: { ...reg, port: 0 }, want: { status: 422, code: 'SKEIN_ERR_VALIDATION', path: 'port', message: 'must be >= 1' } },
      { name: 'missing service', body: { address: '10.0.0.1', port: 80 }, want: { status: 422, code: 'SKEIN_ERR_VALIDATION', path: 'service', message: 'must be a string' } },
      { name: 'ttl out of range', body: { ...reg, ttl: '1h' }, want: { status: 422, code: 'SKEIN_ERR_VALIDATION', path: 'ttl', message: 'at most' } },
      { name: 'unknown field', body: { ...reg, wieght: 3 }, want: { status: 422, code: 'SKEIN_ERR_VALIDATION', path: 'wieght', message: 'unknown field' } },
      { name: 'malformed JSON', body: '{"service":', want: { status: 400, code: 'SKEIN_ERR_MALFORMED_INPUT', message: 'malformed JSON' } },
    ];
    for (const c of bad) {
      test(`POST rejects ${c.name} and registers nothing`, async () => {
        const before = await state(api);
        assertApiError(await call(api, 'POST', '/v1/endpoints', { body: c.body, type: 'application/json' }), c.want);
        assert.deepEqual((await call(api, 'GET', '/v1/endpoints')).body, { endpoints: [] });
        await assertUnchanged(api, before, c.name);
      });
    }
  });

  describe('routing', () => {
    test('an unknown API route is 404', async () => {
      assertApiError(await call(api, 'GET', '/v1/nope'), { status: 404, code: 'SKEIN_ERR_NOT_FOUND', message: '/v1/nope' });
      assertApiError(await call(api, 'GET', '/'), { status: 404, code: 'SKEIN_ERR_NOT_FOUND' });
      assertApiError(await call(api, 'GET', '/v1/revisions/abc'), { status: 404, code: 'SKEIN_ERR_NOT_FOUND' });
    });

    test('a wrong method is 405 with an Allow header listing the allowed methods', async () => {
      const cases: [string, string, string][] = [
        ['PUT', '/v1/config', 'GET, POST'],
        ['DELETE', '/healthz', 'GET'],
        ['GET', '/v1/canary', 'POST'],
        ['POST', '/v1/endpoints/00000000-0000-4000-8000-000000000000', 'PUT, DELETE'],
        ['PATCH', '/v1/revisions/1/rollback', 'POST'],
      ];
      const before = await state(api);
      for (const [method, p, allow] of cases) {
        const r = await call(api, method, p);
        assertApiError(r, { status: 405, code: 'SKEIN_ERR_METHOD_NOT_ALLOWED', message: method });
        assert.equal(r.headers.get('allow'), allow, `${method} ${p}`);
      }
      await assertUnchanged(api, before, '405s');
    });

    test('GET /v1/xds: all five types, one type, and 422 for an unknown type', async () => {
      const all = await call(api, 'GET', '/v1/xds');
      assert.deepEqual(Object.keys(all.body).sort(), ['clusters', 'endpoints', 'listeners', 'revision', 'routes', 'secrets']);
      assert.deepEqual(all.body.secrets.map((s: { name: string }) => s.name), ['ROOTCA'], 'the mesh roots only: no key is ever served');
      const one = await call(api, 'GET', '/v1/xds?type=clusters');
      assert.deepEqual(Object.keys(one.body).sort(), ['clusters', 'revision']);
      assert.deepEqual(one.body.clusters, all.body.clusters);
      assertApiError(await call(api, 'GET', '/v1/xds?type=keys'), { status: 422, code: 'SKEIN_ERR_VALIDATION', path: 'query.type' });
    });

    test('GET /v1/proxies lists no clients', async () => {
      const r = await call(api, 'GET', '/v1/proxies');
      assert.equal(r.status, 200);
      assert.deepEqual(r.body.proxies, []);
      assert.equal(r.body.revision, (await call(api, 'GET', '/v1/config')).body.revision);
    });
  });
});

describe('SRE API with --max-body-bytes 2048', () => {
  let plane: Plane | undefined;

  before(async () => { plane = await startPlane({ extraArgs: ['--max-body-bytes', '2048'] }); });
  after(async () => {
    if (plane === undefined) return;
    await plane.stop();
    fs.rmSync(plane.dataDir, { recursive: true, force: true });
  });

  /** MESH_YAML padded with a trailing comment to exactly `size` bytes. */
  function padded(size: number): string {
    const pad = size - Buffer.byteLength(MESH_YAML) - 3;
    assert.ok(pad >= 0);
    return `${MESH_YAML}# ${'p'.repeat(pad)}\n`;
  }

  test('accepts a body of exactly 2048 bytes', async () => {
    const body = padded(2048);
    assert.equal(Buffer.byteLength(body), 2048);
    const r = await call(plane!.api, 'POST', '/v1/config', { body });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.revision, 1);
  });

  test('rejects 2049 bytes with 413 naming the configured limit, and stores nothing', async () => {
    const before = await state(plane!.api);
    const body = padded(2049);
    assert.equal(Buffer.byteLength(body), 2049);
    assertApiError(await call(plane!.api, 'POST', '/v1/config?mode=replace', { body }), { status: 413, code: 'SKEIN_ERR_BODY_TOO_LARGE', message: 'limit of 2048 bytes' });
    assertApiError(await call(plane!.api, 'POST', '/v1/canary', { body: { route: 'reviews', weights: { v1: 1, v2: 1 }, rule: `r${'x'.repeat(2100)}` } }), { status: 413, code: 'SKEIN_ERR_BODY_TOO_LARGE', message: 'limit of 2048 bytes' });
    await assertUnchanged(plane!.api, before, 'over --max-body-bytes');
  });
});

/**
 * A change's answer without its rollout, after checking the rollout says what it must here: no
 * xDS client is connected in these tests, so every stored change reached no proxy.
 */
function changeOf(body: Record<string, unknown> & { rollout?: { state: string; revision: number }; changed: boolean; revision: number }): Record<string, unknown> {
  const { rollout, ...rest } = body;
  assert.ok(rollout, `a change answers with its rollout: ${JSON.stringify(body)}`);
  assert.equal(rollout.state, 'NONE');
  assert.equal(rollout.revision, body.revision);
  return rest;
}
