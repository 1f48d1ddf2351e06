/**
 * Schemas of the built-in kinds the loader reads: NetworkPolicy
 * (networking.k8s.io/v1) and Namespace, Pod, Node (v1). Their structure comes
 * from k8s.io/api; the rules the API server enforces in Go
 * (pkg/apis/networking/validation, pkg/apis/core/validation) are the native
 * checks attached with `x-palisade-check`.
 */
import { cidrContainsCidr, parseCidr, parseIp } from '../../cel/net.js';
import { LABELS, LABEL_SELECTOR, objectMeta, topLevel } from './common.js';
import { portName, portNumber } from './k8s-names.js';
import type { NativeCheck, NativeIssue, Schema } from './types.js';

const str: Schema = { type: 'string' };
const bool: Schema = { type: 'boolean' };
const int32: Schema = { type: 'integer', format: 'int32' };
const any: Schema = { 'x-kubernetes-preserve-unknown-fields': true };
const PROTOCOL: Schema = { type: 'string', enum: ['TCP', 'UDP', 'SCTP'] };

// -------------------------------------------------------------- NetworkPolicy

/** ValidateNetworkPolicyPort (numeric/named port, endPort). */
const checkNpPort: NativeCheck = (v) => {
  const p = v as { port?: number | string; endPort?: number };
  const out: NativeIssue[] = [];
  if (p.port !== undefined) {
    if (typeof p.port === 'number') {
      for (const m of portNumber(p.port))
        out.push({ path: ['port'], kind: 'range', message: `${m} (got: ${p.port})` });
      if (p.endPort !== undefined) {
        if (p.endPort < p.port) {
          out.push({
            path: ['endPort'],
            kind: 'rule',
            message: `must be greater than or equal to \`port\` (allowed: ${p.port}..65535, got: ${p.endPort})`,
          });
        }
        for (const m of portNumber(p.endPort))
          out.push({ path: ['endPort'], kind: 'range', message: `${m} (got: ${p.endPort})` });
      }
    } else {
      if (p.endPort !== undefined) {
        out.push({
          path: ['endPort'],
          kind: 'rule',
          message: `may not be specified when \`port\` is non-numeric (got: ${p.endPort})`,
        });
      }
      for (const m of portName(p.port))
        out.push({
          path: ['port'],
          kind: 'format',
          message: `${m} (got: ${JSON.stringify(p.port)})`,
        });
    }
  } else if (p.endPort !== undefined) {
    out.push({
      path: ['endPort'],
      kind: 'rule',
      message: `may not be specified when \`port\` is not specified (got: ${p.endPort})`,
    });
  }
  return out;
};

/** ValidateNetworkPolicyPeer: at least one selector; ipBlock alone. */
const checkNpPeer: NativeCheck = (v) => {
  const p = v as Record<string, unknown>;
  const n = ['podSelector', 'namespaceSelector', 'ipBlock'].filter((k) => k in p).length;
  if (n === 0) {
    return [
      {
        path: [],
        kind: 'required',
        message: 'must specify a peer (allowed: podSelector, namespaceSelector, ipBlock)',
      },
    ];
  }
  if (n > 1 && 'ipBlock' in p) {
    return [
      {
        path: [],
        kind: 'rule',
        message: `may not specify both ipBlock and another peer (got: ${Object.keys(p).join(', ')})`,
      },
    ];
  }
  return [];
};

/** ValidateIPBlock: cidr and except are CIDRs, except strictly inside cidr. */
const checkIpBlock: NativeCheck = (v) => {
  const b = v as { cidr: string; except?: string[] };
  const out: NativeIssue[] = [];
  if (b.cidr === '')
    return [{ path: ['cidr'], kind: 'required', message: 'required field is missing' }];
  const outer = parseCidr(b.cidr);
  if (!outer) {
    return [
      {
        path: ['cidr'],
        kind: 'format',
        message: `not a valid CIDR (allowed: e.g. 10.9.8.0/24 or 2001:db8::/64, got: ${JSON.stringify(b.cidr)})`,
      },
    ];
  }
  (b.except ?? []).forEach((e, i) => {
    const inner = parseCidr(e);
    if (!inner) {
      out.push({
        path: ['except', i],
        kind: 'format',
        message: `not a valid CIDR (allowed: e.g. 10.9.8.0/24 or 2001:db8::/64, got: ${JSON.stringify(e)})`,
      });
    } else if (!cidrContainsCidr(outer, inner) || inner.prefixLength <= outer.prefixLength) {
      out.push({
        path: ['except', i],
        kind: 'rule',
        message: `must be a strict subset of \`cidr\` (allowed: inside ${b.cidr}, got: ${JSON.stringify(e)})`,
      });
    }
  });
  return out;
};

const checkPolicyTypes: NativeCheck = (v) =>
  (v as string[]).length > 2
    ? [
        {
          path: [],
          kind: 'rule',
          message: `may not specify more than two policyTypes (got: ${(v as string[]).length})`,
        },
      ]
    : [];

const NP_PORT: Schema = {
  type: 'object',
  properties: { protocol: PROTOCOL, port: { 'x-kubernetes-int-or-string': true }, endPort: int32 },
  'x-palisade-check': checkNpPort,
};
const NP_PEER: Schema = {
  type: 'object',
  properties: {
    podSelector: LABEL_SELECTOR,
    namespaceSelector: LABEL_SELECTOR,
    ipBlock: {
      type: 'object',
      required: ['cidr'],
      properties: { cidr: str, except: { type: 'array', items: str } },
      'x-palisade-check': checkIpBlock,
    },
  },
  'x-palisade-check': checkNpPeer,
};

const NP_SPEC: Schema = {
  type: 'object',
  properties: {
    podSelector: LABEL_SELECTOR,
    policyTypes: {
      type: 'array',
      items: { type: 'string', enum: ['Ingress', 'Egress'] },
      'x-palisade-check': checkPolicyTypes,
    },
    ingress: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          from: { type: 'array', items: NP_PEER },
          ports: { type: 'array', items: NP_PORT },
        },
      },
    },
    egress: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          to: { type: 'array', items: NP_PEER },
          ports: { type: 'array', items: NP_PORT },
        },
      },
    },
  },
};

export const NETWORK_POLICY: Schema = topLevel(objectMeta('dns1123-subdomain', true), {
  spec: NP_SPEC,
  status: any,
});

// ------------------------------------------------------------------- core/v1

export const NAMESPACE: Schema = topLevel(objectMeta('dns1123-label', false), {
  spec: { type: 'object', properties: { finalizers: { type: 'array', items: str } } },
  status: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
});

const checkContainerPort: NativeCheck = (v) => {
  const p = v as { containerPort: number; hostPort?: number; name?: string };
  const out: NativeIssue[] = [];
  for (const m of portNumber(p.containerPort))
    out.push({ path: ['containerPort'], kind: 'range', message: `${m} (got: ${p.containerPort})` });
  if (p.hostPort !== undefined && p.hostPort !== 0) {
    for (const m of portNumber(p.hostPort))
      out.push({ path: ['hostPort'], kind: 'range', message: `${m} (got: ${p.hostPort})` });
  }
  if (p.name !== undefined)
    for (const m of portName(p.name))
      out.push({
        path: ['name'],
        kind: 'format',
        message: `${m} (got: ${JSON.stringify(p.name)})`,
      });
  return out;
};

/** Every field of core/v1 Container: only `ports` is read, the rest must merely be known. */
const CONTAINER_FIELDS = [
  'name',
  'image',
  'command',
  'args',
  'workingDir',
  'envFrom',
  'env',
  'resources',
  'resizePolicy',
  'restartPolicy',
  'restartPolicyRules',
  'volumeMounts',
  'volumeDevices',
  'livenessProbe',
  'readinessProbe',
  'startupProbe',
  'lifecycle',
  'terminationMessagePath',
  'terminationMessagePolicy',
  'imagePullPolicy',
  'securityContext',
  'stdin',
  'stdinOnce',
  'tty',
];
const CONTAINER: Schema = {
  type: 'object',
  required: ['name'],
  properties: {
    ...Object.fromEntries(CONTAINER_FIELDS.map((f) => [f, any])),
    name: { type: 'string', 'x-palisade-format': 'dns1123-label' },
    ports: {
      type: 'array',
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['containerPort', 'protocol'],
      items: {
        type: 'object',
        required: ['containerPort'],
        properties: {
          name: str,
          containerPort: int32,
          protocol: { ...PROTOCOL, default: 'TCP' },
          hostPort: int32,
          hostIP: str,
        },
        'x-palisade-check': checkContainerPort,
      },
    },
  },
};

/** Every field of core/v1 PodSpec (strict decoding); the loader reads a few of them. */
const POD_SPEC_FIELDS = [
  'volumes',
  'ephemeralContainers',
  'restartPolicy',
  'terminationGracePeriodSeconds',
  'activeDeadlineSeconds',
  'dnsPolicy',
  'nodeSelector',
  'serviceAccountName',
  'serviceAccount',
  'automountServiceAccountToken',
  'hostPID',
  'hostIPC',
  'shareProcessNamespace',
  'securityContext',
  'imagePullSecrets',
  'hostname',
  'subdomain',
  'affinity',
  'schedulerName',
  'tolerations',
  'hostAliases',
  'priorityClassName',
  'priority',
  'dnsConfig',
  'readinessGates',
  'runtimeClassName',
  'enableServiceLinks',
  'preemptionPolicy',
  'overhead',
  'topologySpreadConstraints',
  'setHostnameAsFQDN',
  'os',
  'hostUsers',
  'schedulingGates',
  'resourceClaims',
  'resources',
  'hostnameOverride',
];
const IP_ENTRY: Schema = {
  type: 'object',
  required: ['ip'],
  properties: { ip: { type: 'string', 'x-palisade-format': 'ip' } },
};

export const POD: Schema = topLevel(
  objectMeta('dns1123-subdomain', true),
  {
    spec: {
      type: 'object',
      required: ['containers'],
      properties: {
        ...Object.fromEntries(POD_SPEC_FIELDS.map((f) => [f, any])),
        nodeName: str,
        hostNetwork: bool,
        containers: { type: 'array', minItems: 1, items: CONTAINER },
        initContainers: { type: 'array', items: CONTAINER },
      },
    },
    status: {
      type: 'object',
      'x-kubernetes-preserve-unknown-fields': true,
      properties: {
        podIP: { type: 'string', 'x-palisade-format': 'ip' },
        podIPs: { type: 'array', maxItems: 2, items: IP_ENTRY },
        hostIP: { type: 'string', 'x-palisade-format': 'ip' },
        hostIPs: { type: 'array', items: IP_ENTRY },
      },
    },
  },
  ['spec'],
);

/** The loader reads InternalIP/ExternalIP addresses as the node's IPs: they must be IPs. */
const checkNodeAddress: NativeCheck = (v) => {
  const a = v as { type: string; address: string };
  if ((a.type === 'InternalIP' || a.type === 'ExternalIP') && !parseIp(a.address)) {
    return [
      {
        path: ['address'],
        kind: 'format',
        message: `must be a valid IP address for type ${a.type} (allowed: e.g. 10.9.8.7 or 2001:db8::ffff, got: ${JSON.stringify(a.address)})`,
      },
    ];
  }
  return [];
};

export const NODE: Schema = topLevel(objectMeta('dns1123-subdomain', false), {
  spec: {
    type: 'object',
    properties: {
      podCIDR: { type: 'string', 'x-palisade-format': 'cidr' },
      podCIDRs: {
        type: 'array',
        maxItems: 2,
        items: { type: 'string', 'x-palisade-format': 'cidr' },
      },
      providerID: str,
      unschedulable: bool,
      taints: {
        type: 'array',
        items: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
      },
      configSource: any,
      externalID: str,
    },
  },
  status: {
    type: 'object',
    'x-kubernetes-preserve-unknown-fields': true,
    properties: {
      addresses: {
        type: 'array',
        items: {
          type: 'object',
          required: ['type', 'address'],
          properties: { type: str, address: str },
          'x-palisade-check': checkNodeAddress,
        },
      },
    },
  },
});

export { LABELS };
