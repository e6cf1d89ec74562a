/**
 * The maximum size of every list and map in the config model, and of the config as a whole.
 * README.md ("Config limits") documents each one; docs/config.md names them field by field.
 *
 * They exist so that one change costs bounded work: validation, diff, translation and encoding
 * of a config at these maxima stay within about 100 ms per step on a loaded 2-core machine
 * (each step yields to the event loop between resources; see `control-plane/src/store/slicer.ts`),
 * and input past them is refused (422, naming the field) before any of that work starts.
 */
export const CONFIG_LIMITS = {
  /** Documents (resources) in one request body or file. */
  documentsPerRequest: 1000,
  /** Resources in the whole config. */
  resources: 1000,
  /** The whole config, as stored (JSON), in bytes. */
  configBytes: 2 * 1024 * 1024,
  /** metadata.name and every other name: a DNS label (also enforced by its pattern). */
  nameLength: 63,
  /** Entries of one labels map (metadata.labels, subset and endpoint labels). */
  labels: 64,
  /** Entries of metadata.annotations. */
  annotations: 64,
  /** A label or annotation key: an optional DNS-subdomain prefix (253) and '/', then a name (63). */
  labelKeyLength: 317,
  /** A label value (as in Kubernetes). */
  labelValueLength: 63,
  /** An annotation value. */
  annotationValueLength: 4096,
  /** Service spec.ports. */
  ports: 64,
  /** Service spec.subsets. */
  subsets: 64,
  /** Service spec.endpoints (static endpoints; one EDS resource holds them all). */
  endpoints: 1000,
  /** Service spec.dependsOn (at most every Service of a config). */
  dependsOn: 1000,
  /** Route spec.parentRefs. */
  parentRefs: 32,
  /** Route spec.hostnames. */
  hostnames: 64,
  /** Route spec.rules. */
  rules: 100,
  /** matches of one rule. */
  matches: 32,
  /** headers of one match. */
  headers: 32,
  /** backendRefs of one rule. */
  backendRefs: 16,
  /** filters of one rule: at most one of each of the 4 types. */
  filters: 4,
  /** set, add and remove lists of a header modifier (each). */
  headerModifiers: 32,
  /** retry.retriableStatusCodes and healthCheck.http.expectedStatuses. */
  statusCodes: 32,
  /**
   * Envoy routes in one service's virtual host: the matches of every rule of every route
   * attached to the service. One RouteConfiguration carries them all, and is encoded at once.
   */
  routesPerService: 512,
  /** AuthorizationPolicy spec.rules. */
  authorizationRules: 64,
  /** from, to.paths, to.methods and to.grpc of one authorization rule (each). */
  authorizationRuleItems: 32,
} as const;
