/**
 * The lab's topology as plain data (pure: no I/O): clusters, nodes, pods,
 * their namespaces, interface names and addresses. Everything the lab
 * creates is named here, so `up` applies it and `down` can remove it.
 *
 * Addressing (IPv4 only; cluster index c from 0, node n from 0, pod k from 0):
 *   underlay       172.29.0.0/24, gateway of cluster c at 172.29.0.(c+1)
 *   node CIDR      192.168.(100+c).0/24: gateway .1, node n .(11+n)
 *   pod CIDR       10.(100+c).0.0/16, node n's pods 10.(100+c).(n+1).(10+k)
 *                  (point-to-point veths; the node side is 10.(100+c).(n+1).1)
 *   service CIDR   10.(150+c).0.0/16 (declared only)
 */

export const LAB_PREFIX = 'pl-';
export const WG_PORT = 51820;
/** Debian's etcd default ports are 2379/2380; the lab uses its own. */
export const ETCD_CLIENT_PORT = 23790;
export const ETCD_PEER_PORT = 23800;

export interface LabOptions {
  readonly clusters: number;
  readonly nodes: number;
  readonly pods: number;
  /**
   * Prefix of every namespace and host-wide name (default `pl-`); lets two labs
   * (e.g. a test next to a running demo) share a machine. 2-6 of [a-z0-9], ending in '-'.
   */
  readonly prefix?: string;
}

export const DEFAULT_OPTIONS: LabOptions = { clusters: 2, nodes: 2, pods: 3 };
export const LIMITS = { clusters: 8, nodes: 4, pods: 8 } as const;

export interface PlannedPod {
  readonly cluster: string;
  readonly namespace: string;
  readonly name: string;
  /** `<cluster>/<namespace>/<pod>` */
  readonly id: string;
  readonly node: string;
  readonly netns: string;
  /** host-side veth, in the node namespace */
  readonly hostIf: string;
  readonly ip: string;
  /** the node side of the point-to-point link */
  readonly gatewayIp: string;
  /** index into the template pods of the cluster's example cluster */
  readonly template: number;
}

export interface PlannedNode {
  readonly cluster: string;
  readonly name: string;
  readonly netns: string;
  readonly ip: string;
  /** this node's pod range (a /24 of the pod CIDR) */
  readonly podRange: string;
  /** port on the cluster switch */
  readonly switchIf: string;
  readonly pinDir: string;
}

export interface PlannedCluster {
  readonly index: number;
  readonly name: string;
  /** which example cluster this one copies namespaces, labels and pods from */
  readonly template: string;
  readonly podCIDR: string;
  readonly serviceCIDR: string;
  readonly nodeCIDR: string;
  readonly switchNs: string;
  readonly gatewayNs: string;
  readonly gatewayFabricIp: string;
  readonly gatewayUnderlayIp: string;
  /** the gateway's port on the underlay bridge */
  readonly underlayIf: string;
  /** WireGuard device base name (devices <base>a / <base>b); unique on the host (UAPI socket path) */
  readonly wgBase: string;
  readonly nodes: readonly PlannedNode[];
  readonly pods: readonly PlannedPod[];
}

export interface LabPlan {
  readonly options: LabOptions;
  readonly underlayNs: string;
  readonly clusters: readonly PlannedCluster[];
}

/** The example world's two clusters; further lab clusters copy them alternately. */
export const TEMPLATE_CLUSTERS = ['east', 'west'] as const;

export function clusterName(c: number): string {
  return c < TEMPLATE_CLUSTERS.length ? (TEMPLATE_CLUSTERS[c] as string) : `c${c + 1}`;
}

/** A template role: one distinct pod of an example cluster. */
export interface TemplatePod {
  readonly namespace: string;
  /** pod name without its trailing -N */
  readonly base: string;
}

export function validateOptions(o: LabOptions): string[] {
  const errs: string[] = [];
  const check = (k: keyof typeof LIMITS, min: number): void => {
    const v = o[k];
    const max = LIMITS[k];
    if (!Number.isInteger(v) || v < min || v > max)
      errs.push(`--${k}: an integer from ${min} to ${max} (got ${String(v)})`);
  };
  check('clusters', 1);
  check('nodes', 1);
  check('pods', 1);
  if (o.prefix !== undefined && !/^[a-z][a-z0-9]{0,4}-$/.test(o.prefix)) {
    errs.push(
      `--prefix: 2-6 characters: a letter, up to 4 letters or digits, then '-' (got ${JSON.stringify(o.prefix)})`,
    );
  }
  return errs;
}

/**
 * Pods of cluster c: slot s takes template role s mod R (R distinct roles of
 * the example cluster), named <base>-<s div R>, on node s mod M, so roles
 * spread over the nodes and traffic crosses them.
 */
export function planLab(
  options: LabOptions,
  templates: ReadonlyMap<string, readonly TemplatePod[]>,
): LabPlan {
  const errs = validateOptions(options);
  if (errs.length > 0) throw new Error(errs.join('; '));
  const prefix = options.prefix ?? LAB_PREFIX;
  // host-wide names (WireGuard devices: UAPI socket path; pins) carry the prefix without its '-'
  const tag = prefix.slice(0, -1);
  const clusters: PlannedCluster[] = [];
  for (let c = 0; c < options.clusters; c++) {
    const name = clusterName(c);
    const template = TEMPLATE_CLUSTERS[c % TEMPLATE_CLUSTERS.length] as string;
    const roles = templates.get(template) ?? [];
    if (roles.length === 0) throw new Error(`example cluster ${template} has no pods to copy`);
    const nodes: PlannedNode[] = [];
    for (let n = 0; n < options.nodes; n++) {
      const node = `${name}-node-${n + 1}`;
      nodes.push({
        cluster: name,
        name: node,
        netns: `${prefix}${name}-n${n + 1}`,
        ip: `192.168.${100 + c}.${11 + n}`,
        podRange: `10.${100 + c}.${n + 1}.0/24`,
        switchIf: `plsn${n + 1}`,
        pinDir: `/sys/fs/bpf/palisade-lab/${prefix}${node}`,
      });
    }
    const pods: PlannedPod[] = [];
    const perNode = new Array<number>(options.nodes).fill(0);
    const total = options.nodes * options.pods;
    for (let s = 0; s < total; s++) {
      const r = s % roles.length;
      const role = roles[r] as TemplatePod;
      const n = s % options.nodes;
      const k = perNode[n] as number;
      perNode[n] = k + 1;
      const podName = `${role.base}-${Math.floor(s / roles.length)}`;
      pods.push({
        cluster: name,
        namespace: role.namespace,
        name: podName,
        id: `${name}/${role.namespace}/${podName}`,
        node: (nodes[n] as PlannedNode).name,
        netns: `${prefix}${name}-${role.namespace}-${podName}`,
        hostIf: `plh${k}`,
        ip: `10.${100 + c}.${n + 1}.${10 + k}`,
        gatewayIp: `10.${100 + c}.${n + 1}.1`,
        template: r,
      });
    }
    clusters.push({
      index: c,
      name,
      template,
      podCIDR: `10.${100 + c}.0.0/16`,
      serviceCIDR: `10.${150 + c}.0.0/16`,
      nodeCIDR: `192.168.${100 + c}.0/24`,
      switchNs: `${prefix}${name}-sw`,
      gatewayNs: `${prefix}${name}-gw`,
      gatewayFabricIp: `192.168.${100 + c}.1`,
      gatewayUnderlayIp: `172.29.0.${c + 1}`,
      underlayIf: `plug${c + 1}`,
      wgBase: `${tag}${c}w`,
      nodes,
      pods,
    });
  }
  return { options, underlayNs: `${prefix}underlay`, clusters };
}

/** Every namespace of the plan, in creation order. */
export function planNamespaces(plan: LabPlan): string[] {
  const out = [plan.underlayNs];
  for (const c of plan.clusters) {
    out.push(
      c.switchNs,
      c.gatewayNs,
      ...c.nodes.map((n) => n.netns),
      ...c.pods.map((p) => p.netns),
    );
  }
  return out;
}
