import { describe, expect, it } from 'vitest';
import { decodeEvent, type PalEvent } from '../../enforcer/src/flows/event-decode.js';
import { rfc3339Nano, toFlowRecord, hubbleLabels } from '../../enforcer/src/flows/record.js';
import { toOcsf } from '../../enforcer/src/flows/ocsf.js';
import { validateOcsfNetworkActivity } from '../../enforcer/src/flows/ocsf-validate.js';
import { buildEvent, type EventFields } from './event-builder.js';
import { ISOLATING, makeContext } from './flow-context.js';

function ev(f: EventFields): PalEvent {
  const r = decodeEvent(buildEvent(f));
  if (!r.ok) throw new Error(r.error);
  return r.event;
}

describe('native flow records', () => {
  it('explicit deny: DROPPED, POLICY_DENY, egress_denied_by and rule attribution', () => {
    const rec = toFlowRecord(
      ev({
        type: 1,
        direction: 0,
        verdict: 0,
        dropReason: 1,
        cookie: 11,
        dport: 5432,
        pktLen: 74,
        tsNs: 5n,
      }),
      makeContext(),
    );
    expect(rec.node_name).toBe('east/node-a');
    expect(rec.time).toBe('2023-11-14T22:13:20.000000005Z');
    const f = rec.flow;
    expect(f.verdict).toBe('DROPPED');
    expect(f.drop_reason_desc).toBe('POLICY_DENY');
    expect(f.traffic_direction).toBe('EGRESS');
    expect(f.is_reply).toBe(false);
    expect(f.Type).toBe('L3_L4');
    expect(f.IP).toEqual({
      source: '10.0.0.1',
      destination: '10.0.0.2',
      ipVersion: 'IPv4',
      encrypted: false,
    });
    expect(f.l4).toEqual({
      TCP: { source_port: 40000, destination_port: 5432, flags: { SYN: true } },
    });
    expect(f.source).toMatchObject({
      endpoint_id: 'east/shop/web-1',
      identity: 256,
      cluster_name: 'east',
      namespace: 'shop',
      pod_name: 'web-1',
      labels: ['k8s:app=web', 'k8s:tier=front'],
    });
    expect(f.egress_denied_by).toEqual([
      { kind: 'ClusterNetworkPolicy', namespace: '', name: 'deny-db', revision: '3' },
    ]);
    expect(f.egress_allowed_by).toBeUndefined();
    expect(f.rule).toEqual({ tier: 'Admin', priority: 10, index: 1, name: 'no-db', cookie: 11 });
    expect(f.traffic).toEqual({ packets: 1, bytes: 74 });
  });

  it('default deny names the isolating policy, never empty', () => {
    const f = toFlowRecord(
      ev({ type: 1, direction: 1, verdict: 0, dropReason: 0, cookie: 0 }),
      makeContext(),
    ).flow;
    expect(f.drop_reason_desc).toBe('POLICY_DENIED');
    expect(f.ingress_denied_by).toEqual([ISOLATING]);
    expect(f.rule).toMatchObject({ tier: 'Default', name: 'default-deny', cookie: 0 });
    // No isolation known (e.g. remote endpoint): still named.
    const g = toFlowRecord(
      ev({ type: 1, direction: 0, cookie: 0, saddr: '10.0.0.2', daddr: '10.0.0.1' }),
      makeContext(),
    ).flow;
    expect(g.egress_denied_by?.[0]?.name).toBe('default deny of tier NetworkPolicy');
    const h = toFlowRecord(ev({ type: 1, dropReason: 2, cookie: 0 }), makeContext()).flow;
    expect(h.egress_denied_by?.[0]).toMatchObject({ kind: 'FailClosed' });
  });

  it('new allowed connection: FORWARDED with ingress_allowed_by', () => {
    const f = toFlowRecord(
      ev({ type: 2, direction: 1, verdict: 1, cookie: 12, protocol: 17, dport: 53 }),
      makeContext(),
    ).flow;
    expect(f.verdict).toBe('FORWARDED');
    expect(f.drop_reason_desc).toBeUndefined();
    expect(f.ingress_allowed_by).toEqual([
      { kind: 'NetworkPolicy', namespace: 'shop', name: 'allow-web', revision: '7' },
    ]);
    expect(f.l4).toEqual({ UDP: { source_port: 40000, destination_port: 53 } });
  });

  it('audit disagreement carries the staged verdict and its rule', () => {
    const f = toFlowRecord(
      ev({ type: 3, direction: 1, verdict: 1, staged: 1, cookie: 12, stagedCookie: 13 }),
      makeContext(),
    ).flow;
    expect(f.verdict).toBe('AUDIT');
    expect(f.staged).toEqual({
      verdict: 'Deny',
      rule: { tier: 'Admin', priority: 5, index: 0, name: 'deny-all', cookie: 13 },
    });
  });

  it('unknown peers are ip: endpoints; ICMPv6 gets type/code; ids are deterministic', () => {
    const e = ev({ saddr: 'fd00::9', daddr: 'fd00::10', protocol: 58, sport: (128 << 8) | 0 });
    const a = toFlowRecord(e, makeContext()).flow;
    expect(a.source.endpoint_id).toBe('ip:fd00::9');
    expect(a.l4).toEqual({ ICMPv6: { type: 128, code: 0 } });
    expect(toFlowRecord(e, makeContext()).flow.uuid).toBe(a.uuid);
    expect(toFlowRecord(ev({ tsNs: 2n }), makeContext()).flow.uuid).not.toBe(a.uuid);
    expect(a.uuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('formats RFC 3339 with nanoseconds', () => {
    expect(rfc3339Nano(1_000_000_000_123_456_789n)).toBe('2001-09-09T01:46:40.123456789Z');
    expect(hubbleLabels({ b: '1', a: '2' })).toEqual(['k8s:a=2', 'k8s:b=1']);
  });
});

describe('OCSF Network Activity', () => {
  it('policy drop → Refuse / Denied / Blocked with attribution, valid', () => {
    const o = toOcsf(
      toFlowRecord(ev({ type: 1, cookie: 11, dropReason: 1, dport: 5432 }), makeContext()),
    );
    expect(validateOcsfNetworkActivity(o)).toEqual([]);
    expect(o).toMatchObject({
      class_uid: 4001,
      category_uid: 4,
      activity_id: 5,
      type_uid: 400105,
      action_id: 2,
      disposition_id: 2,
      metadata: { version: '1.8.0', profiles: ['security_control', 'container'] },
      connection_info: {
        protocol_num: 6,
        protocol_name: 'tcp',
        protocol_ver_id: 4,
        direction_id: 3,
        boundary_id: 2,
      },
      firewall_rule: {
        uid: 'ClusterNetworkPolicy//deny-db/Egress/1',
        name: 'no-db',
        type: 'ClusterNetworkPolicy',
        category: 'Admin',
        version: '3',
      },
      policy: { name: 'deny-db', uid: 'ClusterNetworkPolicy//deny-db', version: '3' },
      traffic: { packets: 1, bytes: 60, packets_out: 1, bytes_out: 60 },
      unmapped: { priority: 10, identity: { source: 256, destination: 257 } },
    });
    expect(o.time).toBe(1_700_000_001_000); // offset + default ts 1 s
    expect(o.src_endpoint).toEqual({
      ip: '10.0.0.1',
      port: 40000,
      name: 'web-1',
      uid: '1111-2222',
      container: {
        orchestrator: 'Kubernetes',
        pod_uuid: '1111-2222',
        labels: ['io.kubernetes.pod.namespace=shop', 'app=web', 'tier=front'],
      },
    });
    expect(o.observables).toEqual([
      { name: 'src_endpoint.ip', type_id: 2, type: 'IP Address', value: '10.0.0.1' },
      { name: 'dst_endpoint.ip', type_id: 2, type: 'IP Address', value: '10.0.0.2' },
    ]);
  });

  it('allowed → Open/Allowed/Allowed; audit → Observed/Detected; revoked → Reset', () => {
    const open = toOcsf(toFlowRecord(ev({ type: 2, verdict: 1, cookie: 12 }), makeContext()));
    expect([open.activity_id, open.action_id, open.disposition_id, open.type_uid]).toEqual([
      1, 1, 1, 400101,
    ]);
    const audit = toOcsf(
      toFlowRecord(ev({ type: 3, verdict: 1, staged: 1, stagedCookie: 13 }), makeContext()),
    );
    expect([audit.activity_id, audit.action_id, audit.disposition_id]).toEqual([1, 3, 15]);
    const reset = toOcsf(toFlowRecord(ev({ type: 4, verdict: 0, dropReason: 6 }), makeContext()));
    expect([reset.activity_id, reset.action_id, reset.disposition_id, reset.type_uid]).toEqual([
      3, 2, 2, 400103,
    ]);
    const ext = toOcsf(
      toFlowRecord(ev({ type: 2, verdict: 1, daddr: '198.51.100.7' }), makeContext()),
    );
    expect(ext.connection_info).toMatchObject({ direction_id: 2, boundary_id: 3 });
    for (const o of [open, audit, reset, ext]) expect(validateOcsfNetworkActivity(o)).toEqual([]);
  });

  it('the validator reports each missing required field', () => {
    const o = toOcsf(toFlowRecord(ev({}), makeContext())) as Record<string, unknown>;
    const broken = { ...o, type_uid: 400199, metadata: { product: { name: 'x' } } } as Record<
      string,
      unknown
    >;
    delete broken.severity_id;
    delete broken.src_endpoint;
    delete broken.dst_endpoint;
    broken.connection_info = { protocol_num: 6 };
    const errs = validateOcsfNetworkActivity(broken);
    expect(errs).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^type_uid:/),
        expect.stringMatching(/^severity_id:/),
        expect.stringMatching(/^metadata.version:/),
        expect.stringMatching(/^metadata.product.vendor_name:/),
        expect.stringMatching(/^src_endpoint\|dst_endpoint:/),
        expect.stringMatching(/^connection_info.direction_id:/),
      ]),
    );
    expect(validateOcsfNetworkActivity(null)).toEqual(['<root>: not an object']);
  });
});
