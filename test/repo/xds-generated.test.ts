/**
 * shared/src/xds/generated/xds-types.ts is generated from proto/ (shared/src/xds/gen-types.ts,
 * `npm run gen:xds`) and committed. These tests fail when the committed file is stale, and prove
 * the point of it: code that writes an xDS resource with a misspelled field, a wrong enum name or
 * an Any of an unknown type does not compile (checked with the TypeScript compiler itself).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ts from 'typescript';
import { GENERATED_TYPES_FILE, generateXdsTypes } from '../../shared/src/xds/gen-types';
import { TYPE_URLS } from '../../shared/src/xds/protos';

describe('generated xDS types', () => {
  test('the committed file is what the generator produces from proto/ now', () => {
    const committed = fs.readFileSync(GENERATED_TYPES_FILE, 'utf8');
    const now = generateXdsTypes();
    if (committed !== now) {
      const a = committed.split('\n');
      const b = now.split('\n');
      const i = a.findIndex((line, n) => line !== b[n]);
      assert.fail(`${path.basename(GENERATED_TYPES_FILE)} is stale (first difference at line ${i + 1}: ${JSON.stringify(a[i])} vs ${JSON.stringify(b[i])}); run npm run gen:xds`);
    }
  });

  test('our conventions: enums as names, 64-bit ints as string | number, maps as Record, an inline Any', () => {
    const src = generateXdsTypes();
    assert.match(src, /export type LbPolicy = 'ROUND_ROBIN' \| 'LEAST_REQUEST' \| 'RING_HASH' \| 'RANDOM' \| 'MAGLEV' \| 'CLUSTER_PROVIDED' \| 'LOAD_BALANCING_POLICY_CONFIG';/);
    assert.match(src, /export interface UInt64Value \{\n\s+value\?: string \| number;\n/);
    assert.match(src, /typed_extension_protocol_options\?: Record<string, google\.protobuf\.Any>;/);
    assert.match(src, /\| AnyOf<'type\.googleapis\.com\/envoy\.extensions\.filters\.http\.fault\.v3\.HTTPFault', envoy\.extensions\.filters\.http\.fault\.v3\.HTTPFault>/);
    assert.match(src, /port_specifier\?: 'port_value' \| 'named_port';/, 'a oneof names its member');
  });

  // Each snippet is one file; `error` is what the compiler must say about it (undefined: nothing).
  const snippets: { name: string; code: string; error?: RegExp }[] = [
    {
      name: 'a valid cluster',
      code: `const c: Cluster = { name: 'c', type: 'EDS', lb_policy: 'ROUND_ROBIN', connect_timeout: { seconds: '1', nanos: 0 },
        eds_cluster_config: { eds_config: { ads: {}, resource_api_version: 'V3' } },
        ring_hash_lb_config: { minimum_ring_size: { value: 1024 }, maximum_ring_size: { value: '4096' } },
        typed_extension_protocol_options: { k: { '@type': '${TYPE_URLS.HTTP_PROTOCOL_OPTIONS}', explicit_http_config: { http2_protocol_options: {} } } },
        load_balancing_policy: { policies: [{ typed_extension_config: { name: 'rr', typed_config: { '@type': '${TYPE_URLS.LB_ROUND_ROBIN}' } } }] } };`,
    },
    { name: 'a misspelled field', code: `const c: Cluster = { name: 'c', lb_polcy: 'ROUND_ROBIN' };`, error: /'lb_polcy' does not exist in type 'Cluster'/ },
    { name: 'an unknown enum name', code: `const c: Cluster = { name: 'c', lb_policy: 'ROUND_ROBN' };`, error: /'"ROUND_ROBN"' is not assignable to type 'LbPolicy \| undefined'/ },
    { name: 'a wrong scalar type', code: `const c: Cluster = { name: 1 };`, error: /'number' is not assignable to type 'string'/ },
    { name: 'a field of an empty message', code: `const c: Cluster = { eds_cluster_config: { eds_config: { ads: { x: 1 } } } };`, error: /'number' is not assignable to type 'never'/ },
    {
      name: 'a misspelled field inside an Any',
      code: `const c: Cluster = { typed_extension_protocol_options: { k: { '@type': '${TYPE_URLS.HTTP_PROTOCOL_OPTIONS}', explicit_http_confg: {} } } };`,
      error: /'explicit_http_confg' does not exist/,
    },
    {
      name: 'a field inside an Any of an empty message',
      code: `const c: Cluster = { load_balancing_policy: { policies: [{ typed_extension_config: { name: 'rr', typed_config: { '@type': '${TYPE_URLS.LB_ROUND_ROBIN}', x: 1 } } }] } };`,
      error: /'x' does not exist/,
    },
    {
      name: 'an Any of a type not in TYPE_URLS',
      code: `const c: Cluster = { typed_extension_protocol_options: { k: { '@type': 'type.googleapis.com/x.Y' } } };`,
      error: /'"type\.googleapis\.com\/x\.Y"' is not assignable to type '"type\.googleapis\.com\/envoy\.config\.cluster\.v3\.Cluster" \| /,
    },
  ];

  test('the compiler rejects misspelled fields, unknown enum names and Anys, and accepts a valid resource', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skein-xds-types-'));
    try {
      const typesModule = GENERATED_TYPES_FILE.replace(/\.ts$/, '').split(path.sep).join('/');
      const files = snippets.map((s, i) => {
        const file = path.join(dir, `snippet${i}.ts`);
        fs.writeFileSync(file, `import type { envoy } from ${JSON.stringify(typesModule)};\ntype Cluster = envoy.config.cluster.v3.Cluster;\n${s.code}\nexport { c };\n`);
        return file;
      });
      const program = ts.createProgram(files, { strict: true, noEmit: true, types: [], lib: ['lib.es2022.d.ts'], skipLibCheck: true, target: ts.ScriptTarget.ES2022 });
      snippets.forEach((s, i) => {
        const diags = ts.getPreEmitDiagnostics(program, program.getSourceFile(files[i]!)).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
        if (s.error === undefined) assert.deepEqual(diags, [], s.name);
        else {
          assert.equal(diags.length, 1, `${s.name}: ${JSON.stringify(diags)}`);
          assert.match(diags[0]!, s.error, s.name);
        }
      });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
