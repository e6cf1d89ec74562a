import * as http2 from 'node:http2';

/** Ends an h2 stream whose request the client has not finished, once the response went out (RFC 9113 8.1). */
export function closeUnfinishedRequest(stream: http2.ServerHttp2Stream): void {
  if (!stream.destroyed && !stream.closed && !stream.readableEnded) stream.close(http2.constants.NGHTTP2_NO_ERROR);
}
