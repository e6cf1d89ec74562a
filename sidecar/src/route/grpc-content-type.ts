/**
 * The one test of "is this gRPC?" in the sidecar, used for routing (`RouteMatch.grpc`), for
 * deadlines (grpc-timeout), for local replies (trailers-only with grpc-status) and for the
 * trailers the router waits for. Envoy's Grpc::Common::hasGrpcContentType: the content-type is
 * `application/grpc`, optionally followed by `+<subtype>` or `;<params>`.
 *
 * grpc-web (`application/grpc-web`, `application/grpc-web+proto`, `application/grpc-web-text`)
 * is NOT gRPC here, as in Envoy without its grpc_web filter: the sidecar has no grpc-web
 * transcoder, so a grpc-web request is proxied as plain HTTP (HTTP status local replies, no
 * grpc-timeout handling, no synthesized trailers, no match on `grpc: {}` routes). grpc-web puts
 * its trailers in the body, so treating it as gRPC would add a trailer its clients never read.
 */
export function isGrpcContentType(contentType: string | string[] | undefined): boolean {
  const ct = Array.isArray(contentType) ? contentType[0] : contentType;
  if (ct === undefined || !ct.startsWith('application/grpc')) return false;
  const next = ct.charCodeAt(16);
  return ct.length === 16 || next === 43 /* + */ || next === 59 /* ; */;
}
