import type { FieldReader } from './reader';
import type { TelemetrySpec, TracingSettings } from './types';
import { DEFAULT_TRACE_SAMPLING_PERCENT } from './types';

/** Defaults documented in docs/config.md (Telemetry). */
export function validateTelemetrySpec(r: FieldReader, raw: unknown): TelemetrySpec | undefined {
  const o = r.object(raw, 'spec', ['tracing']);
  if (o === undefined) return undefined;
  if (o['tracing'] === undefined) return { tracing: { samplingPercent: DEFAULT_TRACE_SAMPLING_PERCENT } };
  const tracing = tracingOf(r, o['tracing'], 'spec.tracing');
  return tracing === undefined ? undefined : { tracing };
}

/**
 * `{samplingPercent}`: 0 to 100 (default 1 for the mesh); carried per million on the wire
 * (Route.tracing) so finer steps than 0.0001 are refused.
 */
export function tracingOf(r: FieldReader, raw: unknown, path: string): TracingSettings | undefined {
  const o = r.object(raw, path, ['samplingPercent']);
  if (o === undefined) return undefined;
  if (o['samplingPercent'] === undefined) return { samplingPercent: DEFAULT_TRACE_SAMPLING_PERCENT };
  const p = r.number(o['samplingPercent'], `${path}.samplingPercent`, { min: 0, max: 100 });
  if (p === undefined) return undefined;
  if (Math.abs(p * 10_000 - Math.round(p * 10_000)) > 1e-6) return r.fail(`${path}.samplingPercent`, `must be a multiple of 0.0001, got ${p}`);
  return { samplingPercent: p };
}
