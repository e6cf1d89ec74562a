/**
 * Regular expressions from config and xDS, with RE2 semantics: linear-time matching (no
 * backtracking, so no pattern can hang the proxy on any input), RE2's syntax (no lookaround, no
 * backreferences), and a cap on the compiled program size like Envoy's `max_program_size`.
 *
 * Backed by re2js, a maintained pure-JavaScript port of RE2 (no native build, no download). Every
 * place that compiles a regex from config (the control plane's validation) or from xDS (the
 * sidecar's route, header and gRPC matchers) goes through `compileRe2`, so a pattern is accepted
 * or rejected the same way on both sides, and the same way Envoy would.
 */
import { RE2JS } from 're2js';

/** Largest compiled program accepted by default (Envoy's default `max_program_size`). */
export const MAX_RE2_PROGRAM_SIZE = 100;

let maxProgramSize = MAX_RE2_PROGRAM_SIZE;

/**
 * Sets the process-wide program-size cap (the sidecar's `--regex-max-program-size`), like
 * Envoy's bootstrap-level regex engine setting. Affects patterns compiled afterwards.
 */
export function configureRe2(o: { maxProgramSize: number }): void {
  if (!Number.isInteger(o.maxProgramSize) || o.maxProgramSize < 1) throw new RangeError(`maxProgramSize must be a positive integer, got ${o.maxProgramSize}`);
  maxProgramSize = o.maxProgramSize;
}

/** A compiled pattern that must match the WHOLE input (Envoy's safe_regex semantics). */
export interface FullMatchRegex {
  readonly source: string;
  /** True when the whole of `s` matches. Linear in `s`. */
  test(s: string): boolean;
}

class Re2FullMatch implements FullMatchRegex {
  constructor(readonly source: string, private readonly re: RE2JS) {}
  test(s: string): boolean { return this.re.testExact(s); }
}

/** Compiles `source`, or says why RE2 refuses it (syntax, or a program over `maxProgramSize`). */
export function compileRe2(source: string): FullMatchRegex | { error: string } {
  let re: RE2JS;
  try {
    re = RE2JS.compile(source);
  } catch (e) {
    return { error: `invalid RE2 regular expression ${JSON.stringify(source)}: ${(e as Error).message}` };
  }
  const size = re.programSize();
  if (size > maxProgramSize) return { error: `regular expression ${JSON.stringify(source)} is too complex: RE2 program size ${size} is over the limit of ${maxProgramSize} (simplify it)` };
  return new Re2FullMatch(source, re);
}
