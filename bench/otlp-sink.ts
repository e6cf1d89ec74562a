/**
 * The bench's OTLP/HTTP trace receiver, in its own process (the bench runs h2load synchronously,
 * which would stall an in-process server): POST /v1/traces, decoded with the official
 * OpenTelemetry protos (test/support/otlp-receiver.ts), spans counted. Prints {"url": ...};
 * GET /count answers {"spans": N, "requests": N}.
 */
import * as http from 'node:http';
import { OtlpReceiver } from '../test/support/otlp-receiver';

void OtlpReceiver.start({ keepSpans: false }).then((r) => {
  const counter = http.createServer((_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ spans: r.spanCount, requests: r.requests })); });
  counter.listen(0, '127.0.0.1', () => {
    const port = (counter.address() as import('node:net').AddressInfo).port;
    process.stdout.write(`${JSON.stringify({ url: r.url, count: `http://127.0.0.1:${port}/count` })}\n`);
  });
  process.on('SIGTERM', () => { void r.close().then(() => process.exit(0)); });
});
