/**
 * AdmissionReview v1 (admission.k8s.io/v1) in and out. `readReview` checks what the injector
 * relies on and names the first field that is wrong; `answer` builds the response: a base64
 * JSONPatch when the pod is injected, allowed with no patch when it is skipped, and
 * allowed=false with a Status naming each bad annotation when it is denied.
 */
import { ErrorCodes, formatIssue, MeshError } from '../../shared/src/errors';
import type { Decision } from './pod-patch';
import type { PodLike } from './workload';

export const REVIEW_API_VERSION = 'admission.k8s.io/v1';

export interface PodReview { uid: string; namespace: string; pod: PodLike }

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The review's uid, or undefined when there is none to answer to. A review with a uid but a
 * request the injector cannot take is answered (denied) with `reviewError`'s message.
 */
export function reviewUid(body: unknown): string | undefined {
  if (!isObject(body) || !isObject(body['request'])) return undefined;
  const uid = body['request']['uid'];
  return typeof uid === 'string' && uid !== '' ? uid : undefined;
}

/** Parses a request body as an AdmissionReview v1 for a Pod CREATE; a MeshError naming the field otherwise. */
export function readReview(body: unknown): PodReview {
  const bad = (path: string, message: string) => new MeshError(ErrorCodes.VALIDATION, `AdmissionReview ${path}: ${message}`, { details: [{ resource: 'AdmissionReview', path, message }] });
  if (!isObject(body)) throw bad('', 'must be a JSON object');
  if (body['apiVersion'] !== REVIEW_API_VERSION) throw bad('apiVersion', `must be ${REVIEW_API_VERSION}, got ${JSON.stringify(body['apiVersion'])} (admissionReviewVersions: ["v1"])`);
  if (body['kind'] !== 'AdmissionReview') throw bad('kind', `must be AdmissionReview, got ${JSON.stringify(body['kind'])}`);
  const req = body['request'];
  if (!isObject(req)) throw bad('request', 'must be an object');
  if (typeof req['uid'] !== 'string' || req['uid'] === '') throw bad('request.uid', 'must be a non-empty string');
  const kind = req['kind'];
  if (!isObject(kind) || kind['group'] !== '' || kind['version'] !== 'v1' || kind['kind'] !== 'Pod') throw bad('request.kind', `the injector handles core/v1 Pods only, got ${JSON.stringify(kind)}: check the webhook's rules`);
  if (req['operation'] !== 'CREATE') throw bad('request.operation', `the injector handles CREATE only, got ${JSON.stringify(req['operation'])}: check the webhook's rules`);
  const pod = req['object'];
  if (!isObject(pod)) throw bad('request.object', 'must be the Pod');
  if (!isObject(pod['metadata'])) throw bad('request.object.metadata', 'must be an object');
  for (const m of ['labels', 'annotations'] as const) {
    const v = pod['metadata'][m];
    if (v !== undefined && (!isObject(v) || Object.values(v).some((x) => typeof x !== 'string'))) throw bad(`request.object.metadata.${m}`, 'must map strings to strings');
  }
  const spec = pod['spec'];
  if (!isObject(spec)) throw bad('request.object.spec', 'must be an object');
  if (!Array.isArray(spec['containers']) || spec['containers'].length === 0 || !spec['containers'].every(isObject)) throw bad('request.object.spec.containers', 'must be a non-empty list of containers');
  for (const f of ['initContainers', 'volumes'] as const) {
    if (spec[f] !== undefined && (!Array.isArray(spec[f]) || !(spec[f] as unknown[]).every(isObject))) throw bad(`request.object.spec.${f}`, 'must be a list of objects');
  }
  for (const [i, c] of (spec['containers'] as Record<string, unknown>[]).entries()) {
    if (c['env'] !== undefined && (!Array.isArray(c['env']) || !c['env'].every(isObject))) throw bad(`request.object.spec.containers[${i}].env`, 'must be a list of objects');
    if (c['ports'] !== undefined && (!Array.isArray(c['ports']) || !c['ports'].every((p) => isObject(p) && Number.isInteger(p['containerPort'])))) throw bad(`request.object.spec.containers[${i}].ports`, 'must be a list of ports, each with an integer containerPort');
  }
  if (spec['serviceAccountName'] !== undefined && typeof spec['serviceAccountName'] !== 'string') throw bad('request.object.spec.serviceAccountName', 'must be a string');
  const ns = req['namespace'] ?? pod['metadata']['namespace'];
  if (typeof ns !== 'string' || ns === '') throw bad('request.namespace', 'must name the pod\'s namespace');
  return { uid: req['uid'], namespace: ns, pod: pod as PodLike };
}

interface ReviewResponse {
  apiVersion: string; kind: 'AdmissionReview';
  response: { uid: string; allowed: boolean; patchType?: 'JSONPatch'; patch?: string; status?: { code: number; message: string } };
}

export function answer(uid: string, d: Decision): ReviewResponse {
  const base = { apiVersion: REVIEW_API_VERSION, kind: 'AdmissionReview' as const };
  if (d.kind === 'inject') return { ...base, response: { uid, allowed: true, patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(d.patch)).toString('base64') } };
  if (d.kind === 'skip') return { ...base, response: { uid, allowed: true } };
  return { ...base, response: { uid, allowed: false, status: { code: 422, message: `skein sidecar injection: ${d.issues.map(formatIssue).join('; ')}` } } };
}

/** The answer to a review that has a uid but cannot be handled: denied, saying why. */
export function refuse(uid: string, e: MeshError): ReviewResponse {
  return { apiVersion: REVIEW_API_VERSION, kind: 'AdmissionReview', response: { uid, allowed: false, status: { code: 400, message: `skein sidecar injector: ${e.message}` } } };
}
