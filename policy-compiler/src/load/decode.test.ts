/** Decoding and upstream defaulting: what the model receives for valid input. */
import { describe, expect, it } from 'vitest';
import { SELECT_ALL } from '../model/index.js';
import { formatDiagnostic, loadWorldFromTexts } from './index.js';

function load(text: string) {
  const r = loadWorldFromTexts([{ file: 'w.yaml', text }]);
  expect(r.diagnostics.map(formatDiagnostic)).toEqual([]);
  return r;
}

const npDoc = (spec: string, meta = '') => `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: np
  namespace: shop${meta}
spec:
${spec}`;

describe('NetworkPolicy defaulting (k8s.io/api networking/v1 field docs)', () => {
  it('policyTypes default to Ingress only without egress rules', () => {
    const [p] = load(npDoc('  podSelector: {}')).world.networkPolicies;
    expect(p?.policyTypes).toEqual({ ingress: true, egress: false });
  });
  it('policyTypes default to Ingress and Egress when egress rules are present', () => {
    const [p] = load(npDoc('  podSelector: {}\n  egress: [{}]')).world.networkPolicies;
    expect(p?.policyTypes).toEqual({ ingress: true, egress: true });
  });
  it('explicit policyTypes are kept (Egress only)', () => {
    const [p] = load(npDoc('  podSelector: {}\n  policyTypes: [Egress]')).world.networkPolicies;
    expect(p?.policyTypes).toEqual({ ingress: false, egress: true });
  });
  it('absent or empty from/ports mean all peers / all ports; ports: [{}] is all TCP ports', () => {
    const [p] = load(
      npDoc(
        '  podSelector: {}\n  ingress:\n    - {}\n    - from: []\n      ports: []\n    - ports: [{}]',
      ),
    ).world.networkPolicies;
    expect(p?.ingress.map((r) => [r.peers, r.ports])).toEqual([
      ['all', 'all'],
      ['all', 'all'],
      ['all', [{ kind: 'all', protocol: 'TCP' }]],
    ]);
  });
  it('port protocol defaults to TCP; endPort makes a range; names stay named', () => {
    const [p] = load(
      npDoc(
        '  podSelector: {}\n  ingress:\n    - ports: [{port: 80}, {protocol: UDP, port: 53, endPort: 60}, {port: http}, {protocol: SCTP}]',
      ),
    ).world.networkPolicies;
    expect(p?.ingress[0]?.ports).toEqual([
      { kind: 'range', protocol: 'TCP', start: 80, end: 80 },
      { kind: 'range', protocol: 'UDP', start: 53, end: 60 },
      { kind: 'named', protocol: 'TCP', name: 'http' },
      { kind: 'all', protocol: 'SCTP' },
    ]);
  });
  it('peers: podSelector alone = own namespace (null), ipBlock canonical', () => {
    const spec =
      '  podSelector: {matchLabels: {app: db}}\n  ingress:\n    - from:\n        - podSelector: {matchLabels: {app: web}}\n        - namespaceSelector: {}\n        - {namespaceSelector: {matchLabels: {t: a}}, podSelector: {}}\n        - ipBlock: {cidr: "2001:DB8::1/64", except: ["2001:db8:0:0:1::/80"]}';
    const [p] = load(npDoc(spec)).world.networkPolicies;
    expect(p?.podSelector).toEqual({ matchLabels: { app: 'db' }, matchExpressions: [] });
    expect(p?.ingress[0]?.peers).toEqual([
      {
        kind: 'pods',
        namespaceSelector: null,
        podSelector: { matchLabels: { app: 'web' }, matchExpressions: [] },
      },
      { kind: 'pods', namespaceSelector: SELECT_ALL, podSelector: SELECT_ALL },
      {
        kind: 'pods',
        namespaceSelector: { matchLabels: { t: 'a' }, matchExpressions: [] },
        podSelector: SELECT_ALL,
      },
      { kind: 'ipBlock', cidr: '2001:db8::/64', except: ['2001:db8:0:0:1::/80'] },
    ]);
  });
  it('revision = metadata.generation, else a hash of the spec that ignores key order', () => {
    const [a] = load(npDoc('  podSelector: {}', '\n  generation: 7')).world.networkPolicies;
    expect(a?.revision).toBe('7');
    const [b] = load(npDoc('  podSelector: {}\n  policyTypes: [Ingress]')).world.networkPolicies;
    const [c] = load(npDoc('  policyTypes: [Ingress]\n  podSelector: {}')).world.networkPolicies;
    expect(b?.revision).toMatch(/^[0-9a-f]{12}$/);
    expect(c?.revision).toBe(b?.revision);
  });
  it('rule sources point at the rule', () => {
    const [p] = load(npDoc('  podSelector: {}\n  ingress:\n    - {}\n    - ports: [{port: 1}]'))
      .world.networkPolicies;
    expect(p?.ingress.map((r) => `${r.source.line}:${r.source.col}`)).toEqual(['9:7', '10:7']);
    expect(p?.source).toEqual({ file: 'w.yaml', line: 1, col: 1 });
  });
});

describe('cluster-wide policies', () => {
  it('CNP v1alpha2: subject, peers and protocols', () => {
    const text = `apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata:
  name: c
  annotations: {palisade.dev/cluster: east}
spec:
  tier: Baseline
  priority: 3
  subject: {namespaces: {matchLabels: {a: b}}}
  egress:
    - name: r1
      action: Pass
      to: [{pods: {podSelector: {}}}, {nodes: {}}, {networks: [10.0.0.1/8]}, {domainNames: [example.com]}]
      protocols: [{tcp: {destinationPort: {number: 80}}}, {udp: {destinationPort: {range: {start: 1, end: 9}}}}]
    - {action: Deny, to: [{namespaces: {}}], protocols: [{destinationNamedPort: http}]}`;
    const [p] = load(text).world.clusterPolicies;
    expect(p).toMatchObject({
      kind: 'ClusterNetworkPolicy',
      cluster: 'east',
      tier: 'Baseline',
      priority: 3,
      mode: 'Enforce',
      encryptionRequired: false,
    });
    expect(p?.subject).toEqual({
      namespaceSelector: { matchLabels: { a: 'b' }, matchExpressions: [] },
      podSelector: SELECT_ALL,
      clusters: null,
    });
    expect(p?.egress[0]).toMatchObject({ index: 0, name: 'r1', action: 'Pass' });
    expect(p?.egress[0]?.peers).toEqual([
      { kind: 'pods', namespaceSelector: SELECT_ALL, podSelector: SELECT_ALL, clusters: null },
      { kind: 'nodes', nodeSelector: SELECT_ALL },
      { kind: 'networks', cidrs: ['10.0.0.0/8'] },
      { kind: 'domainNames', names: ['example.com'] },
    ]);
    expect(p?.egress[0]?.ports).toEqual([
      { kind: 'range', protocol: 'TCP', start: 80, end: 80 },
      { kind: 'range', protocol: 'UDP', start: 1, end: 9 },
    ]);
    expect(p?.egress[1]).toMatchObject({
      name: '',
      action: 'Deny',
      ports: [{ kind: 'named', protocol: 'any', name: 'http' }],
    });
    expect(load(text).world.clusters.map((c) => [c.name, c.declared])).toEqual([['east', false]]);
  });
  it('ANP/BANP v1alpha1: tiers, Allow → Accept, BANP priority 1000, protocol default TCP', () => {
    const text = `apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: a}
spec:
  priority: 9
  subject: {pods: {namespaceSelector: {}, podSelector: {matchLabels: {x: y}}}}
  ingress:
    - action: Allow
      from: [{namespaces: {}}]
      ports: [{portNumber: {port: 80}}, {portRange: {protocol: UDP, start: 5, end: 6}}, {namedPort: web}]
---
apiVersion: policy.networking.k8s.io/v1alpha1
kind: BaselineAdminNetworkPolicy
metadata: {name: default}
spec:
  subject: {namespaces: {}}
  egress: [{action: Deny, to: [{networks: ["::/0"]}]}]`;
    const ps = load(text).world.clusterPolicies;
    expect(ps.map((p) => [p.kind, p.tier, p.priority])).toEqual([
      ['AdminNetworkPolicy', 'Admin', 9],
      ['BaselineAdminNetworkPolicy', 'Baseline', 1000],
    ]);
    expect(ps[0]?.ingress[0]?.action).toBe('Accept');
    expect(ps[0]?.ingress[0]?.ports).toEqual([
      { kind: 'range', protocol: 'TCP', start: 80, end: 80 },
      { kind: 'range', protocol: 'UDP', start: 5, end: 6 },
      { kind: 'named', protocol: 'any', name: 'web' },
    ]);
    expect(ps[1]?.egress[0]?.peers).toEqual([{ kind: 'networks', cidrs: ['::/0'] }]);
  });
  it('MeshNetworkPolicy: clusters selectors, mode, encryption, logging; mesh-wide (cluster null)', () => {
    const text = `apiVersion: palisade.dev/v1alpha1
kind: MeshNetworkPolicy
metadata: {name: m}
spec:
  tier: Admin
  priority: 0
  mode: Audit
  encryption: Required
  logging: {denied: true}
  subject: {pods: {podSelector: {}}, clusters: {matchLabels: {region: eu}}}
  ingress:
    - action: Accept
      from: [{namespaces: {}, clusters: {}}, {pods: {podSelector: {}}}]`;
    const r = load(text);
    const [p] = r.world.clusterPolicies;
    expect(p).toMatchObject({
      cluster: null,
      mode: 'Audit',
      encryptionRequired: true,
      logging: { allowed: false, denied: true },
    });
    expect(p?.subject.clusters).toEqual({ matchLabels: { region: 'eu' }, matchExpressions: [] });
    expect(p?.ingress[0]?.peers.map((x) => (x.kind === 'pods' ? x.clusters : 'n/a'))).toEqual([
      SELECT_ALL,
      null,
    ]);
    expect(r.world.clusters).toEqual([]);
    expect(r.objects[0]).toMatchObject({ kind: 'MeshNetworkPolicy', cluster: null, valid: true });
  });
});

describe('world assembly', () => {
  const WORLD = `apiVersion: palisade.dev/v1alpha1
kind: Cluster
metadata: {name: east, labels: {region: us}}
spec: {podCIDRs: ["FD00:10::/56", 10.10.0.1/16], gateway: {endpoint: "[fd00::1]:51820"}}
---
apiVersion: v1
kind: Namespace
metadata: {name: shop, annotations: {palisade.dev/cluster: east}, labels: {team: shop}}
---
apiVersion: v1
kind: Pod
metadata: {name: web-0, namespace: shop, uid: u1, annotations: {palisade.dev/cluster: east}, labels: {app: web}}
spec:
  nodeName: n1
  containers:
    - name: c
      ports: [{containerPort: 8080, name: http}, {containerPort: 53, protocol: UDP}]
status:
  podIP: 10.10.1.5
  podIPs: [{ip: 10.10.1.5}, {ip: "FD00:10:0:0:0:0:0:5"}]
---
apiVersion: v1
kind: Pod
metadata: {name: db-0, namespace: data}
spec: {hostNetwork: true, containers: [{name: c}]}
---
apiVersion: v1
kind: Node
metadata: {name: n1, annotations: {palisade.dev/cluster: east}, labels: {zone: a}}
status:
  addresses: [{type: InternalIP, address: 192.168.10.1}, {type: Hostname, address: n1}, {type: ExternalIP, address: "2001:DB8::1"}]`;

  it('decodes every kind, adds name labels, makes implicit clusters and namespaces', () => {
    const { world } = load(WORLD);
    expect(world.clusters.map((c) => [c.name, c.declared, c.labels])).toEqual([
      ['default', false, { 'palisade.dev/cluster-name': 'default' }],
      ['east', true, { region: 'us', 'palisade.dev/cluster-name': 'east' }],
    ]);
    expect(world.clusters[1]).toMatchObject({
      podCIDRs: ['fd00:10::/56', '10.10.0.0/16'],
      gateway: { endpoint: '[fd00::1]:51820' },
    });
    expect(world.namespaces.map((n) => [n.cluster, n.name, n.declared, n.labels])).toEqual([
      ['default', 'data', false, { 'kubernetes.io/metadata.name': 'data' }],
      ['east', 'shop', true, { team: 'shop', 'kubernetes.io/metadata.name': 'shop' }],
    ]);
    expect(world.pods.map((p) => [p.cluster, p.namespace, p.name])).toEqual([
      ['default', 'data', 'db-0'],
      ['east', 'shop', 'web-0'],
    ]);
    expect(world.pods[1]).toMatchObject({
      uid: 'u1',
      nodeName: 'n1',
      hostNetwork: false,
      ips: ['10.10.1.5', 'fd00:10::5'],
      ports: [
        { name: 'http', containerPort: 8080, protocol: 'TCP' },
        { name: null, containerPort: 53, protocol: 'UDP' },
      ],
    });
    expect(world.pods[0]).toMatchObject({ hostNetwork: true, ips: [], nodeName: null, uid: null });
    expect(world.nodes).toEqual([
      {
        cluster: 'east',
        name: 'n1',
        labels: { zone: 'a' },
        ips: ['192.168.10.1', '2001:db8::1'],
        source: { file: 'w.yaml', line: 27, col: 1 },
      },
    ]);
  });
  it('List wrappers (v1 List with items) load their items, errors carry the items path', () => {
    const list = `apiVersion: v1
kind: List
items:
  - {apiVersion: v1, kind: Namespace, metadata: {name: a}}
  - {apiVersion: v1, kind: Namespace, metadata: {name: b, labels: {x: [1]}}}
  - 42`;
    const r = loadWorldFromTexts([{ file: 'l.yaml', text: list }]);
    expect(r.diagnostics.map(formatDiagnostic)).toEqual([
      'l.yaml:5:71: items[1].metadata.labels.x: wrong type (allowed: string, got: array)',
      'l.yaml:6:5: items[2]: list item is not an object (allowed: a mapping with apiVersion and kind, got: 42)',
    ]);
    expect(r.world.namespaces.map((n) => n.name)).toEqual(['a']);
    expect(r.objects.map((o) => [o.name, o.valid, o.source.line])).toEqual([
      ['a', true, 4],
      ['b', false, 5],
    ]);
  });
  it('duplicate objects: same kind, cluster, namespace and name; other clusters are distinct', () => {
    const ns = (name: string, cluster?: string) =>
      `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${name}${cluster ? `\n  annotations: {palisade.dev/cluster: ${cluster}}` : ''}\n`;
    const r = loadWorldFromTexts([
      { file: 'd.yaml', text: [ns('a'), ns('a'), ns('a', 'west')].join('---\n') },
    ]);
    expect(r.diagnostics.map(formatDiagnostic)).toEqual([
      'd.yaml:9:9: metadata.name: duplicate object: Namespace a in cluster default is already defined at d.yaml:1:1',
    ]);
    expect(r.world.namespaces.map((n) => `${n.cluster}/${n.name}`)).toEqual([
      'default/a',
      'west/a',
    ]);
  });
  it('a bad cluster annotation is an error', () => {
    const r = loadWorldFromTexts([
      {
        file: 'c.yaml',
        text: 'apiVersion: v1\nkind: Namespace\nmetadata: {name: a, annotations: {palisade.dev/cluster: East_1}}\n',
      },
    ]);
    expect(r.diagnostics.map(formatDiagnostic)).toEqual([
      "c.yaml:3:57: metadata.annotations[palisade.dev/cluster]: not a valid cluster name: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*') (got: \"East_1\")",
    ]);
  });
  it('status of kinds with a status subresource is ignored, as the API server does', () => {
    const text =
      'apiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\nmetadata: {name: c}\nspec: {tier: Admin, priority: 1, subject: {namespaces: {}}}\nstatus: {anything: [1, 2]}\n';
    expect(load(text).world.clusterPolicies).toHaveLength(1);
  });
  it('JSON input and empty documents', () => {
    const r = load(
      '{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "j"}}\n---\n# only a comment\n---\n',
    );
    expect(r.world.namespaces.map((n) => n.name)).toEqual(['j']);
  });
});
