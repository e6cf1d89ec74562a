/**
 * The decision for one Pod and, when it is injected, the RFC 6902 JSON Patch that adds the
 * sidecar: the native sidecar container first among the init containers, its volumes, the
 * SKEIN_* env vars on each app container that does not set them, and the
 * skein.io/status=injected annotation. Pure: the same pod gives the same answer.
 */
import type { FieldIssue } from '../../shared/src/errors';
import type { InjectorSettings } from './injection-settings';
import { appEnv, sidecarContainer, sidecarVolumes } from './sidecar-container';
import type { PodLike, Selection, Workload } from './workload';
import { alreadyInjected, INJECTED, readWorkload, STATUS_KEY, wantsInjection } from './workload';

export interface PatchOp { op: 'add'; path: string; value: unknown }

export type Decision =
  | { kind: 'skip'; reason: 'not-opted-in' | 'already-injected' }
  | { kind: 'inject'; workload: Workload; patch: PatchOp[] }
  | { kind: 'deny'; issues: FieldIssue[] };

/** JSON Pointer escaping of one reference token (RFC 6901). */
const token = (s: string) => s.replace(/~/g, '~0').replace(/\//g, '~1');

export function decide(pod: PodLike, namespace: string, selection: Selection, settings: InjectorSettings): Decision {
  if (!wantsInjection(pod, selection)) return { kind: 'skip', reason: 'not-opted-in' };
  if (alreadyInjected(pod)) return { kind: 'skip', reason: 'already-injected' };
  const workload = readWorkload(pod, namespace);
  if (Array.isArray(workload)) return { kind: 'deny', issues: workload };
  const volumes = sidecarVolumes(settings, workload);
  const taken = new Set((pod.spec?.volumes ?? []).map((v) => v.name));
  const clash = volumes.filter((v) => taken.has(v.name as string));
  if (clash.length > 0) return { kind: 'deny', issues: clash.map((v) => ({ resource: 'Pod', path: 'spec.volumes', message: `a volume named "${v.name as string}" exists already; skein's sidecar needs that name` })) };

  const patch: PatchOp[] = [];
  const sidecar = sidecarContainer(settings, workload);
  if (pod.spec?.initContainers === undefined) patch.push({ op: 'add', path: '/spec/initContainers', value: [sidecar] });
  else patch.push({ op: 'add', path: '/spec/initContainers/0', value: sidecar });
  if (pod.spec?.volumes === undefined) patch.push({ op: 'add', path: '/spec/volumes', value: volumes });
  else for (const v of volumes) patch.push({ op: 'add', path: '/spec/volumes/-', value: v });
  (pod.spec?.containers ?? []).forEach((c, i) => {
    const set = new Set((c.env ?? []).map((e) => e.name));
    const missing = appEnv().filter((e) => !set.has(e.name));
    if (missing.length === 0) return;
    if (c.env === undefined) patch.push({ op: 'add', path: `/spec/containers/${i}/env`, value: missing });
    else for (const e of missing) patch.push({ op: 'add', path: `/spec/containers/${i}/env/-`, value: e });
  });
  if (pod.metadata?.annotations === undefined) patch.push({ op: 'add', path: '/metadata/annotations', value: { [STATUS_KEY]: INJECTED } });
  else patch.push({ op: 'add', path: `/metadata/annotations/${token(STATUS_KEY)}`, value: INJECTED });
  return { kind: 'inject', workload, patch };
}
