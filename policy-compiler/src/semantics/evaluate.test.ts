/**
 * One case per semantic rule. Each cites what it encodes: the Kubernetes
 * NetworkPolicy API reference / concept page, the kubernetes e2e netpol suite
 * (test/e2e/network/netpol/network_policy.go, It(...) names), the
 * network-policy-api v0.2.0 API (apis/v1alpha2/clusternetworkpolicy_types.go)
 * and its conformance tests (ShortName), or DESIGN.md §2 for our own kinds.
 */
import { describe, expect, it } from 'vitest';
import type { Decision, DirectionVerdict, Verdict } from '../engine.js';
import type { Protocol, World } from '../model/world.js';
import {
  ALL,
  allPorts,
  buildWorld,
  cluster,
  cp,
  cpDomains,
  cpNamespaces,
  cpNetworks,
  cpNodes,
  cpPods,
  ipBlock,
  mnp,
  named,
  namespace,
  node,
  np,
  npPods,
  pod,
  sctp,
  sel,
  tcp,
  udp,
  type WorldParts,
} from '../../../test/support/world-builder.js';
import { evaluate, prepareWorld } from './index.js';

// ------------------------------------------------------------------ fixtures

const PORTS = [
  { name: 'serve-80-tcp', port: 80, protocol: 'TCP' as const },
  { name: 'serve-81-tcp', port: 81, protocol: 'TCP' as const },
  { name: 'serve-80-udp', port: 80, protocol: 'UDP' as const },
  { name: 'serve-81-udp', port: 81, protocol: 'UDP' as const },
  { name: 'serve-80-sctp', port: 80, protocol: 'SCTP' as const },
  { name: 'serve-81-sctp', port: 81, protocol: 'SCTP' as const },
];

/**
 * The e2e truth-table world: namespaces x, y, z (label ns=<name>) with pods
 * a, b, c (label pod=<name>) serving TCP/UDP/SCTP 80-81 on named ports;
 * x/a = 10.0.1.1 ... z/c = 10.0.3.3; a pods run on n1 (192.168.0.1,
 * role=worker), b and c on n2 (192.168.0.2, role=control). Namespace h holds
 * hostNetwork pod h/hn on n1 (label pod=a, so pod selectors would match it).
 */
function e2eWorld(extra: WorldParts = {}): World {
  const pods = [];
  const nsIndex = { x: 1, y: 2, z: 3 };
  const podIndex = { a: 1, b: 2, c: 3 };
  for (const ns of ['x', 'y', 'z'] as const) {
    for (const p of ['a', 'b', 'c'] as const) {
      pods.push(
        pod(`${ns}/${p}`, {
          labels: { pod: p },
          ip: `10.0.${nsIndex[ns]}.${podIndex[p]}`,
          node: p === 'a' ? 'n1' : 'n2',
          ports: PORTS,
        }),
      );
    }
  }
  pods.push(pod('h/hn', { labels: { pod: 'a' }, hostNetwork: true, node: 'n1', ports: PORTS }));
  return buildWorld({
    ...extra,
    namespaces: [
      namespace('x', { ns: 'x' }),
      namespace('y', { ns: 'y' }),
      namespace('z', { ns: 'z' }),
      namespace('h', { ns: 'h' }),
      ...(extra.namespaces ?? []),
    ],
    pods: [...pods, ...(extra.pods ?? [])],
    nodes: [
      node('n1', { ip: '192.168.0.1', labels: { role: 'worker' } }),
      node('n2', { ip: '192.168.0.2', labels: { role: 'control' } }),
      ...(extra.nodes ?? []),
    ],
  });
}

/**
 * Two clusters: east (region=us) pods 10.1.<ns>.<pod>, west (region=eu)
 * pods 10.2.<ns>.<pod>, namespaces x and y, pods a and b.
 */
function meshWorld(extra: WorldParts = {}): World {
  const pods = [];
  const nss = [];
  for (const [c, octet] of [
    ['east', 1],
    ['west', 2],
  ] as const) {
    for (const [ns, n] of [
      ['x', 1],
      ['y', 2],
    ] as const) {
      nss.push(namespace(`${c}/${ns}`, { ns }));
      for (const [p, i] of [
        ['a', 1],
        ['b', 2],
      ] as const) {
        pods.push(pod(`${c}/${ns}/${p}`, { labels: { pod: p }, ip: `10.${octet}.${n}.${i}` }));
      }
    }
  }
  return buildWorld({
    ...extra,
    clusters: [cluster('east', { region: 'us' }), cluster('west', { region: 'eu' })],
    namespaces: nss,
    pods: [...pods, ...(extra.pods ?? [])],
  });
}

/** `x/a` → `default/x/a`; ids with a cluster, `node:` or `ip:` are kept. */
function id(s: string): string {
  if (s.startsWith('node:') || s.startsWith('ip:')) return s;
  return s.split('/').length === 2 ? `default/${s}` : s;
}

/** A decision as one short line, e.g. `Deny ClusterNetworkPolicy/deny ingress[0]`. */
function decider(d: Decision): string {
  if (d.kind === 'rule') {
    const ns = d.rule.namespace === null ? '' : `${d.rule.namespace}/`;
    return `${d.action} ${d.rule.kind}/${ns}${d.rule.name} ${d.rule.direction.toLowerCase()}[${d.rule.ruleIndex}]`;
  }
  const iso = d.isolatedBy.map((n) => `${n.namespace}/${n.name}`).join(',');
  return iso === '' ? `default ${d.verdict}` : `default ${d.verdict} isolatedBy ${iso}`;
}

function staged(d: DirectionVerdict): string | null {
  return d.staged === null ? null : decider(d.staged.decidedBy);
}

/** Expected result of one probe; absent fields are not checked. */
interface Expect {
  v: Verdict;
  eg?: string;
  in?: string;
  /** Staged deciders; null = no staged verdict. */
  stEg?: string | null;
  stIn?: string | null;
}

type ProbeRow = [from: string, to: string, port: string, expect: Verdict | Expect];

interface Case {
  name: string;
  cite: string;
  world: World;
  probes: ProbeRow[];
}

const DENY_ALL_INGRESS_Y = { action: 'Deny' as const, peers: [cpNamespaces(sel({ ns: 'y' }))] };

// ------------------------------------------------------------------ cases

const cases: Case[] = [
  // ============================ NetworkPolicy (networking.k8s.io/v1)
  {
    name: 'no policy: every connection is allowed',
    cite: 'k8s docs Network Policies, "The two sorts of pod isolation": by default a pod is non-isolated for egress and ingress',
    world: e2eWorld(),
    probes: [
      [
        'x/a',
        'y/b',
        'TCP/80',
        { v: 'Allow', eg: 'default Allow', in: 'default Allow', stEg: null, stIn: null },
      ],
      ['ip:8.8.8.8', 'x/a', 'UDP/53', 'Allow'],
    ],
  },
  {
    name: 'NP with no ingress rules isolates for ingress and denies all ingress',
    cite: "e2e netpol: should support a 'default-deny-ingress' policy",
    world: e2eWorld({ networkPolicies: [np('x/deny', { ingress: [] })] }),
    probes: [
      [
        'y/a',
        'x/b',
        'TCP/80',
        { v: 'Deny', eg: 'default Allow', in: 'default Deny isolatedBy x/deny' },
      ],
      ['x/a', 'x/b', 'TCP/80', 'Deny'],
      ['ip:8.8.8.8', 'x/b', 'TCP/80', 'Deny'],
      // defaulted policyTypes [Ingress]: egress stays open
      ['x/b', 'y/a', 'TCP/80', { v: 'Allow', eg: 'default Allow' }],
    ],
  },
  {
    name: "traffic with the pod's own node is always allowed by the NetworkPolicy tier",
    cite: 'k8s docs Network Policies: "traffic to and from the node where a Pod is running is always allowed, regardless of the IP address of the Pod or the node"',
    world: e2eWorld({
      networkPolicies: [
        np('x/deny', { policyTypes: ['Ingress', 'Egress'], ingress: [], egress: [] }),
      ],
    }),
    probes: [
      ['node:default/n2', 'x/b', 'TCP/80', { v: 'Allow', in: 'default Allow isolatedBy x/deny' }],
      ['node:default/n1', 'x/b', 'TCP/80', { v: 'Deny', in: 'default Deny isolatedBy x/deny' }],
      ['x/b', 'node:default/n2', 'TCP/80', { v: 'Allow', eg: 'default Allow isolatedBy x/deny' }],
      ['x/b', 'node:default/n1', 'TCP/80', { v: 'Deny', eg: 'default Deny isolatedBy x/deny' }],
      // a hostNetwork pod sends from its node's address
      ['h/hn', 'x/a', 'TCP/80', { v: 'Allow', in: 'default Allow isolatedBy x/deny' }],
      ['h/hn', 'x/b', 'TCP/80', 'Deny'],
    ],
  },
  {
    name: 'policyTypes [Egress] isolates egress only',
    cite: "e2e netpol: should support a 'default-deny-all' policy; API NetworkPolicySpec.policyTypes",
    world: e2eWorld({
      networkPolicies: [np('x/deny-egress', { policyTypes: ['Egress'], egress: [] })],
    }),
    probes: [
      [
        'x/a',
        'y/b',
        'TCP/80',
        { v: 'Deny', eg: 'default Deny isolatedBy x/deny-egress', in: 'default Allow' },
      ],
      ['y/b', 'x/a', 'TCP/80', { v: 'Allow', in: 'default Allow' }],
    ],
  },
  {
    name: 'egress rules of a policy whose policyTypes lack Egress are ignored',
    cite: 'API NetworkPolicySpec.policyTypes: the policy applies to the listed traffic types only',
    world: e2eWorld({
      networkPolicies: [
        np('x/ingress-only', { policyTypes: ['Ingress'], ingress: [{}], egress: [] }),
      ],
    }),
    probes: [['x/a', 'y/b', 'TCP/80', { v: 'Allow', eg: 'default Allow' }]],
  },
  {
    name: "podSelector-only peer selects pods in the policy's own namespace",
    cite: 'e2e netpol: should enforce policy to allow traffic from pods within server namespace based on PodSelector; API NetworkPolicyPeer.podSelector',
    world: e2eWorld({
      networkPolicies: [
        np('x/allow-a', {
          podSelector: sel({ pod: 'b' }),
          ingress: [{ peers: [npPods(sel({ pod: 'a' }))] }],
        }),
      ],
    }),
    probes: [
      ['x/a', 'x/b', 'TCP/80', { v: 'Allow', in: 'Allow NetworkPolicy/x/allow-a ingress[0]' }],
      ['y/a', 'x/b', 'TCP/80', 'Deny'],
      ['x/c', 'x/b', 'TCP/80', 'Deny'],
      ['x/a', 'x/c', 'TCP/80', { v: 'Allow', in: 'default Allow' }],
    ],
  },
  {
    name: 'namespaceSelector-only peer selects all pods of matching namespaces',
    cite: 'e2e netpol: should enforce policy to allow traffic only from a different namespace, based on NamespaceSelector',
    world: e2eWorld({
      networkPolicies: [
        np('x/allow-ns-y', { ingress: [{ peers: [npPods(ALL, sel({ ns: 'y' }))] }] }),
      ],
    }),
    probes: [
      ['y/c', 'x/a', 'TCP/80', 'Allow'],
      ['z/a', 'x/a', 'TCP/80', 'Deny'],
      ['x/b', 'x/a', 'TCP/80', 'Deny'],
    ],
  },
  {
    name: 'podSelector and namespaceSelector in one peer are ANDed',
    cite: 'e2e netpol: should enforce policy based on PodSelector and NamespaceSelector',
    world: e2eWorld({
      networkPolicies: [
        np('x/and', { ingress: [{ peers: [npPods(sel({ pod: 'a' }), sel({ ns: 'y' }))] }] }),
      ],
    }),
    probes: [
      ['y/a', 'x/b', 'TCP/80', 'Allow'],
      ['y/b', 'x/b', 'TCP/80', 'Deny'],
      ['x/a', 'x/b', 'TCP/80', 'Deny'],
    ],
  },
  {
    name: 'peers in separate entries are ORed',
    cite: 'e2e netpol: should enforce policy based on PodSelector or NamespaceSelector',
    world: e2eWorld({
      networkPolicies: [
        np('x/or', {
          ingress: [{ peers: [npPods(sel({ pod: 'a' })), npPods(ALL, sel({ ns: 'y' }))] }],
        }),
      ],
    }),
    probes: [
      ['x/a', 'x/b', 'TCP/80', 'Allow'],
      ['y/b', 'x/b', 'TCP/80', 'Allow'],
      ['z/b', 'x/b', 'TCP/80', 'Deny'],
      ['x/c', 'x/b', 'TCP/80', 'Deny'],
    ],
  },
  {
    name: 'ports and peers of one rule are ANDed',
    cite: 'API NetworkPolicyIngressRule: traffic is allowed if it matches both ports and from',
    world: e2eWorld({
      networkPolicies: [
        np('x/y-80', { ingress: [{ peers: [npPods(ALL, sel({ ns: 'y' }))], ports: [tcp(80)] }] }),
      ],
    }),
    probes: [
      ['y/a', 'x/a', 'TCP/80', 'Allow'],
      ['y/a', 'x/a', 'TCP/81', 'Deny'],
      ['x/b', 'x/a', 'TCP/80', 'Deny'],
    ],
  },
  {
    name: 'UDP port rule does not allow TCP or SCTP',
    cite: 'e2e netpol: should not allow access by TCP when a policy specifies only UDP',
    world: e2eWorld({ networkPolicies: [np('x/udp-80', { ingress: [{ ports: [udp(80)] }] })] }),
    probes: [
      ['y/a', 'x/a', 'UDP/80', 'Allow'],
      ['y/a', 'x/a', 'TCP/80', 'Deny'],
      ['y/a', 'x/a', 'SCTP/80', 'Deny'],
    ],
  },
  {
    name: 'SCTP port rule does not allow TCP or UDP',
    cite: 'e2e netpol: should not allow access by TCP when a policy specifies only SCTP',
    world: e2eWorld({ networkPolicies: [np('x/sctp-80', { ingress: [{ ports: [sctp(80)] }] })] }),
    probes: [
      ['y/a', 'x/a', 'SCTP/80', 'Allow'],
      ['y/a', 'x/a', 'TCP/80', 'Deny'],
      ['y/a', 'x/a', 'UDP/80', 'Deny'],
    ],
  },
  {
    name: '`ports: [{}]` (decoded: every TCP port) allows any TCP port and nothing else',
    cite: 'API NetworkPolicyPort: protocol defaults to TCP; "If this field is not provided, this matches all port names and numbers"',
    world: e2eWorld({
      networkPolicies: [np('x/any-tcp', { ingress: [{ ports: [allPorts('TCP')] }] })],
    }),
    probes: [
      ['y/a', 'x/a', 'TCP/12345', 'Allow'],
      ['y/a', 'x/a', 'UDP/80', 'Deny'],
    ],
  },
  {
    name: 'port with endPort allows the inclusive range',
    cite: 'API NetworkPolicyPort.endPort: "the range of ports from port to endPort if set, inclusive" (KEP-2079)',
    world: e2eWorld({ networkPolicies: [np('x/range', { ingress: [{ ports: [tcp(80, 81)] }] })] }),
    probes: [
      ['y/a', 'x/a', 'TCP/79', 'Deny'],
      ['y/a', 'x/a', 'TCP/80', 'Allow'],
      ['y/a', 'x/a', 'TCP/81', 'Allow'],
      ['y/a', 'x/a', 'TCP/82', 'Deny'],
    ],
  },
  {
    name: 'ingress named port resolves on the destination pod, name and protocol',
    cite: 'e2e netpol: should allow ingress access on one named port',
    world: e2eWorld({
      networkPolicies: [np('x/named', { ingress: [{ ports: [named('serve-80-tcp', 'TCP')] }] })],
    }),
    probes: [
      ['y/a', 'x/a', 'TCP/80', 'Allow'],
      ['y/a', 'x/a', 'TCP/81', 'Deny'],
      ['y/a', 'x/a', 'UDP/80', 'Deny'],
    ],
  },
  {
    name: 'a named port with another protocol than the container port matches nothing',
    cite: 'API NetworkPolicyPort: named port + protocol; e2e netpol: should not allow access by TCP when a policy specifies only UDP',
    world: e2eWorld({
      networkPolicies: [
        np('x/named-udp', { ingress: [{ ports: [named('serve-80-udp', 'TCP')] }] }),
      ],
    }),
    probes: [
      ['y/a', 'x/a', 'TCP/80', 'Deny'],
      ['y/a', 'x/a', 'UDP/80', 'Deny'],
    ],
  },
  {
    name: 'egress named port resolves on the destination pod; never matches nodes or external IPs',
    cite: 'e2e netpol: should allow egress access on one named port',
    world: e2eWorld({
      pods: [
        pod('w/odd', { ip: '10.0.9.1', node: 'n2', ports: [{ name: 'serve-81-tcp', port: 8081 }] }),
      ],
      networkPolicies: [
        np('x/egress-named', {
          podSelector: sel({ pod: 'a' }),
          policyTypes: ['Egress'],
          egress: [{ ports: [named('serve-81-tcp')] }],
        }),
      ],
    }),
    probes: [
      ['x/a', 'y/b', 'TCP/81', 'Allow'],
      ['x/a', 'y/b', 'TCP/80', 'Deny'],
      ['x/a', 'w/odd', 'TCP/8081', 'Allow'],
      ['x/a', 'w/odd', 'TCP/81', 'Deny'],
      ['x/a', 'node:default/n2', 'TCP/81', 'Deny'],
      ['x/a', 'ip:8.8.8.8', 'TCP/81', 'Deny'],
    ],
  },
  {
    name: 'ipBlock with except; it matches pod addresses too',
    cite: 'e2e netpol: should enforce except clause while egress access to server in CIDR block; API IPBlock',
    world: e2eWorld({
      networkPolicies: [
        np('x/cidr', {
          podSelector: sel({ pod: 'a' }),
          policyTypes: ['Egress'],
          egress: [{ peers: [ipBlock('10.0.0.0/16', ['10.0.2.0/24'])] }],
        }),
      ],
    }),
    probes: [
      ['x/a', 'y/a', 'TCP/80', { v: 'Deny', eg: 'default Deny isolatedBy x/cidr' }],
      ['x/a', 'z/a', 'TCP/80', { v: 'Allow', eg: 'Allow NetworkPolicy/x/cidr egress[0]' }],
      ['x/a', 'ip:10.0.9.9', 'TCP/80', 'Allow'],
      ['x/a', 'ip:10.0.2.200', 'TCP/80', 'Deny'],
      ['x/a', 'ip:8.8.8.8', 'TCP/80', 'Deny'],
      ['x/a', 'node:default/n2', 'TCP/80', 'Deny'],
    ],
  },
  {
    name: 'ipBlock peers match node addresses',
    cite: 'API IPBlock: "a particular CIDR"; k8s docs "NetworkPolicy and hostNetwork pods": node traffic is matched by IP',
    world: e2eWorld({
      networkPolicies: [
        np('x/from-n1', {
          podSelector: sel({ pod: 'b' }),
          ingress: [{ peers: [ipBlock('192.168.0.1/32')] }],
        }),
      ],
    }),
    probes: [
      [
        'node:default/n1',
        'x/b',
        'TCP/80',
        { v: 'Allow', in: 'Allow NetworkPolicy/x/from-n1 ingress[0]' },
      ],
      ['h/hn', 'x/b', 'TCP/80', { v: 'Allow', in: 'Allow NetworkPolicy/x/from-n1 ingress[0]' }],
      ['y/b', 'x/b', 'TCP/80', 'Deny'],
    ],
  },
  {
    name: 'several NetworkPolicies selecting a pod: the union of their rules decides',
    cite: 'k8s docs Network Policies: "Network policies do not conflict; they are additive"; e2e netpol: should enforce multiple ingress policies with ingress allow-all policy taking precedence',
    world: e2eWorld({
      networkPolicies: [
        np('x/allow-80', { ingress: [{ ports: [tcp(80)] }] }),
        np('x/allow-from-y', { ingress: [{ peers: [npPods(ALL, sel({ ns: 'y' }))] }] }),
      ],
    }),
    probes: [
      ['z/a', 'x/a', 'TCP/80', { v: 'Allow', in: 'Allow NetworkPolicy/x/allow-80 ingress[0]' }],
      [
        'z/a',
        'x/a',
        'TCP/81',
        { v: 'Deny', in: 'default Deny isolatedBy x/allow-80,x/allow-from-y' },
      ],
      ['y/a', 'x/a', 'TCP/81', { v: 'Allow', in: 'Allow NetworkPolicy/x/allow-from-y ingress[0]' }],
      // both allow: the first policy in name order is reported
      ['y/a', 'x/a', 'TCP/80', { v: 'Allow', in: 'Allow NetworkPolicy/x/allow-80 ingress[0]' }],
    ],
  },
  {
    name: 'a connection needs egress allowed at the source and ingress at the destination',
    cite: 'e2e netpol: should work with Ingress, Egress specified together; DESIGN.md §2',
    world: e2eWorld({
      networkPolicies: [
        np('x/a-no-egress', {
          podSelector: sel({ pod: 'a' }),
          policyTypes: ['Egress'],
          egress: [],
        }),
        np('y/no-ingress', { ingress: [] }),
      ],
    }),
    probes: [
      [
        'x/a',
        'y/a',
        'TCP/80',
        {
          v: 'Deny',
          eg: 'default Deny isolatedBy x/a-no-egress',
          in: 'default Deny isolatedBy y/no-ingress',
        },
      ],
      [
        'x/b',
        'y/a',
        'TCP/80',
        { v: 'Deny', eg: 'default Allow', in: 'default Deny isolatedBy y/no-ingress' },
      ],
      [
        'x/a',
        'z/a',
        'TCP/80',
        { v: 'Deny', eg: 'default Deny isolatedBy x/a-no-egress', in: 'default Allow' },
      ],
      ['x/b', 'z/a', 'TCP/80', 'Allow'],
    ],
  },
  {
    name: 'hostNetwork pods are never NetworkPolicy subjects, and pod peers never match them',
    cite: 'k8s docs "NetworkPolicy and hostNetwork pods": plugins ignore hostNetwork pods when matching podSelector and namespaceSelector; their traffic is treated as node-IP traffic (the most common implementation)',
    world: e2eWorld({
      networkPolicies: [
        np('h/deny-all', { policyTypes: ['Ingress', 'Egress'], ingress: [], egress: [] }),
        np('y/allow-a-pods', { ingress: [{ peers: [npPods(sel({ pod: 'a' }), ALL)] }] }),
      ],
    }),
    probes: [
      ['y/a', 'h/hn', 'TCP/80', { v: 'Allow', in: 'default Allow' }],
      [
        'h/hn',
        'y/b',
        'TCP/80',
        { v: 'Deny', eg: 'default Allow', in: 'default Deny isolatedBy y/allow-a-pods' },
      ],
      // y/a runs on n1, the node h/hn shares
      ['h/hn', 'y/a', 'TCP/80', { v: 'Allow', in: 'default Allow isolatedBy y/allow-a-pods' }],
      ['x/a', 'y/b', 'TCP/80', { v: 'Allow', in: 'Allow NetworkPolicy/y/allow-a-pods ingress[0]' }],
    ],
  },
  {
    name: 'NetworkPolicy pod and namespace peers match pods of their own cluster only; ipBlock matches any address',
    cite: 'DESIGN.md §2: "NetworkPolicy pod/namespace peers only match pods of their own cluster"',
    world: meshWorld({
      networkPolicies: [
        np('east/x/allow', {
          ingress: [{ peers: [npPods(sel({ pod: 'a' }), ALL), ipBlock('10.2.2.0/24')] }],
        }),
      ],
    }),
    probes: [
      ['east/y/a', 'east/x/b', 'TCP/80', 'Allow'],
      ['west/x/a', 'east/x/b', 'TCP/80', 'Deny'],
      ['west/y/b', 'east/x/b', 'TCP/80', 'Allow'],
      ['west/x/b', 'west/x/a', 'TCP/80', 'Allow'],
    ],
  },

  {
    name: 'policyTypes defaulting: a policy with egress rules and no policyTypes isolates both directions',
    cite: 'API NetworkPolicySpec.policyTypes: "policies that contain an egress section are assumed to affect egress"; pkg/apis/networking/v1/defaults.go',
    world: e2eWorld({
      networkPolicies: [
        np('x/egress-to-y', { egress: [{ peers: [npPods(ALL, sel({ ns: 'y' }))] }] }),
      ],
    }),
    probes: [
      ['x/a', 'y/a', 'TCP/80', { v: 'Allow', eg: 'Allow NetworkPolicy/x/egress-to-y egress[0]' }],
      ['x/a', 'z/a', 'TCP/80', { v: 'Deny', eg: 'default Deny isolatedBy x/egress-to-y' }],
      ['y/a', 'x/a', 'TCP/80', { v: 'Deny', in: 'default Deny isolatedBy x/egress-to-y' }],
    ],
  },
  {
    name: 'namespaceSelector can use the kubernetes.io/metadata.name label every namespace has',
    cite: 'k8s docs Network Policies, "Targeting a Namespace by its name": the control plane sets kubernetes.io/metadata.name on all namespaces',
    world: e2eWorld({
      networkPolicies: [
        np('x/from-z', {
          ingress: [{ peers: [npPods(ALL, sel({ 'kubernetes.io/metadata.name': 'z' }))] }],
        }),
      ],
    }),
    probes: [
      ['z/b', 'x/a', 'TCP/80', 'Allow'],
      ['y/b', 'x/a', 'TCP/80', 'Deny'],
    ],
  },

  // ============================ Admin / Baseline tiers (ClusterNetworkPolicy v1alpha2)
  {
    name: 'Admin Deny overrides a NetworkPolicy allow',
    cite: 'network-policy-api conformance: CNPAdminTierIntegration; API Tier: "If Admin tier has made a final decision (Accept or Deny) on a connection, then no further evaluation is done"',
    world: e2eWorld({
      networkPolicies: [np('x/allow-all', { ingress: [{}] })],
      clusterPolicies: [
        cp('deny-from-y', {
          priority: 10,
          subject: { namespaces: sel({ ns: 'x' }) },
          ingress: [DENY_ALL_INGRESS_Y],
        }),
      ],
    }),
    probes: [
      [
        'y/a',
        'x/a',
        'TCP/80',
        { v: 'Deny', in: 'Deny ClusterNetworkPolicy/deny-from-y ingress[0]' },
      ],
      ['z/a', 'x/a', 'TCP/80', { v: 'Allow', in: 'Allow NetworkPolicy/x/allow-all ingress[0]' }],
    ],
  },
  {
    name: 'Admin Accept overrides NetworkPolicy isolation',
    cite: 'network-policy-api conformance: CNPAdminTierIntegration; API RuleAction Accept: "No further ClusterNetworkPolicy or NetworkPolicy rules will be processed"',
    world: e2eWorld({
      networkPolicies: [np('x/deny', { ingress: [] })],
      clusterPolicies: [
        cp('accept-y', {
          priority: 10,
          subject: { namespaces: sel({ ns: 'x' }) },
          ingress: [{ action: 'Accept', peers: [cpNamespaces(sel({ ns: 'y' }))] }],
        }),
      ],
    }),
    probes: [
      [
        'y/a',
        'x/a',
        'TCP/80',
        { v: 'Allow', in: 'Accept ClusterNetworkPolicy/accept-y ingress[0]' },
      ],
      ['z/a', 'x/a', 'TCP/80', { v: 'Deny', in: 'default Deny isolatedBy x/deny' }],
    ],
  },
  {
    name: 'Admin Pass hands the decision to the NetworkPolicy tier',
    cite: 'network-policy-api conformance: CNPAdminTierIntegration; API RuleAction Pass: "if an Admin tier CNP uses Pass action, NetworkPolicy evaluation will happen next"',
    world: e2eWorld({
      networkPolicies: [np('x/deny', { ingress: [] })],
      clusterPolicies: [
        cp('pass-y', {
          priority: 1,
          subject: { namespaces: sel({ ns: 'x' }) },
          ingress: [{ action: 'Pass', peers: [cpNamespaces(sel({ ns: 'y' }))] }],
        }),
        cp('accept-all', {
          priority: 2,
          ingress: [{ action: 'Accept', peers: [cpNamespaces(ALL)] }],
        }),
        cp('baseline-accept', {
          tier: 'Baseline',
          ingress: [{ action: 'Accept', peers: [cpNamespaces(ALL)] }],
        }),
      ],
    }),
    probes: [
      ['y/a', 'x/a', 'TCP/80', { v: 'Deny', in: 'default Deny isolatedBy x/deny' }],
      [
        'z/a',
        'x/a',
        'TCP/80',
        { v: 'Allow', in: 'Accept ClusterNetworkPolicy/accept-all ingress[0]' },
      ],
    ],
  },
  {
    name: 'Admin Pass with no NetworkPolicy: the Baseline tier decides',
    cite: 'network-policy-api conformance: CNPAdminTierIntegration; API Tier: "Further evaluation only happens for Pods not selected by a v1.NetworkPolicy"',
    world: e2eWorld({
      clusterPolicies: [
        cp('pass-y', {
          priority: 1,
          ingress: [{ action: 'Pass', peers: [cpNamespaces(sel({ ns: 'y' }))] }],
        }),
        cp('deny-y', { priority: 2, ingress: [DENY_ALL_INGRESS_Y] }),
        cp('baseline-deny-y', { tier: 'Baseline', ingress: [DENY_ALL_INGRESS_Y] }),
      ],
    }),
    probes: [
      [
        'y/a',
        'x/a',
        'TCP/80',
        { v: 'Deny', in: 'Deny ClusterNetworkPolicy/baseline-deny-y ingress[0]' },
      ],
      ['z/a', 'x/a', 'TCP/80', { v: 'Allow', in: 'default Allow' }],
    ],
  },
  {
    name: 'Pass skips every later Admin rule; nothing below decides: default allow',
    cite: 'API RuleAction Pass: "Skips all further ClusterNetworkPolicy rules in the current tier"',
    world: e2eWorld({
      clusterPolicies: [
        cp('pass-y', {
          priority: 1,
          ingress: [{ action: 'Pass', peers: [cpNamespaces(sel({ ns: 'y' }))] }],
        }),
        cp('deny-all', { priority: 2, ingress: [{ action: 'Deny', peers: [cpNamespaces(ALL)] }] }),
      ],
    }),
    probes: [
      ['y/a', 'x/a', 'TCP/80', { v: 'Allow', in: 'default Allow' }],
      ['z/a', 'x/a', 'TCP/80', { v: 'Deny', in: 'Deny ClusterNetworkPolicy/deny-all ingress[0]' }],
    ],
  },
  {
    name: 'lower priority number is evaluated first (Deny at 3 beats Accept at 5)',
    cite: 'network-policy-api conformance: CNPAdminTierPriorityField; API Priority: "Policies with lower priority values have higher precedence"',
    world: e2eWorld({
      clusterPolicies: [
        cp('accept-y', {
          priority: 5,
          ingress: [{ action: 'Accept', peers: [cpNamespaces(sel({ ns: 'y' }))] }],
        }),
        cp('deny-y', { priority: 3, ingress: [DENY_ALL_INGRESS_Y] }),
      ],
    }),
    probes: [
      ['y/a', 'x/a', 'TCP/80', { v: 'Deny', in: 'Deny ClusterNetworkPolicy/deny-y ingress[0]' }],
    ],
  },
  {
    name: 'lower priority number is evaluated first (Accept at 3 beats Deny at 5)',
    cite: 'network-policy-api conformance: CNPAdminTierPriorityField',
    world: e2eWorld({
      clusterPolicies: [
        cp('accept-y', {
          priority: 3,
          ingress: [{ action: 'Accept', peers: [cpNamespaces(sel({ ns: 'y' }))] }],
        }),
        cp('deny-y', { priority: 5, ingress: [DENY_ALL_INGRESS_Y] }),
      ],
    }),
    probes: [
      [
        'y/a',
        'x/a',
        'TCP/80',
        { v: 'Allow', in: 'Accept ClusterNetworkPolicy/accept-y ingress[0]' },
      ],
    ],
  },
  {
    name: 'rules of one policy are evaluated in written order, first match wins',
    cite: 'API ClusterNetworkPolicySpec.Ingress: "a rule that appears at the top of the ingress rules would take the highest precedence"; conformance CNPAdminTierGress',
    world: e2eWorld({
      clusterPolicies: [
        cp('ordered', {
          ingress: [
            {
              name: 'accept-y-a',
              action: 'Accept',
              peers: [cpPods(sel({ ns: 'y' }), sel({ pod: 'a' }))],
            },
            { name: 'deny-y', ...DENY_ALL_INGRESS_Y },
          ],
        }),
      ],
    }),
    probes: [
      [
        'y/a',
        'x/a',
        'TCP/80',
        { v: 'Allow', in: 'Accept ClusterNetworkPolicy/ordered ingress[0]' },
      ],
      ['y/b', 'x/a', 'TCP/80', { v: 'Deny', in: 'Deny ClusterNetworkPolicy/ordered ingress[1]' }],
    ],
  },
  {
    name: 'priority tie: MeshNetworkPolicy first, then kind, then name',
    cite: 'DESIGN.md §2 "on a tie MeshNetworkPolicy comes first, then by name"; API Priority: ties are implementation-defined (docs/semantics.md)',
    world: e2eWorld({
      clusterPolicies: [
        cp('a-accept', {
          priority: 5,
          ingress: [{ action: 'Accept', peers: [cpNamespaces(sel({ ns: 'y' }))] }],
        }),
        mnp('z-mesh-deny', { priority: 5, ingress: [DENY_ALL_INGRESS_Y] }),
        cp('b-anp-accept', {
          kind: 'AdminNetworkPolicy',
          priority: 7,
          ingress: [{ action: 'Accept', peers: [cpNamespaces(sel({ ns: 'z' }))] }],
        }),
        cp('a-cnp-deny', {
          priority: 7,
          ingress: [{ action: 'Deny', peers: [cpNamespaces(sel({ ns: 'z' }))] }],
        }),
        cp('b-deny', {
          priority: 9,
          ingress: [{ action: 'Deny', peers: [cpNamespaces(sel({ ns: 'x' }))] }],
        }),
        cp('a-accept-x', {
          priority: 9,
          ingress: [{ action: 'Accept', peers: [cpNamespaces(sel({ ns: 'x' }))] }],
        }),
      ],
    }),
    probes: [
      ['y/a', 'x/a', 'TCP/80', { v: 'Deny', in: 'Deny MeshNetworkPolicy/z-mesh-deny ingress[0]' }],
      [
        'z/a',
        'x/a',
        'TCP/80',
        { v: 'Allow', in: 'Accept AdminNetworkPolicy/b-anp-accept ingress[0]' },
      ],
      [
        'x/b',
        'x/a',
        'TCP/80',
        { v: 'Allow', in: 'Accept ClusterNetworkPolicy/a-accept-x ingress[0]' },
      ],
    ],
  },
  {
    name: 'Baseline applies only to pods no NetworkPolicy isolates',
    cite: 'network-policy-api conformance: CNPBaselineTierGress; API Tier: "Baseline tier is a cluster-wide policy that can be overridden by the v1.NetworkPolicy"',
    world: e2eWorld({
      networkPolicies: [np('x/allow-y', { ingress: [{ peers: [npPods(ALL, sel({ ns: 'y' }))] }] })],
      clusterPolicies: [
        cp('baseline-deny', {
          tier: 'Baseline',
          ingress: [{ action: 'Deny', peers: [cpNamespaces(ALL)] }],
        }),
      ],
    }),
    probes: [
      ['y/a', 'x/a', 'TCP/80', { v: 'Allow', in: 'Allow NetworkPolicy/x/allow-y ingress[0]' }],
      ['z/a', 'x/a', 'TCP/80', { v: 'Deny', in: 'default Deny isolatedBy x/allow-y' }],
      [
        'y/a',
        'z/a',
        'TCP/80',
        { v: 'Deny', in: 'Deny ClusterNetworkPolicy/baseline-deny ingress[0]' },
      ],
    ],
  },
  {
    name: 'BaselineAdminNetworkPolicy (v1alpha1) is read into the Baseline tier',
    cite: 'DESIGN.md §2: v1alpha1 ANP/BANP are CNPs in the Admin/Baseline tier; conformance CNPBaselineTierIngressTCP',
    world: e2eWorld({
      clusterPolicies: [
        cp('default', {
          kind: 'BaselineAdminNetworkPolicy',
          ingress: [{ action: 'Deny', peers: [cpNamespaces(ALL)], ports: [tcp(80)] }],
        }),
      ],
    }),
    probes: [
      [
        'y/a',
        'x/a',
        'TCP/80',
        { v: 'Deny', in: 'Deny BaselineAdminNetworkPolicy/default ingress[0]' },
      ],
      ['y/a', 'x/a', 'TCP/81', 'Allow'],
    ],
  },
  {
    name: 'Pass in the Baseline tier skips the rest of the Baseline tier (default allow)',
    cite: 'network-policy-api v0.2.0 RuleAction Pass: "Skips all further ClusterNetworkPolicy rules in the current tier ... passes evaluation to the next tier"; NPEP-285: "allow using Pass for BANP, meaning that the rest of BANPs will be skipped"',
    world: e2eWorld({
      clusterPolicies: [
        cp('baseline-pass-y', {
          tier: 'Baseline',
          priority: 1,
          ingress: [{ action: 'Pass', peers: [cpNamespaces(sel({ ns: 'y' }))] }],
        }),
        cp('baseline-deny', {
          tier: 'Baseline',
          priority: 2,
          ingress: [{ action: 'Deny', peers: [cpNamespaces(ALL)] }],
        }),
      ],
    }),
    probes: [
      ['y/a', 'x/a', 'TCP/80', { v: 'Allow', in: 'default Allow' }],
      [
        'z/a',
        'x/a',
        'TCP/80',
        { v: 'Deny', in: 'Deny ClusterNetworkPolicy/baseline-deny ingress[0]' },
      ],
    ],
  },
  {
    name: 'a ClusterNetworkPolicy selects and matches pods of its own cluster only',
    cite: 'DESIGN.md §2 (a CNP lives in one cluster; the destination cluster decides ingress)',
    world: meshWorld({
      clusterPolicies: [
        cp('deny-all', {
          cluster: 'east',
          ingress: [{ action: 'Deny', peers: [cpNamespaces(ALL)] }],
        }),
      ],
    }),
    probes: [
      ['east/y/a', 'east/x/a', 'TCP/80', 'Deny'],
      ['west/y/a', 'west/x/a', 'TCP/80', 'Allow'],
      ['west/x/a', 'east/x/a', 'TCP/80', { v: 'Allow', in: 'default Allow' }],
    ],
  },
  {
    name: 'nodes peers match node addresses, hence hostNetwork pods too',
    cite: 'network-policy-api conformance: CNPAdminTierEgressNodePeers; API EgressPeer.Nodes: "selects the nodeIPs ... present in the node.Status.Addresses field"',
    world: e2eWorld({
      clusterPolicies: [
        cp('deny-workers', {
          subject: { namespaces: sel({ ns: 'x' }) },
          egress: [{ action: 'Deny', peers: [cpNodes(sel({ role: 'worker' }))] }],
        }),
      ],
    }),
    probes: [
      [
        'x/b',
        'node:default/n1',
        'TCP/80',
        { v: 'Deny', eg: 'Deny ClusterNetworkPolicy/deny-workers egress[0]' },
      ],
      ['x/b', 'node:default/n2', 'TCP/80', 'Allow'],
      ['x/b', 'h/hn', 'TCP/80', 'Deny'],
      ['x/b', 'y/a', 'TCP/80', 'Allow'],
    ],
  },
  {
    name: 'networks peers match any address in the CIDRs, pod addresses included',
    cite: 'network-policy-api conformance: CNPAdminTierEgressInlineCIDRPeers; API EgressPeer.Networks: "cluster-internal traffic will be checked against the rule as well"',
    world: e2eWorld({
      clusterPolicies: [
        cp('deny-cidr', {
          egress: [{ action: 'Deny', peers: [cpNetworks('10.0.2.0/24', 'fd00::/64')] }],
        }),
      ],
    }),
    probes: [
      ['x/a', 'y/a', 'TCP/80', { v: 'Deny', eg: 'Deny ClusterNetworkPolicy/deny-cidr egress[0]' }],
      ['x/a', 'z/a', 'TCP/80', 'Allow'],
      ['x/a', 'ip:10.0.2.200', 'TCP/80', 'Deny'],
      ['x/a', 'ip:8.8.8.8', 'TCP/80', 'Allow'],
    ],
  },
  {
    name: 'domainNames peers never match an address offline',
    cite: 'API EgressPeer.DomainNames (names are resolved by DNS at run time); docs/semantics.md "domainNames"',
    world: e2eWorld({
      clusterPolicies: [
        cp('accept-domain', {
          priority: 1,
          egress: [{ action: 'Accept', peers: [cpDomains('example.com')] }],
        }),
        cp('deny-world', {
          priority: 2,
          egress: [{ action: 'Deny', peers: [cpNetworks('0.0.0.0/0')] }],
        }),
      ],
    }),
    probes: [
      [
        'x/a',
        'ip:93.184.216.34',
        'TCP/443',
        { v: 'Deny', eg: 'Deny ClusterNetworkPolicy/deny-world egress[0]' },
      ],
    ],
  },
  {
    name: 'destinationNamedPort matches the named container port of the destination, whatever its protocol',
    cite: 'network-policy-api conformance: CNPAdminTierIngressNamedPort, CNPAdminTierEgressNamedPort; API Protocol.DestinationNamedPort',
    world: e2eWorld({
      clusterPolicies: [
        cp('deny-named-in', {
          subject: { namespaces: sel({ ns: 'x' }) },
          ingress: [{ ...DENY_ALL_INGRESS_Y, ports: [named('serve-80-udp', 'any')] }],
        }),
        cp('deny-named-out', {
          subject: { namespaces: sel({ ns: 'z' }) },
          egress: [
            {
              action: 'Deny',
              peers: [cpNamespaces(sel({ ns: 'y' }))],
              ports: [named('serve-81-tcp', 'any')],
            },
          ],
        }),
      ],
    }),
    probes: [
      ['y/a', 'x/a', 'UDP/80', 'Deny'],
      ['y/a', 'x/a', 'TCP/80', 'Allow'],
      [
        'z/a',
        'y/a',
        'TCP/81',
        { v: 'Deny', eg: 'Deny ClusterNetworkPolicy/deny-named-out egress[0]' },
      ],
      ['z/a', 'y/a', 'TCP/80', 'Allow'],
      ['z/a', 'y/a', 'UDP/81', 'Allow'],
    ],
  },
  {
    name: 'SCTP, UDP and TCP ports are distinct; port ranges are inclusive',
    cite: 'network-policy-api conformance: CNPAdminTierIngressSCTP, CNPAdminTierEgressUDP; API PortRange',
    world: e2eWorld({
      clusterPolicies: [
        cp('deny-sctp-81', {
          subject: { namespaces: sel({ ns: 'x' }) },
          ingress: [{ ...DENY_ALL_INGRESS_Y, ports: [sctp(81)] }],
        }),
        cp('deny-udp-range', {
          subject: { namespaces: sel({ ns: 'z' }) },
          egress: [{ action: 'Deny', peers: [cpNamespaces(ALL)], ports: [udp(80, 81)] }],
        }),
      ],
    }),
    probes: [
      ['y/a', 'x/a', 'SCTP/81', 'Deny'],
      ['y/a', 'x/a', 'TCP/81', 'Allow'],
      ['y/a', 'x/a', 'UDP/81', 'Allow'],
      ['z/a', 'y/a', 'UDP/80', 'Deny'],
      ['z/a', 'y/a', 'UDP/81', 'Deny'],
      ['z/a', 'y/a', 'UDP/82', 'Allow'],
      ['z/a', 'y/a', 'TCP/80', 'Allow'],
    ],
  },
  {
    name: 'hostNetwork pods are not ClusterNetworkPolicy subjects nor matched by namespaces/pods peers',
    cite: 'API ClusterNetworkPolicySubject: "host-networked pods are not included in subject selection"; IngressPeer.Namespaces: "host-networked pods are not included in this type of peer"',
    world: e2eWorld({
      clusterPolicies: [
        cp('deny-all', { ingress: [{ action: 'Deny', peers: [cpNamespaces(ALL)] }] }),
      ],
    }),
    probes: [
      ['y/a', 'h/hn', 'TCP/80', { v: 'Allow', in: 'default Allow' }],
      ['h/hn', 'y/a', 'TCP/80', { v: 'Allow', in: 'default Allow' }],
      ['x/a', 'y/a', 'TCP/80', 'Deny'],
    ],
  },

  {
    name: 'subject.pods selects by namespace AND pod selector',
    cite: 'API ClusterNetworkPolicySubject.Pods: "select pods via namespace AND pod selectors"; conformance CNPAdminTierIngressTCP',
    world: e2eWorld({
      clusterPolicies: [
        cp('deny-y-to-xa', {
          subject: { namespaces: sel({ ns: 'x' }), pods: sel({ pod: 'a' }) },
          ingress: [DENY_ALL_INGRESS_Y],
        }),
      ],
    }),
    probes: [
      ['y/b', 'x/a', 'TCP/80', 'Deny'],
      ['y/b', 'x/b', 'TCP/80', 'Allow'],
      ['y/b', 'z/a', 'TCP/80', 'Allow'],
    ],
  },
  {
    name: 'an Admin Deny applies to node traffic too (the own-node exemption is NetworkPolicy-only)',
    cite: 'docs/semantics.md §4.7; network-policy-api conformance: CNPAdminTierEgressNodePeers (deny-egress to nodes)',
    world: e2eWorld({
      networkPolicies: [
        np('x/deny', { policyTypes: ['Ingress', 'Egress'], ingress: [], egress: [] }),
      ],
      clusterPolicies: [cp('deny-nodes', { egress: [{ action: 'Deny', peers: [cpNodes(ALL)] }] })],
    }),
    probes: [
      [
        'x/a',
        'node:default/n1',
        'TCP/80',
        { v: 'Deny', eg: 'Deny ClusterNetworkPolicy/deny-nodes egress[0]' },
      ],
    ],
  },
  {
    name: 'IPv6: networks and nodes peers match IPv6 addresses',
    cite: 'API EgressPeer.Networks: "IPv4 or IPv6, for example 10.0.0.0/8 or fd00::/8"; nodes peers match node.Status.Addresses of either family',
    world: buildWorld({
      pods: [
        pod('v6/client', { ips: ['10.8.0.1', 'fd00::1'], node: 'v6n' }),
        pod('v6/server', { ip: 'fd00::2', labels: { app: 'server' } }),
      ],
      nodes: [node('v6n', { ips: ['fd01::1'], labels: { role: 'worker' } })],
      clusterPolicies: [
        cp('deny-v6-net', {
          priority: 1,
          egress: [{ action: 'Deny', peers: [cpNetworks('fd00::2/128')] }],
        }),
        cp('deny-v6-nodes', {
          priority: 2,
          egress: [{ action: 'Deny', peers: [cpNodes(sel({ role: 'worker' }))] }],
        }),
      ],
    }),
    probes: [
      [
        'v6/client',
        'v6/server',
        'TCP/80',
        { v: 'Deny', eg: 'Deny ClusterNetworkPolicy/deny-v6-net egress[0]' },
      ],
      [
        'v6/client',
        'node:default/v6n',
        'TCP/80',
        { v: 'Deny', eg: 'Deny ClusterNetworkPolicy/deny-v6-nodes egress[0]' },
      ],
      ['v6/client', 'ip:fd00::3', 'TCP/80', 'Allow'],
    ],
  },

  // ============================ MeshNetworkPolicy (palisade.dev/v1alpha1), across clusters
  {
    name: 'MeshNetworkPolicy without subject.clusters selects pods of every cluster; peers without clusters mean the subject pod\u2019s own cluster',
    cite: 'DESIGN.md §2 MeshNetworkPolicy: `clusters` in subject and peers, "absent = the subject pod\'s own cluster"',
    world: meshWorld({
      clusterPolicies: [
        mnp('deny-y', { subject: { namespaces: sel({ ns: 'x' }) }, ingress: [DENY_ALL_INGRESS_Y] }),
      ],
    }),
    probes: [
      [
        'east/y/a',
        'east/x/a',
        'TCP/80',
        { v: 'Deny', in: 'Deny MeshNetworkPolicy/deny-y ingress[0]' },
      ],
      ['west/y/a', 'west/x/a', 'TCP/80', 'Deny'],
      ['west/y/a', 'east/x/a', 'TCP/80', { v: 'Allow', in: 'default Allow' }],
    ],
  },
  {
    name: 'MeshNetworkPolicy subject.clusters limits the subject to the selected clusters',
    cite: 'DESIGN.md §2 MeshNetworkPolicy subject `clusters`',
    world: meshWorld({
      clusterPolicies: [
        mnp('deny-y-eu', {
          subject: { namespaces: sel({ ns: 'x' }), clusters: sel({ region: 'eu' }) },
          ingress: [DENY_ALL_INGRESS_Y],
        }),
      ],
    }),
    probes: [
      ['east/y/a', 'east/x/a', 'TCP/80', 'Allow'],
      ['west/y/a', 'west/x/a', 'TCP/80', 'Deny'],
    ],
  },
  {
    name: 'MeshNetworkPolicy peer clusters selector matches pods of the selected clusters',
    cite: 'DESIGN.md §2 MeshNetworkPolicy peer `clusters`; cluster labels from the Cluster object',
    world: meshWorld({
      clusterPolicies: [
        mnp('deny-from-eu', {
          ingress: [{ action: 'Deny', peers: [cpNamespaces(ALL, sel({ region: 'eu' }))] }],
        }),
      ],
    }),
    probes: [
      [
        'west/y/a',
        'east/x/a',
        'TCP/80',
        { v: 'Deny', in: 'Deny MeshNetworkPolicy/deny-from-eu ingress[0]' },
      ],
      ['west/y/a', 'west/x/a', 'TCP/80', 'Deny'],
      ['east/y/a', 'east/x/a', 'TCP/80', 'Allow'],
      ['east/y/a', 'west/x/a', 'TCP/80', 'Allow'],
    ],
  },
  {
    name: 'across clusters the source cluster decides egress and the destination cluster decides ingress',
    cite: 'DESIGN.md §2 "Cross-cluster: the source cluster decides egress, the destination cluster decides ingress"',
    world: meshWorld({
      clusterPolicies: [
        cp('east-no-west', {
          cluster: 'east',
          egress: [{ action: 'Deny', peers: [cpNetworks('10.2.0.0/16')] }],
        }),
        cp('west-no-east-y', {
          cluster: 'west',
          ingress: [{ action: 'Deny', peers: [cpNetworks('10.1.2.0/24')] }],
        }),
      ],
    }),
    probes: [
      [
        'east/x/a',
        'west/x/a',
        'TCP/80',
        { v: 'Deny', eg: 'Deny ClusterNetworkPolicy/east-no-west egress[0]', in: 'default Allow' },
      ],
      ['west/x/a', 'east/x/a', 'TCP/80', { v: 'Allow', eg: 'default Allow', in: 'default Allow' }],
      ['west/y/a', 'west/x/a', 'TCP/80', 'Allow'],
      ['east/y/b', 'east/x/a', 'TCP/80', 'Allow'],
    ],
  },
  {
    name: 'Audit-mode MeshNetworkPolicies are not enforced but give the staged verdict',
    cite: 'DESIGN.md §2 MeshNetworkPolicy `mode: Audit` "computes and logs the verdict it would give, without enforcing it"',
    world: e2eWorld({
      clusterPolicies: [
        mnp('audit-deny-y', {
          mode: 'Audit',
          priority: 1,
          subject: { namespaces: sel({ ns: 'x' }) },
          ingress: [DENY_ALL_INGRESS_Y],
        }),
        mnp('audit-accept-z', {
          mode: 'Audit',
          priority: 1,
          subject: { namespaces: sel({ ns: 'y' }) },
          ingress: [{ action: 'Accept', peers: [cpNamespaces(sel({ ns: 'z' }))] }],
        }),
        cp('deny-z', {
          priority: 10,
          subject: { namespaces: sel({ ns: 'y' }) },
          ingress: [{ action: 'Deny', peers: [cpNamespaces(sel({ ns: 'z' }))] }],
        }),
      ],
    }),
    probes: [
      [
        'y/a',
        'x/a',
        'TCP/80',
        {
          v: 'Allow',
          in: 'default Allow',
          stIn: 'Deny MeshNetworkPolicy/audit-deny-y ingress[0]',
          stEg: null,
        },
      ],
      ['z/a', 'x/a', 'TCP/80', { v: 'Allow', in: 'default Allow', stIn: 'default Allow' }],
      [
        'z/a',
        'y/a',
        'TCP/80',
        {
          v: 'Deny',
          in: 'Deny ClusterNetworkPolicy/deny-z ingress[0]',
          stIn: 'Accept MeshNetworkPolicy/audit-accept-z ingress[0]',
        },
      ],
      ['x/a', 'z/a', 'TCP/80', { v: 'Allow', stEg: null, stIn: null }],
    ],
  },

  {
    name: 'MeshNetworkPolicy egress peers with clusters: decided at the source cluster',
    cite: 'DESIGN.md §2 MeshNetworkPolicy peer `clusters`; "the source cluster decides egress"',
    world: meshWorld({
      clusterPolicies: [
        mnp('no-egress-to-eu', {
          egress: [{ action: 'Deny', peers: [cpPods(ALL, ALL, sel({ region: 'eu' }))] }],
        }),
      ],
    }),
    probes: [
      [
        'east/x/a',
        'west/x/a',
        'TCP/80',
        { v: 'Deny', eg: 'Deny MeshNetworkPolicy/no-egress-to-eu egress[0]', in: 'default Allow' },
      ],
      ['west/x/a', 'west/y/b', 'TCP/80', 'Deny'],
      ['east/x/a', 'east/y/b', 'TCP/80', 'Allow'],
      ['west/x/a', 'east/y/b', 'TCP/80', 'Allow'],
    ],
  },
  {
    name: 'Audit Pass and Audit Baseline policies are staged like enforced ones',
    cite: 'DESIGN.md §2 MeshNetworkPolicy `mode: Audit`; docs/semantics.md §6',
    world: e2eWorld({
      clusterPolicies: [
        mnp('audit-pass-y', {
          mode: 'Audit',
          priority: 1,
          ingress: [{ action: 'Pass', peers: [cpNamespaces(sel({ ns: 'y' }))] }],
        }),
        cp('deny-y', { priority: 10, ingress: [DENY_ALL_INGRESS_Y] }),
        mnp('audit-baseline-deny-z', {
          mode: 'Audit',
          tier: 'Baseline',
          priority: 1,
          ingress: [{ action: 'Deny', peers: [cpNamespaces(sel({ ns: 'z' }))] }],
        }),
      ],
    }),
    probes: [
      [
        'y/a',
        'x/a',
        'TCP/80',
        { v: 'Deny', in: 'Deny ClusterNetworkPolicy/deny-y ingress[0]', stIn: 'default Allow' },
      ],
      [
        'z/a',
        'x/a',
        'TCP/80',
        {
          v: 'Allow',
          in: 'default Allow',
          stIn: 'Deny MeshNetworkPolicy/audit-baseline-deny-z ingress[0]',
        },
      ],
    ],
  },

  // ============================ addresses
  {
    name: 'IPv6 ipBlock with except',
    cite: 'API IPBlock.cidr: "Valid examples are 192.168.1.0/24 or 2001:db8::/64"',
    world: buildWorld({
      pods: [
        pod('v6/a', { ip: 'fd00::1', labels: { pod: 'a' } }),
        pod('v6/b', { ip: 'fd00::2' }),
        pod('v6/c', { ip: 'fd00::3' }),
      ],
      networkPolicies: [
        np('v6/cidr', {
          podSelector: sel({ pod: 'a' }),
          ingress: [{ peers: [ipBlock('fd00::/120', ['fd00::2/128'])] }],
        }),
      ],
    }),
    probes: [
      ['v6/b', 'v6/a', 'TCP/80', 'Deny'],
      ['v6/c', 'v6/a', 'TCP/80', 'Allow'],
      ['ip:fd00::ff', 'v6/a', 'TCP/80', 'Allow'],
      ['ip:fd00::1:1', 'v6/a', 'TCP/80', 'Deny'],
    ],
  },
  {
    name: 'dual-stack pods are probed over IPv4 when both ends have it, else IPv6',
    cite: 'docs/semantics.md "Addresses"; KEP-563 dual-stack: a pod has one IP per family',
    world: buildWorld({
      pods: [
        pod('d/dual', { ips: ['fd00::10', '10.9.0.1'], labels: { pod: 'dual' } }),
        pod('d/v4', { ip: '10.9.0.2' }),
        pod('d/v6', { ip: 'fd00::20' }),
      ],
      networkPolicies: [
        np('d/v4-only', {
          podSelector: sel({ pod: 'dual' }),
          ingress: [{ peers: [ipBlock('10.9.0.0/16')] }],
        }),
      ],
    }),
    probes: [
      ['d/v4', 'd/dual', 'TCP/80', 'Allow'],
      ['d/v6', 'd/dual', 'TCP/80', 'Deny'],
    ],
  },
];

function parsePort(s: string): { protocol: Protocol; port: number } {
  const [proto, port] = s.split('/') as [string, string];
  return { protocol: proto as Protocol, port: Number(port) };
}

describe('reference semantics', () => {
  for (const c of cases) {
    describe(`${c.name} [${c.cite}]`, () => {
      const prepared = prepareWorld(c.world);
      it.each(c.probes)('%s -> %s %s', (from, to, port, exp) => {
        const want: Expect = typeof exp === 'string' ? { v: exp } : exp;
        const v = evaluate(prepared, { from: id(from), to: id(to), ...parsePort(port) });
        const got: Partial<Record<keyof Expect, unknown>> = { v: v.verdict };
        if (want.eg !== undefined) got.eg = decider(v.egress.decidedBy);
        if (want.in !== undefined) got.in = decider(v.ingress.decidedBy);
        if (want.stEg !== undefined) got.stEg = staged(v.egress);
        if (want.stIn !== undefined) got.stIn = staged(v.ingress);
        expect(got).toEqual(want);
        // The overall verdict is the AND of both directions.
        expect(v.verdict).toBe(
          v.egress.verdict === 'Allow' && v.ingress.verdict === 'Allow' ? 'Allow' : 'Deny',
        );
      });
    });
  }
});
