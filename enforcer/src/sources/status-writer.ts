/**
 * Writes this node's realization of each MeshNetworkPolicy back to its
 * status subresource (crds/meshnetworkpolicies.palisade.dev.yaml:
 * `status.nodes[]`, a list-map keyed by cluster and node). Server-side apply
 * with one field manager per node, so agents of many nodes each own their
 * own list item and never overwrite one another. A write happens only when
 * this node's entry for a policy changed.
 */
import {
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
} from '@kubernetes/client-node';
import type { PolicyStatus } from '../api/types.js';

export interface StatusWriterOptions {
  readonly kubeConfig: KubeConfig;
  readonly cluster: string;
  /** Node name (without the cluster). */
  readonly node: string;
  readonly onError?: (policy: string, message: string) => void;
}

export interface NodeRealization {
  readonly cluster: string;
  readonly node: string;
  readonly revision: string;
  readonly entries: number;
  readonly errors: string[];
}

export class MeshPolicyStatusWriter {
  private readonly api: CustomObjectsApi;
  private readonly written = new Map<string, string>();
  /** Server-side apply requests sent (tests, status). */
  writes = 0;

  constructor(private readonly opts: StatusWriterOptions) {
    this.api = opts.kubeConfig.makeApiClient(CustomObjectsApi);
  }

  get fieldManager(): string {
    return `palisade-agent/${this.opts.cluster}/${this.opts.node}`.slice(0, 128);
  }

  /** This node's entry for one policy status. */
  realization(p: PolicyStatus): NodeRealization {
    return {
      cluster: this.opts.cluster,
      node: this.opts.node,
      revision: p.enforcedRevision ?? '',
      entries: p.state === 'enforced' ? p.entries : 0,
      errors: p.error ? [p.error.slice(0, 4096)] : [],
    };
  }

  /** Applies the entries that changed since the last call; failures are retried next call. */
  async write(policies: readonly PolicyStatus[]): Promise<void> {
    for (const p of policies) {
      if (p.kind !== 'MeshNetworkPolicy') continue;
      const entry = this.realization(p);
      const text = JSON.stringify(entry);
      if (this.written.get(p.name) === text) continue;
      const body = {
        apiVersion: 'palisade.dev/v1alpha1',
        kind: 'MeshNetworkPolicy',
        metadata: { name: p.name },
        status: { nodes: [entry] },
      };
      try {
        this.writes++;
        await this.api.patchClusterCustomObjectStatus(
          {
            group: 'palisade.dev',
            version: 'v1alpha1',
            plural: 'meshnetworkpolicies',
            name: p.name,
            body,
            fieldManager: this.fieldManager,
            force: true,
          },
          setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply),
        );
        this.written.set(p.name, text);
      } catch (e) {
        const code = (e as { code?: unknown }).code;
        // Deleted meanwhile: nothing to report on.
        if (code === 404) continue;
        this.opts.onError?.(
          p.name,
          `status write failed (${String(code ?? (e as Error).message)})`,
        );
      }
    }
    const live = new Set(policies.filter((p) => p.kind === 'MeshNetworkPolicy').map((p) => p.name));
    for (const name of this.written.keys()) if (!live.has(name)) this.written.delete(name);
  }
}
