/**
 * One test per API-server rejection class, with the exact text. Each cites
 * where the rule comes from upstream.
 */
import { describe, expect, it } from 'vitest';
import { formatDiagnostic, loadWorldFromTexts } from './index.js';

function lint(text: string): string[] {
  return loadWorldFromTexts([{ file: 'w.yaml', text }]).diagnostics.map(formatDiagnostic);
}

const cnp = (spec: string, name = 'p') => `apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata:
  name: ${name}
spec:
${spec}`;

const SUBJECT = '  subject:\n    namespaces: {}';

const np = (spec: string) => `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: np
  namespace: shop
spec:
${spec}`;

describe('ClusterNetworkPolicy v1alpha2 (CRD of network-policy-api v0.2.0)', () => {
  it('priority range 0..1000 (+kubebuilder:validation:Maximum=1000)', () => {
    expect(lint(cnp(`  tier: Admin\n  priority: 1001\n${SUBJECT}`))).toEqual([
      'w.yaml:7:13: spec.priority: must be less than or equal to 1000 (allowed: 0..1000, got: 1001)',
    ]);
    expect(lint(cnp(`  tier: Admin\n  priority: -1\n${SUBJECT}`))).toEqual([
      'w.yaml:7:13: spec.priority: must be greater than or equal to 0 (allowed: 0..1000, got: -1)',
    ]);
  });
  it('tier enum Admin|Baseline', () => {
    expect(lint(cnp(`  tier: admin\n  priority: 1\n${SUBJECT}`))).toEqual([
      'w.yaml:6:9: spec.tier: unsupported value (allowed: "Admin", "Baseline", got: "admin")',
    ]);
  });
  it('action enum Accept|Deny|Pass (v1alpha1 "Allow" is not a v1alpha2 action)', () => {
    const spec = `  tier: Admin\n  priority: 1\n${SUBJECT}\n  ingress:\n    - action: Allow\n      from: [{namespaces: {}}]`;
    expect(lint(cnp(spec))).toEqual([
      'w.yaml:11:15: spec.ingress[0].action: unsupported value (allowed: "Accept", "Deny", "Pass", got: "Allow")',
    ]);
  });
  it('Pass in the Baseline tier is accepted: v0.2.0 has no rule against it', () => {
    const spec = `  tier: Baseline\n  priority: 1\n${SUBJECT}\n  ingress:\n    - action: Pass\n      from: [{namespaces: {}}]`;
    expect(lint(cnp(spec))).toEqual([]);
  });
  it('more than 25 rules (+kubebuilder:validation:MaxItems=25)', () => {
    const rules = Array.from(
      { length: 26 },
      () => '    - {action: Deny, from: [{namespaces: {}}]}',
    ).join('\n');
    expect(lint(cnp(`  tier: Admin\n  priority: 1\n${SUBJECT}\n  ingress:\n${rules}`))).toEqual([
      'w.yaml:11:5: spec.ingress: too many items (allowed: at most 25, got: 26)',
    ]);
  });
  it('more than 25 peers and more than 25 protocols', () => {
    const peers = Array.from({ length: 26 }, () => '{namespaces: {}}').join(', ');
    const protos = Array.from(
      { length: 26 },
      (_, i) => `{tcp: {destinationPort: {number: ${i + 1}}}}`,
    ).join(', ');
    const spec = `  tier: Admin\n  priority: 1\n${SUBJECT}\n  ingress:\n    - action: Deny\n      from: [${peers}]\n      protocols: [${protos}]`;
    expect(lint(cnp(spec))).toEqual([
      'w.yaml:12:13: spec.ingress[0].from: too many items (allowed: at most 25, got: 26)',
      'w.yaml:13:18: spec.ingress[0].protocols: too many items (allowed: at most 25, got: 26)',
    ]);
  });
  it('empty peers: from must have at least one item (MinItems=1) and a peer exactly one field', () => {
    const spec = `  tier: Admin\n  priority: 1\n${SUBJECT}\n  ingress:\n    - action: Deny\n      from: []\n  egress:\n    - action: Deny\n      to: [{}]`;
    expect(lint(cnp(spec))).toEqual([
      'w.yaml:12:13: spec.ingress[0].from: too few items (allowed: at least 1, got: 0)',
      'w.yaml:15:12: spec.egress[0].to[0]: exactly one field must be set (allowed: one of namespaces, pods, nodes, networks, domainNames, got: none)',
    ]);
  });
  it('subject with two fields (MaxProperties=1)', () => {
    expect(
      lint(
        cnp(
          `  tier: Admin\n  priority: 1\n  subject:\n    namespaces: {}\n    pods: {podSelector: {}}`,
        ),
      ),
    ).toEqual([
      'w.yaml:9:5: spec.subject: exactly one field must be set (allowed: one of namespaces, pods, got: namespaces, pods)',
    ]);
  });
  it('bad CIDRs (CEL isCIDR(self)) and duplicate networks (listType=set)', () => {
    const spec = `  tier: Admin\n  priority: 1\n${SUBJECT}\n  egress:\n    - action: Deny\n      to:\n        - networks: [10.0.0.0/33, 10.0.0.0/8, 10.0.0.0/8, fd00::/129]`;
    expect(lint(cnp(spec))).toEqual([
      'w.yaml:13:22: spec.egress[0].to[0].networks[0]: Invalid CIDR format provided (rule: isCIDR(self), got: "10.0.0.0/33")',
      'w.yaml:13:47: spec.egress[0].to[0].networks[2]: duplicate item (allowed: unique items, got: same as [1])',
      'w.yaml:13:59: spec.egress[0].to[0].networks[3]: Invalid CIDR format provided (rule: isCIDR(self), got: "fd00::/129")',
    ]);
  });
  it('ports 0 and 65536 (Minimum=1, Maximum=65535)', () => {
    const spec = `  tier: Admin\n  priority: 1\n${SUBJECT}\n  ingress:\n    - action: Deny\n      from: [{namespaces: {}}]\n      protocols:\n        - tcp: {destinationPort: {number: 0}}\n        - udp: {destinationPort: {number: 65536}}`;
    expect(lint(cnp(spec))).toEqual([
      'w.yaml:14:43: spec.ingress[0].protocols[0].tcp.destinationPort.number: must be greater than or equal to 1 (allowed: 1..65535, got: 0)',
      'w.yaml:15:43: spec.ingress[0].protocols[1].udp.destinationPort.number: must be less than or equal to 65535 (allowed: 1..65535, got: 65536)',
    ]);
  });
  it('range start must be less than end (CEL self.start < self.end)', () => {
    const spec = `  tier: Admin\n  priority: 1\n${SUBJECT}\n  ingress:\n    - action: Deny\n      from: [{namespaces: {}}]\n      protocols:\n        - sctp: {destinationPort: {range: {start: 90, end: 90}}}`;
    expect(lint(cnp(spec))).toEqual([
      'w.yaml:14:43: spec.ingress[0].protocols[0].sctp.destinationPort.range: Start port must be less than End port (rule: self.start < self.end)',
    ]);
  });
  it('named port with a networks/nodes/domainNames peer (CEL rule of the egress rule)', () => {
    const spec = `  tier: Admin\n  priority: 1\n${SUBJECT}\n  egress:\n    - action: Accept\n      to: [{nodes: {}}]\n      protocols: [{destinationNamedPort: http}]`;
    expect(lint(cnp(spec))).toEqual([
      'w.yaml:11:7: spec.egress[0]: networks/nodes/domainNames peer cannot be set with namedPorts since there are no namedPorts for networks/nodes/domainNames (rule: !(self.to.exists(peer, has(peer.networks) || has(peer.nodes) || has(peer.domainNames)) && has(self.protocols) && self.protocols.exists(protocol, has(protocol.destinationNamedPort))))',
    ]);
  });
  it('rule name longer than 100 characters (MaxLength=100); duplicate rule names are allowed upstream', () => {
    const long = 'r'.repeat(101);
    const spec = `  tier: Admin\n  priority: 1\n${SUBJECT}\n  ingress:\n    - {name: ${long}, action: Deny, from: [{namespaces: {}}]}\n    - {name: same, action: Deny, from: [{namespaces: {}}]}\n    - {name: same, action: Deny, from: [{namespaces: {}}]}`;
    expect(lint(cnp(spec))).toEqual([
      'w.yaml:11:14: spec.ingress[0].name: too long (allowed: at most 100 characters, got: 101)',
    ]);
  });
  it('domainNames pattern', () => {
    const spec = `  tier: Admin\n  priority: 1\n${SUBJECT}\n  egress:\n    - action: Accept\n      to: [{domainNames: ["*.example.com", "bad..example", "kubernetes.io"]}]`;
    expect(lint(cnp(spec))).toEqual([
      `w.yaml:12:44: spec.egress[0].to[0].domainNames[1]: does not match the required pattern (allowed: ^(\\*\\.)?([a-zA-z0-9]([-a-zA-Z0-9_]*[a-zA-Z0-9])?\\.)+[a-zA-z0-9]([-a-zA-Z0-9_]*[a-zA-Z0-9])?\\.?$, got: "bad..example")`,
    ]);
  });
  it('required fields (tier, priority, subject; action and from of a rule)', () => {
    expect(lint(cnp(`  ingress:\n    - from: [{namespaces: {}}]`))).toEqual([
      'w.yaml:5:1: spec.priority: required field is missing',
      'w.yaml:5:1: spec.subject: required field is missing',
      'w.yaml:5:1: spec.tier: required field is missing',
      'w.yaml:7:7: spec.ingress[0].action: required field is missing',
    ]);
  });
  it('unknown fields are errors (strict decoding), at the key', () => {
    expect(lint(cnp(`  tier: Admin\n  priority: 1\n${SUBJECT}\n  priorty: 2`))).toEqual([
      'w.yaml:10:3: spec.priorty: unknown field (allowed: egress, ingress, priority, subject, tier)',
    ]);
  });
  it('wrong types', () => {
    expect(lint(cnp(`  tier: Admin\n  priority: "1"\n  subject: []`))).toEqual([
      'w.yaml:7:13: spec.priority: wrong type (allowed: integer, got: string "1")',
      'w.yaml:8:12: spec.subject: wrong type (allowed: object, got: array)',
    ]);
    expect(lint(cnp(`  tier: Admin\n  priority: 1.5\n${SUBJECT}\n  ingress: {}`))).toEqual([
      'w.yaml:7:13: spec.priority: wrong type (allowed: integer, got: number 1.5)',
      'w.yaml:10:12: spec.ingress: wrong type (allowed: array, got: object)',
    ]);
  });
  it('label selector syntax (metav1 ValidateLabelSelector)', () => {
    const spec = `  tier: Admin\n  priority: 1\n  subject:\n    namespaces:\n      matchLabels: {"bad key!": v}\n      matchExpressions:\n        - {key: a, operator: In}\n        - {key: b, operator: Exists, values: [x]}\n        - {key: c, operator: Equals, values: [x]}`;
    expect(lint(cnp(spec))).toEqual([
      "w.yaml:10:21: spec.subject.namespaces.matchLabels[bad key!]: invalid label key: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName', or 'my.name', or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') (got: \"bad key!\")",
      "w.yaml:12:11: spec.subject.namespaces.matchExpressions[0].values: must be specified when `operator` is 'In' or 'NotIn'",
      "w.yaml:13:46: spec.subject.namespaces.matchExpressions[1].values: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
      'w.yaml:14:30: spec.subject.namespaces.matchExpressions[2].operator: not a valid selector operator (allowed: "In", "NotIn", "Exists", "DoesNotExist", got: "Equals")',
    ]);
  });
  it('metadata.name must be a DNS subdomain', () => {
    expect(lint(cnp(`  tier: Admin\n  priority: 1\n${SUBJECT}`, 'Bad_Name'))).toEqual([
      "w.yaml:4:9: metadata.name: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*') (got: \"Bad_Name\")",
    ]);
  });
});

describe('AdminNetworkPolicy / BaselineAdminNetworkPolicy v1alpha1 (CRDs of v0.1.7)', () => {
  it('BANP: Pass is not an action of the Baseline tier, name must be default', () => {
    const text = `apiVersion: policy.networking.k8s.io/v1alpha1
kind: BaselineAdminNetworkPolicy
metadata:
  name: other
spec:
  subject: {namespaces: {}}
  ingress:
    - {action: Pass, from: [{namespaces: {}}]}`;
    expect(lint(text.replace('name: other', 'name: default'))).toEqual([
      'w.yaml:8:16: spec.ingress[0].action: unsupported value (allowed: "Allow", "Deny", got: "Pass")',
    ]);
    expect(lint(text.replace('action: Pass', 'action: Allow'))).toEqual([
      `w.yaml:4:9: metadata.name: Only one baseline admin network policy with metadata.name="default" can be created in the cluster (rule: self.metadata.name == 'default')`,
    ]);
  });
  it('ANP: v1alpha2 action names are not v1alpha1 ones; protocol enum; named port with networks', () => {
    const text = `apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata:
  name: a
spec:
  priority: 5
  subject: {pods: {namespaceSelector: {}, podSelector: {}}}
  egress:
    - action: Accept
      to: [{networks: [10.0.0.0/8]}]
      ports: [{portRange: {protocol: ICMP, start: 1, end: 2}}, {namedPort: dns}]`;
    expect(lint(text)).toEqual([
      'w.yaml:9:7: spec.egress[0]: networks/nodes/domainNames peer cannot be set with namedPorts since there are no namedPorts for networks/nodes/domainNames (rule: !(self.to.exists(peer, has(peer.networks) || has(peer.nodes) || has(peer.domainNames)) && has(self.ports) && self.ports.exists(port, has(port.namedPort))))',
      'w.yaml:9:15: spec.egress[0].action: unsupported value (allowed: "Allow", "Deny", "Pass", got: "Accept")',
      'w.yaml:11:38: spec.egress[0].ports[0].portRange.protocol: unsupported value (allowed: "TCP", "UDP", "SCTP", got: "ICMP")',
    ]);
  });
  it('ANP v1alpha1 allows up to 100 rules', () => {
    const rules = Array.from(
      { length: 101 },
      () => '    - {action: Deny, from: [{namespaces: {}}]}',
    ).join('\n');
    const text = `apiVersion: policy.networking.k8s.io/v1alpha1\nkind: AdminNetworkPolicy\nmetadata: {name: a}\nspec:\n  priority: 5\n  subject: {namespaces: {}}\n  ingress:\n${rules}`;
    expect(lint(text)).toEqual([
      'w.yaml:8:5: spec.ingress: too many items (allowed: at most 100, got: 101)',
    ]);
  });
});

describe('NetworkPolicy v1 (pkg/apis/networking/validation)', () => {
  it('port 0 and 65536 (IsValidPortNum)', () => {
    expect(
      lint(np('  podSelector: {}\n  ingress:\n    - ports: [{port: 0}, {port: 65536}]')),
    ).toEqual([
      'w.yaml:9:22: spec.ingress[0].ports[0].port: must be between 1 and 65535, inclusive (got: 0)',
      'w.yaml:9:33: spec.ingress[0].ports[1].port: must be between 1 and 65535, inclusive (got: 65536)',
    ]);
  });
  it('endPort < port', () => {
    expect(
      lint(np('  podSelector: {}\n  egress:\n    - ports: [{port: 8080, endPort: 8000}]')),
    ).toEqual([
      'w.yaml:9:37: spec.egress[0].ports[0].endPort: must be greater than or equal to `port` (allowed: 8080..65535, got: 8000)',
    ]);
  });
  it('named port with a range, endPort without port', () => {
    expect(
      lint(
        np(
          '  podSelector: {}\n  ingress:\n    - ports: [{port: http, endPort: 90}, {endPort: 90}]',
        ),
      ),
    ).toEqual([
      'w.yaml:9:37: spec.ingress[0].ports[0].endPort: may not be specified when `port` is non-numeric (got: 90)',
      'w.yaml:9:52: spec.ingress[0].ports[1].endPort: may not be specified when `port` is not specified (got: 90)',
    ]);
  });
  it('named port syntax (IsValidPortName)', () => {
    expect(lint(np('  podSelector: {}\n  ingress:\n    - ports: [{port: HTTP--x-}]'))).toEqual([
      'w.yaml:9:22: spec.ingress[0].ports[0].port: must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-) (got: "HTTP--x-")',
      'w.yaml:9:22: spec.ingress[0].ports[0].port: must not contain consecutive hyphens (got: "HTTP--x-")',
      'w.yaml:9:22: spec.ingress[0].ports[0].port: must not begin or end with a hyphen (got: "HTTP--x-")',
    ]);
  });
  it('protocol enum', () => {
    expect(
      lint(np('  podSelector: {}\n  ingress:\n    - ports: [{protocol: tcp, port: 80}]')),
    ).toEqual([
      'w.yaml:9:26: spec.ingress[0].ports[0].protocol: unsupported value (allowed: "TCP", "UDP", "SCTP", got: "tcp")',
    ]);
  });
  it('empty peer, ipBlock with another peer, bad CIDR, except outside cidr', () => {
    const spec =
      '  podSelector: {}\n  ingress:\n    - from:\n        - {}\n        - {ipBlock: {cidr: 10.0.0.0/8}, podSelector: {}}\n        - ipBlock: {cidr: 10.0.0.0/40}\n        - ipBlock: {cidr: 10.0.0.0/8, except: [10.0.0.0/8, 11.0.0.0/16]}';
    expect(lint(np(spec))).toEqual([
      'w.yaml:10:11: spec.ingress[0].from[0]: must specify a peer (allowed: podSelector, namespaceSelector, ipBlock)',
      'w.yaml:11:11: spec.ingress[0].from[1]: may not specify both ipBlock and another peer (got: ipBlock, podSelector)',
      'w.yaml:12:27: spec.ingress[0].from[2].ipBlock.cidr: not a valid CIDR (allowed: e.g. 10.9.8.0/24 or 2001:db8::/64, got: "10.0.0.0/40")',
      'w.yaml:13:48: spec.ingress[0].from[3].ipBlock.except[0]: must be a strict subset of `cidr` (allowed: inside 10.0.0.0/8, got: "10.0.0.0/8")',
      'w.yaml:13:60: spec.ingress[0].from[3].ipBlock.except[1]: must be a strict subset of `cidr` (allowed: inside 10.0.0.0/8, got: "11.0.0.0/16")',
    ]);
  });
  it('policyTypes values and count', () => {
    expect(lint(np('  podSelector: {}\n  policyTypes: [Ingress, egress]'))).toEqual([
      'w.yaml:8:26: spec.policyTypes[1]: unsupported value (allowed: "Ingress", "Egress", got: "egress")',
    ]);
    expect(lint(np('  podSelector: {}\n  policyTypes: [Ingress, Egress, Ingress]'))).toEqual([
      'w.yaml:8:16: spec.policyTypes: may not specify more than two policyTypes (got: 3)',
    ]);
  });
  it('namespace must be a DNS label', () => {
    expect(
      lint(np('  podSelector: {}').replace('namespace: shop', 'namespace: shop.prod')),
    ).toEqual([
      "w.yaml:5:14: metadata.namespace: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name', or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?') (got: \"shop.prod\")",
    ]);
  });
});

describe('kinds and apiVersions', () => {
  it('wrong apiVersion names the one allowed', () => {
    expect(
      lint('apiVersion: networking.k8s.io/v1beta1\nkind: NetworkPolicy\nmetadata: {name: a}\n'),
    ).toEqual([
      'w.yaml:1:13: apiVersion: wrong apiVersion for kind NetworkPolicy (allowed: "networking.k8s.io/v1", got: "networking.k8s.io/v1beta1")',
    ]);
    expect(
      lint(
        'apiVersion: policy.networking.k8s.io/v1alpha1\nkind: ClusterNetworkPolicy\nmetadata: {name: a}\nspec: {tier: Admin, priority: 1, subject: {namespaces: {}}}\n',
      ),
    ).toEqual([
      'w.yaml:1:13: apiVersion: wrong apiVersion for kind ClusterNetworkPolicy (allowed: "policy.networking.k8s.io/v1alpha2", got: "policy.networking.k8s.io/v1alpha1")',
    ]);
  });
  it('unknown and missing kind list what is allowed', () => {
    const allowed =
      'AdminNetworkPolicy, BaselineAdminNetworkPolicy, Cluster, ClusterNetworkPolicy, List, MeshNetworkPolicy, Namespace, NetworkPolicy, Node, Pod';
    expect(lint('apiVersion: v1\nkind: Service\nmetadata: {name: a}\n')).toEqual([
      `w.yaml:2:7: kind: unknown kind (allowed: ${allowed}, got: "Service")`,
    ]);
    expect(lint('apiVersion: v1\nmetadata: {name: a}\n')).toEqual([
      `w.yaml:1:1: kind: required field is missing (allowed: ${allowed}, got: nothing)`,
    ]);
  });
  it('missing metadata, name and spec point at the object that lacks them', () => {
    expect(lint('apiVersion: v1\nkind: Namespace\n')).toEqual([
      'w.yaml:1:1: metadata: required field is missing',
    ]);
    expect(
      lint('apiVersion: v1\nkind: Pod\nmetadata: {labels: {a: b}}\nspec: {containers: []}\n'),
    ).toEqual([
      'w.yaml:3:1: metadata.name: required field is missing',
      'w.yaml:4:20: spec.containers: too few items (allowed: at least 1, got: 0)',
    ]);
    expect(
      lint(
        'apiVersion: v1\nkind: List\nitems:\n  - apiVersion: v1\n    kind: Pod\n    metadata: {name: p}\n',
      ),
    ).toEqual(['w.yaml:4:5: items[0].spec: required field is missing']);
  });
  it('non-mapping documents', () => {
    expect(lint('- a\n- b\n---\njust text\n')).toEqual([
      'w.yaml:1:1: document is not an object (allowed: a mapping with apiVersion and kind, got: list of 2)',
      'w.yaml:4:1: document is not an object (allowed: a mapping with apiVersion and kind, got: "just text")',
    ]);
  });
  it('metadata.namespace on a cluster-scoped kind is a warning', () => {
    const r = loadWorldFromTexts([
      { file: 'w.yaml', text: 'apiVersion: v1\nkind: Node\nmetadata: {name: n1, namespace: x}\n' },
    ]);
    expect(r.diagnostics.map((d) => [d.severity, formatDiagnostic(d)])).toEqual([
      ['warning', 'w.yaml:3:33: metadata.namespace: ignored: Node is cluster-scoped (got: "x")'],
    ]);
    expect(r.world.nodes.map((n) => n.name)).toEqual(['n1']);
  });
});

describe('MeshNetworkPolicy and Cluster (schemas read from crds/)', () => {
  const mnp = (spec: string) =>
    `apiVersion: palisade.dev/v1alpha1\nkind: MeshNetworkPolicy\nmetadata: {name: m}\nspec:\n  tier: Admin\n  priority: 1\n${spec}`;
  it('subject needs exactly one of namespaces or pods, clusters optional', () => {
    expect(lint(mnp('  subject: {clusters: {}}'))).toEqual([
      'w.yaml:7:12: spec.subject: exactly one of namespaces or pods must be set (rule: (has(self.namespaces) ? 1 : 0) + (has(self.pods) ? 1 : 0) == 1)',
    ]);
  });
  it('clusters only with pod/namespace peers; mode, encryption, logging types', () => {
    const spec =
      '  subject: {namespaces: {}}\n  mode: DryRun\n  encryption: Optional\n  logging: {allowed: "yes"}\n  egress:\n    - action: Accept\n      to: [{networks: [10.0.0.0/8], clusters: {}}]';
    expect(lint(mnp(spec))).toEqual([
      'w.yaml:8:9: spec.mode: unsupported value (allowed: "Enforce", "Audit", got: "DryRun")',
      'w.yaml:9:15: spec.encryption: unsupported value (allowed: "Required", got: "Optional")',
      'w.yaml:10:22: spec.logging.allowed: wrong type (allowed: boolean, got: string "yes")',
      'w.yaml:13:12: spec.egress[0].to[0]: clusters can only be set together with namespaces or pods (rule: !has(self.clusters) || has(self.namespaces) || has(self.pods))',
    ]);
  });
  it('Cluster: CIDRs and gateway endpoint', () => {
    const text =
      'apiVersion: palisade.dev/v1alpha1\nkind: Cluster\nmetadata: {name: east}\nspec:\n  podCIDRs: [10.0.0.0/16, 10.1.0.0/99]\n  gateway: {endpoint: "1.2.3.4:70000"}';
    expect(lint(text)).toEqual([
      'w.yaml:5:27: spec.podCIDRs[1]: Invalid CIDR format provided (rule: isCIDR(self), got: "10.1.0.0/99")',
      `w.yaml:6:23: spec.gateway.endpoint: endpoint port must be between 1 and 65535 (rule: int(self.substring(self.lastIndexOf(':') + 1)) >= 1 && int(self.substring(self.lastIndexOf(':') + 1)) <= 65535, got: "1.2.3.4:70000")`,
    ]);
  });
});

describe('every error in one run', () => {
  it('reports problems of several documents and files together, sorted by file and position', () => {
    const a = cnp(`  tier: Admin\n  priority: 2000\n${SUBJECT}\n  bogus: true`);
    const b = np('  podSelector: {}\n  ingress:\n    - ports: [{port: 0}]');
    const r = loadWorldFromTexts([
      { file: 'b.yaml', text: `${b}\n---\n${a}` },
      { file: 'a.yaml', text: a },
    ]);
    expect(r.diagnostics.map(formatDiagnostic)).toEqual([
      'a.yaml:4:9: metadata.name: duplicate object: ClusterNetworkPolicy p in cluster default is already defined at b.yaml:11:1',
      'a.yaml:7:13: spec.priority: must be less than or equal to 1000 (allowed: 0..1000, got: 2000)',
      'a.yaml:10:3: spec.bogus: unknown field (allowed: egress, ingress, priority, subject, tier)',
      'b.yaml:9:22: spec.ingress[0].ports[0].port: must be between 1 and 65535, inclusive (got: 0)',
      'b.yaml:17:13: spec.priority: must be less than or equal to 1000 (allowed: 0..1000, got: 2000)',
      'b.yaml:20:3: spec.bogus: unknown field (allowed: egress, ingress, priority, subject, tier)',
    ]);
    expect(r.objects.map((o) => `${o.source.file}:${o.source.line} ${o.kind} ${o.valid}`)).toEqual([
      'b.yaml:1 NetworkPolicy false',
      'b.yaml:11 ClusterNetworkPolicy false',
      'a.yaml:1 ClusterNetworkPolicy false',
    ]);
    expect(r.world.networkPolicies).toEqual([]);
  });
  it('diagnostics carry code, severity and end position', () => {
    const [d] = loadWorldFromTexts([
      { file: 'w.yaml', text: cnp(`  tier: Admin\n  priority: 1001\n${SUBJECT}`) },
    ]).diagnostics;
    expect(d).toEqual({
      severity: 'error',
      code: 'PAL024',
      file: 'w.yaml',
      line: 7,
      col: 13,
      endLine: 7,
      endCol: 17,
      path: 'spec.priority',
      message: 'must be less than or equal to 1000 (allowed: 0..1000, got: 1001)',
    });
  });
});
