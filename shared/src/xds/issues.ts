/**
 * The problems found while decoding one xDS resource, each with the field path it is about, e.g.
 * `virtual_hosts[0].routes[2].match: path_specifier is required`. Decoders add every problem they
 * find and carry on (never throw on the first), so one NACK lists them all; the resource is
 * rejected when any was added. toString() is the NACK's error_detail for the resource.
 */
export interface Issue {
  /** The field path, '' for the resource as a whole. */
  readonly path: string;
  readonly message: string;
}

export class Issues {
  readonly entries: Issue[] = [];
  /** Each issue as `<path>: <message>` (just the message when the path is ''). */
  readonly list: string[] = [];

  /** Records a problem; the same one again (found by two checks, e.g. an unsupported oneof member) is not repeated. */
  add(path: string, message: string): void {
    const text = path === '' ? message : `${path}: ${message}`;
    if (this.list.includes(text)) return;
    this.entries.push({ path, message });
    this.list.push(text);
  }

  get ok(): boolean { return this.list.length === 0; }

  /** How many issues so far: a decoder compares counts to tell whether one part added any. */
  get count(): number { return this.list.length; }

  toString(): string { return this.list.join('; '); }
}
