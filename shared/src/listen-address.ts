import { ErrorCodes, MeshError } from './errors';

/** Parses host:port (IPv6 as [::1]:port). */
export function parseListen(listen: string, field: string): { host: string; port: number } {
  const i = listen.lastIndexOf(':');
  const port = Number(listen.slice(i + 1));
  const h = listen.slice(0, i).replace(/^\[(.*)\]$/, '$1');
  if (i <= 0 || !Number.isInteger(port) || port < 0 || port > 65535 || h === '') {
    throw new MeshError(ErrorCodes.VALIDATION, `${field}: "${listen}" must be host:port, e.g. 127.0.0.1:18000`);
  }
  return { host: h, port };
}

/** Whether a listen host only accepts connections from this machine. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}
