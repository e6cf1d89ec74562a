import type { MeshConfig } from '../../../shared/src/config/mesh';
import type { BackendPolicySpec } from '../../../shared/src/config/types';

export type PolicySections = Omit<BackendPolicySpec, 'targetRef'>;

export interface EffectivePolicies {
  /** The settings for a service's cluster (subset undefined) or a subset's cluster. */
  forCluster(service: string, subset?: string): PolicySections;
}

/**
 * Resolves BackendPolicy attachment: a subset's cluster takes the service-level policy, with
 * each section the subset-level policy sets replacing the service's section whole.
 */
export function effectivePolicies(mesh: MeshConfig): EffectivePolicies {
  const byTarget = new Map<string, PolicySections>();
  for (const p of mesh.policies) {
    const { targetRef, ...sections } = p.spec;
    byTarget.set(targetRef.subset === undefined ? targetRef.name : `${targetRef.name}/${targetRef.subset}`, sections);
  }
  return {
    forCluster(service, subset) {
      const base = byTarget.get(service) ?? {};
      if (subset === undefined) return base;
      return { ...base, ...(byTarget.get(`${service}/${subset}`) ?? {}) };
    },
  };
}
