/**
 * Schemas of the upstream network-policy-api CRDs, authored from the API
 * (sigs.k8s.io/network-policy-api): ClusterNetworkPolicy v1alpha2 (v0.2.0)
 * and AdminNetworkPolicy / BaselineAdminNetworkPolicy v1alpha1 (the last CRDs
 * that served them, v0.1.7). Limits and CEL rules are those of the CRDs.
 */
import { LABEL_SELECTOR, objectMeta, topLevel } from './common.js';
import type { Schema } from './types.js';

const str: Schema = { type: 'string' };
const port: Schema = { type: 'integer', format: 'int32', minimum: 1, maximum: 65535 };
const exactlyOne = { minProperties: 1, maxProperties: 1 } as const;

const CIDR: Schema = {
  type: 'string',
  maxLength: 43,
  'x-kubernetes-validations': [{ rule: 'isCIDR(self)', message: 'Invalid CIDR format provided' }],
};
export const DOMAIN_NAME_PATTERN =
  '^(\\*\\.)?([a-zA-z0-9]([-a-zA-Z0-9_]*[a-zA-Z0-9])?\\.)+[a-zA-z0-9]([-a-zA-Z0-9_]*[a-zA-Z0-9])?\\.?$';

function setOf(items: Schema, max: number): Schema {
  return { type: 'array', items, minItems: 1, maxItems: max, 'x-kubernetes-list-type': 'set' };
}

// ------------------------------------------------------------ v1alpha2 CNP

const cnpNamespacedPod: Schema = {
  type: 'object',
  required: ['podSelector'],
  properties: { namespaceSelector: LABEL_SELECTOR, podSelector: LABEL_SELECTOR },
};

const cnpPort: Schema = {
  type: 'object',
  ...exactlyOne,
  properties: {
    number: port,
    range: {
      type: 'object',
      required: ['end', 'start'],
      properties: { start: port, end: port },
      'x-kubernetes-validations': [
        { rule: 'self.start < self.end', message: 'Start port must be less than End port' },
      ],
    },
  },
};
const cnpL4: Schema = {
  type: 'object',
  minProperties: 1,
  properties: { destinationPort: cnpPort },
};

export const CNP_PROTOCOL: Schema = {
  type: 'object',
  ...exactlyOne,
  properties: { tcp: cnpL4, udp: cnpL4, sctp: cnpL4, destinationNamedPort: str },
};

const cnpProtocols: Schema = { type: 'array', items: CNP_PROTOCOL, minItems: 1, maxItems: 25 };
const cnpAction: Schema = { type: 'string', enum: ['Accept', 'Deny', 'Pass'] };
const ruleName: Schema = { type: 'string', maxLength: 100 };

export const CNP_INGRESS_PEER: Schema = {
  type: 'object',
  ...exactlyOne,
  properties: { namespaces: LABEL_SELECTOR, pods: cnpNamespacedPod },
};
export const CNP_EGRESS_PEER: Schema = {
  type: 'object',
  ...exactlyOne,
  properties: {
    namespaces: LABEL_SELECTOR,
    pods: cnpNamespacedPod,
    nodes: LABEL_SELECTOR,
    networks: setOf(CIDR, 25),
    domainNames: setOf({ type: 'string', pattern: DOMAIN_NAME_PATTERN }, 25),
  },
};

const CNP_NAMED_PORT_RULE = {
  rule: '!(self.to.exists(peer, has(peer.networks) || has(peer.nodes) || has(peer.domainNames)) && has(self.protocols) && self.protocols.exists(protocol, has(protocol.destinationNamedPort)))',
  message:
    'networks/nodes/domainNames peer cannot be set with namedPorts since there are no namedPorts for networks/nodes/domainNames',
};

export const CNP_SPEC: Schema = {
  type: 'object',
  required: ['priority', 'subject', 'tier'],
  properties: {
    tier: { type: 'string', enum: ['Admin', 'Baseline'] },
    priority: { type: 'integer', format: 'int32', minimum: 0, maximum: 1000 },
    subject: {
      type: 'object',
      ...exactlyOne,
      properties: { namespaces: LABEL_SELECTOR, pods: cnpNamespacedPod },
    },
    ingress: {
      type: 'array',
      maxItems: 25,
      items: {
        type: 'object',
        required: ['action', 'from'],
        properties: {
          name: ruleName,
          action: cnpAction,
          from: { type: 'array', items: CNP_INGRESS_PEER, minItems: 1, maxItems: 25 },
          protocols: cnpProtocols,
        },
      },
    },
    egress: {
      type: 'array',
      maxItems: 25,
      items: {
        type: 'object',
        required: ['action', 'to'],
        properties: {
          name: ruleName,
          action: cnpAction,
          to: { type: 'array', items: CNP_EGRESS_PEER, minItems: 1, maxItems: 25 },
          protocols: cnpProtocols,
        },
        'x-kubernetes-validations': [CNP_NAMED_PORT_RULE],
      },
    },
  },
};

const CONDITIONS: Schema = { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };

export const CLUSTER_NETWORK_POLICY: Schema = topLevel(
  objectMeta('dns1123-subdomain', false),
  { spec: CNP_SPEC, status: CONDITIONS },
  ['spec'],
);

// --------------------------------------------------------- v1alpha1 ANP/BANP

const anpNamespacedPod: Schema = {
  type: 'object',
  required: ['namespaceSelector', 'podSelector'],
  properties: { namespaceSelector: LABEL_SELECTOR, podSelector: LABEL_SELECTOR },
};
/**
 * v1.Protocol has no enum in the CRD (the API server accepts any string);
 * the loader only knows TCP, UDP and SCTP, so it refuses others (docs/validation.md).
 */
const protocol: Schema = { type: 'string', default: 'TCP', enum: ['TCP', 'UDP', 'SCTP'] };
const ANP_PORT: Schema = {
  type: 'object',
  ...exactlyOne,
  properties: {
    portNumber: { type: 'object', required: ['port', 'protocol'], properties: { protocol, port } },
    namedPort: str,
    portRange: {
      type: 'object',
      required: ['end', 'start'],
      properties: { protocol, start: port, end: port },
    },
  },
};
const anpPorts: Schema = { type: 'array', items: ANP_PORT, minItems: 1, maxItems: 100 };

function anpSpec(baseline: boolean): Schema {
  const action: Schema = {
    type: 'string',
    enum: baseline ? ['Allow', 'Deny'] : ['Allow', 'Deny', 'Pass'],
  };
  const ingressPeer: Schema = {
    type: 'object',
    ...exactlyOne,
    properties: { namespaces: LABEL_SELECTOR, pods: anpNamespacedPod },
  };
  const egressPeer: Schema = {
    type: 'object',
    ...exactlyOne,
    properties: {
      namespaces: LABEL_SELECTOR,
      pods: anpNamespacedPod,
      nodes: LABEL_SELECTOR,
      networks: setOf(CIDR, 25),
      ...(baseline
        ? {}
        : { domainNames: setOf({ type: 'string', pattern: DOMAIN_NAME_PATTERN }, 25) }),
    },
  };
  const namedPortRule = baseline
    ? {
        rule: '!(self.to.exists(peer, has(peer.networks) || has(peer.nodes)) && has(self.ports) && self.ports.exists(port, has(port.namedPort)))',
        message:
          'networks/nodes peer cannot be set with namedPorts since there are no namedPorts for networks/nodes',
      }
    : {
        rule: '!(self.to.exists(peer, has(peer.networks) || has(peer.nodes) || has(peer.domainNames)) && has(self.ports) && self.ports.exists(port, has(port.namedPort)))',
        message:
          'networks/nodes/domainNames peer cannot be set with namedPorts since there are no namedPorts for networks/nodes/domainNames',
      };
  return {
    type: 'object',
    required: baseline ? ['subject'] : ['priority', 'subject'],
    properties: {
      ...(baseline
        ? {}
        : { priority: { type: 'integer', format: 'int32', minimum: 0, maximum: 1000 } }),
      subject: {
        type: 'object',
        ...exactlyOne,
        properties: { namespaces: LABEL_SELECTOR, pods: anpNamespacedPod },
      },
      ingress: {
        type: 'array',
        maxItems: 100,
        items: {
          type: 'object',
          required: ['action', 'from'],
          properties: {
            name: ruleName,
            action,
            from: { type: 'array', items: ingressPeer, minItems: 1, maxItems: 100 },
            ports: anpPorts,
          },
        },
      },
      egress: {
        type: 'array',
        maxItems: 100,
        items: {
          type: 'object',
          required: ['action', 'to'],
          properties: {
            name: ruleName,
            action,
            to: { type: 'array', items: egressPeer, minItems: 1, maxItems: 100 },
            ports: anpPorts,
          },
          'x-kubernetes-validations': [namedPortRule],
        },
      },
    },
  };
}

export const ADMIN_NETWORK_POLICY: Schema = topLevel(
  objectMeta('dns1123-subdomain', false),
  { spec: anpSpec(false), status: CONDITIONS },
  ['spec'],
);

export const BASELINE_ADMIN_NETWORK_POLICY: Schema = {
  ...topLevel(objectMeta('dns1123-subdomain', false), { spec: anpSpec(true), status: CONDITIONS }, [
    'spec',
  ]),
  'x-kubernetes-validations': [
    {
      rule: "self.metadata.name == 'default'",
      fieldPath: '.metadata.name',
      message:
        'Only one baseline admin network policy with metadata.name="default" can be created in the cluster',
    },
  ],
};
