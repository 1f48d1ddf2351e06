/**
 * OCSF Network Activity (class 4001, schema 1.8.0) from a native flow record
 * (FORMATS.md "OCSF"). Kubernetes has no OCSF namespace field; we carry it as
 * the container label `io.kubernetes.pod.namespace=<ns>`.
 */
import type { Flow, FlowEndpoint, FlowRecord, FlowRule, PolicyRef } from './record.js';

export const OCSF_VERSION = '1.8.0';
export const OCSF_CLASS_UID = 4001;
export const OCSF_CATEGORY_UID = 4;

export interface OcsfProduct {
  readonly name: string;
  readonly vendor_name: string;
  readonly version: string;
}

export const PALISADE_PRODUCT: OcsfProduct = {
  name: 'Palisade',
  vendor_name: 'Palisade',
  version: '0.1.0',
};

const ACTIVITY = { Open: 1, Reset: 3, Refuse: 5 } as const;
const ACTION = { Allowed: 1, Denied: 2, Observed: 3 } as const;
const DISPOSITION = { Allowed: 1, Blocked: 2, Detected: 15 } as const;

export type OcsfEvent = Record<string, unknown> & {
  activity_id: number;
  category_uid: number;
  class_uid: number;
  type_uid: number;
  time: number;
  severity_id: number;
};

function portsOf(f: Flow): { src?: number; dst?: number; proto: number; name: string } {
  const l4 = f.l4;
  if ('TCP' in l4)
    return { src: l4.TCP.source_port, dst: l4.TCP.destination_port, proto: 6, name: 'tcp' };
  if ('UDP' in l4)
    return { src: l4.UDP.source_port, dst: l4.UDP.destination_port, proto: 17, name: 'udp' };
  if ('SCTP' in l4)
    return { src: l4.SCTP.source_port, dst: l4.SCTP.destination_port, proto: 132, name: 'sctp' };
  if ('ICMPv4' in l4) return { proto: 1, name: 'icmp' };
  if ('ICMPv6' in l4) return { proto: 58, name: 'ipv6-icmp' };
  return { proto: l4.other.protocol, name: `proto-${l4.other.protocol}` };
}

function endpointOf(
  ep: FlowEndpoint,
  ip: string,
  port: number | undefined,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ip };
  if (port !== undefined) out.port = port;
  if (ep.pod_name) {
    out.name = ep.pod_name;
    if (ep.pod_uid) out.uid = ep.pod_uid;
    out.container = {
      orchestrator: 'Kubernetes',
      ...(ep.pod_uid ? { pod_uuid: ep.pod_uid } : {}),
      labels: [
        `io.kubernetes.pod.namespace=${ep.namespace}`,
        ...ep.labels.map((l) => l.replace(/^k8s:/, '')),
      ],
    };
  }
  return out;
}

const isInternal = (ep: FlowEndpoint): boolean => !ep.endpoint_id.startsWith('ip:');

/** OCSF connection direction: 3 Lateral pod↔pod, 1 Inbound / 2 Outbound with the outside. */
function directionId(f: Flow): number {
  const s = isInternal(f.source);
  const d = isInternal(f.destination);
  if (s && d) return 3;
  if (d) return 1;
  if (s) return 2;
  return 0;
}

function decidingPolicy(f: Flow): PolicyRef | undefined {
  const lists = [
    f.egress_denied_by,
    f.ingress_denied_by,
    f.egress_allowed_by,
    f.ingress_allowed_by,
  ];
  for (const l of lists) if (l && l.length > 0) return l[0];
  return undefined;
}

function firewallRule(f: Flow, p: PolicyRef | undefined, rule: FlowRule): Record<string, unknown> {
  const dir = f.traffic_direction === 'EGRESS' ? 'Egress' : 'Ingress';
  const kind = p?.kind ?? 'Default';
  const ns = p?.namespace ?? '';
  const name = p?.name ?? rule.name;
  return {
    uid: `${kind}/${ns}/${name}/${dir}/${rule.index}`,
    name: rule.name || `${name}[${rule.index}]`,
    type: kind,
    category: rule.tier,
    version: p?.revision ?? '',
    condition: f.verdict === 'FORWARDED' ? 'allow' : f.verdict === 'AUDIT' ? 'audit' : 'deny',
  };
}

/** Maps one native record to an OCSF Network Activity event. */
export function toOcsf(rec: FlowRecord, product: OcsfProduct = PALISADE_PRODUCT): OcsfEvent {
  const f = rec.flow;
  let activity: number;
  let action: number;
  let disposition: number;
  if (f.verdict === 'AUDIT') {
    activity = f.staged?.verdict === 'Deny' ? ACTIVITY.Open : ACTIVITY.Refuse;
    action = ACTION.Observed;
    disposition = DISPOSITION.Detected;
  } else if (f.verdict === 'FORWARDED') {
    activity = ACTIVITY.Open;
    action = ACTION.Allowed;
    disposition = DISPOSITION.Allowed;
  } else {
    activity = f.event_type === 'REVOKED' ? ACTIVITY.Reset : ACTIVITY.Refuse;
    action = ACTION.Denied;
    disposition = DISPOSITION.Blocked;
  }
  const activityName = activity === 1 ? 'Open' : activity === 3 ? 'Reset' : 'Refuse';
  const severity = f.verdict === 'FORWARDED' ? 1 : 2;
  const ports = portsOf(f);
  const p = decidingPolicy(f);
  const timeMs = Date.parse(f.time);
  const out: OcsfEvent = {
    activity_id: activity,
    activity_name: activityName,
    category_uid: OCSF_CATEGORY_UID,
    category_name: 'Network Activity',
    class_uid: OCSF_CLASS_UID,
    class_name: 'Network Activity',
    type_uid: OCSF_CLASS_UID * 100 + activity,
    type_name: `Network Activity: ${activityName}`,
    time: timeMs,
    severity_id: severity,
    severity: severity === 1 ? 'Informational' : 'Low',
    action_id: action,
    action: action === 1 ? 'Allowed' : action === 2 ? 'Denied' : 'Observed',
    disposition_id: disposition,
    disposition: disposition === 1 ? 'Allowed' : disposition === 2 ? 'Blocked' : 'Detected',
    status_id: 1,
    status: 'Success',
    message: `${f.source.endpoint_id} -> ${f.destination.endpoint_id} ${ports.name}${ports.dst !== undefined ? `/${ports.dst}` : ''} ${f.verdict}`,
    metadata: {
      version: OCSF_VERSION,
      product,
      profiles: ['security_control', 'container'],
      uid: f.uuid,
      original_time: f.time,
      log_name: 'flows',
    },
    src_endpoint: endpointOf(f.source, f.IP.source, ports.src),
    dst_endpoint: endpointOf(f.destination, f.IP.destination, ports.dst),
    connection_info: {
      protocol_num: ports.proto,
      protocol_name: ports.name,
      protocol_ver_id: f.IP.ipVersion === 'IPv4' ? 4 : 6,
      direction_id: directionId(f),
      boundary_id: isInternal(f.source) && isInternal(f.destination) ? 2 : 3,
    },
    traffic: {
      packets: f.traffic.packets,
      bytes: f.traffic.bytes,
      packets_out: f.traffic.packets,
      bytes_out: f.traffic.bytes,
    },
    firewall_rule: firewallRule(f, p, f.rule),
    ...(p
      ? { policy: { name: p.name, uid: `${p.kind}/${p.namespace}/${p.name}`, version: p.revision } }
      : {}),
    observables: [
      { name: 'src_endpoint.ip', type_id: 2, type: 'IP Address', value: f.IP.source },
      { name: 'dst_endpoint.ip', type_id: 2, type: 'IP Address', value: f.IP.destination },
    ],
    unmapped: {
      node_name: rec.node_name,
      cluster: { source: f.source.cluster_name, destination: f.destination.cluster_name },
      identity: { source: f.source.identity, destination: f.destination.identity },
      namespace: { source: f.source.namespace, destination: f.destination.namespace },
      tier: f.rule.tier,
      priority: f.rule.priority,
      cookie: f.rule.cookie,
      traffic_direction: f.traffic_direction,
      verdict: f.verdict,
      ...(f.drop_reason_desc ? { drop_reason: f.drop_reason_desc } : {}),
      ...(f.staged ? { staged: f.staged } : {}),
      datapath_revision: f.datapath_revision,
    },
  };
  return out;
}
