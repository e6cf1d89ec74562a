/** Loopback port helpers shared by tests. */
import * as net from 'node:net';

/** A port nothing listens on: bound on loopback, then closed. */
export async function closedPort(host = '127.0.0.1'): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, host, resolve));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}
