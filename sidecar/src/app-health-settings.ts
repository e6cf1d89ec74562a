/**
 * The settings of the sidecar's app health watch (app-health.ts) and the parser of its
 * `--app-health` flag. Kept apart from the watcher so the CLI can parse flags without loading
 * the health-check transports.
 */
import { formatDuration } from '../../shared/src/config/duration';
import { ErrorCodes, MeshError } from '../../shared/src/errors';
import type { HealthCheckConfig } from './resilience/health-check-config';

/** `--app-health`: tcp (default), grpc, grpc:SERVICE, http:/PATH, or none. */
export type AppHealthCheck = HealthCheckConfig['check'] | { kind: 'none' };

export interface AppHealthSettings {
  check: AppHealthCheck;
  intervalMs: number;
  timeoutMs: number;
  unhealthyThreshold: number;
  healthyThreshold: number;
}

/** Default: a TCP connect every second; down after 2 failures in a row, back after 2 passes. */
export const DEFAULT_APP_HEALTH: AppHealthSettings = { check: { kind: 'tcp' }, intervalMs: 1000, timeoutMs: 1000, unhealthyThreshold: 2, healthyThreshold: 2 };

/** The defaults as the CLI shows them. */
export const APP_HEALTH_DEFAULTS = {
  check: 'tcp', interval: formatDuration(DEFAULT_APP_HEALTH.intervalMs), timeout: formatDuration(DEFAULT_APP_HEALTH.timeoutMs),
  unhealthyThreshold: DEFAULT_APP_HEALTH.unhealthyThreshold, healthyThreshold: DEFAULT_APP_HEALTH.healthyThreshold,
} as const;

/** Parses `--app-health`. `codec` is the app's protocol, for HTTP checks. */
export function parseAppHealthCheck(text: string, appProtocol: 'grpc' | 'http'): AppHealthCheck {
  if (text === 'tcp') return { kind: 'tcp' };
  if (text === 'none') return { kind: 'none' };
  if (text === 'grpc' || text.startsWith('grpc:')) {
    const serviceName = text === 'grpc' ? '' : text.slice(5);
    if (!/^[\x21-\x7e]*$/.test(serviceName)) throw new MeshError(ErrorCodes.VALIDATION, `--app-health: the gRPC service name must hold no spaces or control characters, got "${serviceName}"`);
    return { kind: 'grpc', serviceName, authority: undefined };
  }
  if (text.startsWith('http:')) {
    const path = text.slice(5);
    if (!/^\/[\x21-\x7e]*$/.test(path)) throw new MeshError(ErrorCodes.VALIDATION, `--app-health: http:PATH needs a path that starts with '/' and holds no spaces, got "${path}"`);
    return { kind: 'http', path, host: undefined, expectedStatuses: [[200, 300]], codec: appProtocol === 'grpc' ? 'http2' : 'http1' };
  }
  throw new MeshError(ErrorCodes.VALIDATION, `--app-health: must be tcp, grpc, grpc:SERVICE, http:/PATH or none, got "${text}"`);
}
