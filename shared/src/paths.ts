import * as fs from 'node:fs';
import * as path from 'node:path';

/** The repository (package) root, found by walking up from this file to package.json. */
export const PACKAGE_ROOT: string = (() => {
  let dir = __dirname;
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'proto'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`skein: cannot find the package root above ${__dirname}`);
    dir = parent;
  }
})();

export const PROTO_DIR = path.join(PACKAGE_ROOT, 'proto');

/** This build's version, from package.json (sent as the xDS user agent version). */
export const SKEIN_VERSION: string = (JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
