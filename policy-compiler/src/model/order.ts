/**
 * Evaluation order of cluster-wide policies inside the Admin and Baseline
 * tiers (docs/semantics.md): lower priority number first; at a tie
 * MeshNetworkPolicy first (DESIGN.md §2), then by kind, name and cluster so
 * the order is total and every engine walks policies identically.
 */
import type { ClusterPolicy } from './policy.js';

export function compareClusterPolicies(a: ClusterPolicy, b: ClusterPolicy): number {
  if (a.priority !== b.priority) return a.priority - b.priority;
  const am = a.kind === 'MeshNetworkPolicy' ? 0 : 1;
  const bm = b.kind === 'MeshNetworkPolicy' ? 0 : 1;
  if (am !== bm) return am - bm;
  if (a.kind !== b.kind) return a.kind < b.kind ? -1 : 1;
  if (a.name !== b.name) return a.name < b.name ? -1 : 1;
  const ac = a.cluster ?? '';
  const bc = b.cluster ?? '';
  return ac < bc ? -1 : ac > bc ? 1 : 0;
}
