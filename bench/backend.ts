/** The benchmark's upstream: one Greeter gRPC server in its own process. Prints {"port": N}. */
import { startGreeter } from '../shared/src/sample-app/greeter';

void startGreeter({ backend: 'bench', version: 'v1', port: Number(process.argv[2] ?? 0) }).then((b) => {
  process.stdout.write(`${JSON.stringify({ port: b.port })}\n`);
  process.on('SIGTERM', () => { void b.close().then(() => process.exit(0)); });
});
