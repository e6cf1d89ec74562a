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

/**
 * Starts `server` listening on host:port (port 0: a free port); resolves to the bound port, or
 * rejects with an INTERNAL MeshError `<what>: cannot listen on host:port: <reason>`.
 */
export function listenHttp(server: import('node:net').Server, host: string, port: number, what: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error): void => reject(new MeshError(ErrorCodes.INTERNAL, `${what}: cannot listen on ${host}:${port}: ${e.message}`, { cause: e }));
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve((server.address() as { port: number }).port);
    });
  });
}

/** Closes an HTTP server and its open connections; a server not listening resolves at once. */
export function closeHttp(server: import('node:http').Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) { resolve(); return; }
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
