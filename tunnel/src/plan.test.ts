import { describe, expect, it } from 'vitest';
import { generateKeyPair, pairPresharedKey, type KeyPair } from './keys.js';
import { diffDevice, diffRoutes } from './diff.js';
import {
  epochSlot,
  planGateway,
  tunnelMtu,
  type Member,
  type OwnKey,
  type PlanInput,
} from './plan.js';
import type { DeviceState } from './uapi-protocol.js';

const opts = { ifaceBase: 'pwg', basePort: 51820, keepaliveSec: 2, underlayMtu: 1500 };
const keys = new Map<string, KeyPair>();
const kp = (name: string): KeyPair => {
  if (!keys.has(name)) keys.set(name, generateKeyPair());
  return keys.get(name) as KeyPair;
};
const member = (name: string, i: number, pod: string, extra: Partial<Member> = {}): Member => ({
  name,
  labels: {},
  podCIDRs: [pod],
  serviceCIDRs: [`10.${100 + i}.0.0/16`],
  nodeCIDRs: [`192.168.${i}.0/24`],
  endpointHost: `172.30.0.${i}`,
  keys: [{ epoch: 0, publicKey: kp(`${name}@0`).publicKey, port: 51820 }],
  routesEpoch: 0,
  joinRevision: i,
  ...extra,
});
const own = (name: string, epoch: number): OwnKey => ({ epoch, ...kp(`${name}@${epoch}`) });
const input = (members: Member[], extra: Partial<PlanInput> = {}): PlanInput => ({
  local: 'a',
  localEndpointHost: '172.30.0.1',
  meshEpoch: 0,
  members,
  ownKeys: [own('a', 0)],
  handshaken: new Map(),
  options: opts,
  ...extra,
});

describe('plan', () => {
  it('peers are the other clusters, AllowedIPs and routes their pod+service CIDRs (not node CIDRs)', () => {
    const p = planGateway(
      input([
        member('a', 1, '10.1.0.0/16'),
        member('b', 2, '10.2.0.0/16'),
        member('c', 3, '10.3.0.0/16'),
      ]),
    );
    expect(p.selfAdmitted).toBe(true);
    expect(p.devices).toHaveLength(1);
    const d = p.devices[0]!;
    expect([d.iface, d.listenPort, d.mtu]).toEqual(['pwga', 51820, 1440]);
    expect(d.peers.map((x) => [x.cluster, x.endpoint, x.allowedIPs])).toEqual([
      ['b', '172.30.0.2:51820', ['10.2.0.0/16', '10.102.0.0/16']],
      ['c', '172.30.0.3:51820', ['10.3.0.0/16', '10.103.0.0/16']],
    ]);
    expect(d.peers[0]!.presharedKey.reveal()).toBe(
      pairPresharedKey(kp('a@0').privateKey, kp('b@0').publicKey).reveal(),
    );
    expect(p.routes.map((r) => `${r.dst}>${r.iface}`)).toEqual([
      '10.2.0.0/16>pwga',
      '10.102.0.0/16>pwga',
      '10.3.0.0/16>pwga',
      '10.103.0.0/16>pwga',
    ]);
  });

  it('MTU: underlay - 60 over IPv4, - 80 over IPv6, or as configured', () => {
    expect(tunnelMtu(1500, '10.0.0.1')).toBe(1440);
    expect(tunnelMtu(1500, 'fd00::1')).toBe(1420);
    expect(tunnelMtu(9000, '[fd00::1]')).toBe(8920);
    const p = planGateway(
      input([member('a', 1, '10.1.0.0/16')], { options: { ...opts, mtu: 1300 } }),
    );
    expect(p.devices[0]!.mtu).toBe(1300);
  });

  it('a member overlapping an earlier one gets no peer and no route; a refused local plans nothing', () => {
    const ms = [
      member('a', 1, '10.1.0.0/16'),
      member('b', 2, '10.2.0.0/16'),
      member('late', 3, '10.2.128.0/17'),
    ];
    const p = planGateway(input(ms));
    expect(p.devices[0]!.peers.map((x) => x.cluster)).toEqual(['b']);
    expect(p.routes.every((r) => r.cluster === 'b')).toBe(true);
    expect(p.admission.refused.map((r) => r.cluster)).toEqual(['late']);
    const q = planGateway(input(ms, { local: 'late', ownKeys: [own('late', 0)] }));
    expect(q.selfAdmitted).toBe(false);
    expect(q.routes).toEqual([]);
    expect(q.devices[0]!.peers).toEqual([]);
  });

  it('rotation: both epochs live, routes move per peer only after its new-epoch handshake, old device goes when nobody needs it', () => {
    const b01 = member('b', 2, '10.2.0.0/16', {
      keys: [
        { epoch: 0, publicKey: kp('b@0').publicKey, port: 51820 },
        { epoch: 1, publicKey: kp('b@1').publicKey, port: 51821 },
      ],
    });
    const c0 = member('c', 3, '10.3.0.0/16');
    const base = { meshEpoch: 1, ownKeys: [own('a', 0), own('a', 1)] };
    const p1 = planGateway(input([member('a', 1, '10.1.0.0/16'), b01, c0], base));
    expect(
      p1.devices.map((d) => [d.epoch, d.iface, d.listenPort, d.peers.map((x) => x.cluster).join()]),
    ).toEqual([
      [0, 'pwga', 51820, 'b,c'],
      [1, 'pwgb', 51821, 'b'],
    ]);
    expect(new Set(p1.routes.map((r) => r.iface))).toEqual(new Set(['pwga']));
    expect(p1.routesEpoch).toBe(0);
    const p2 = planGateway(
      input([member('a', 1, '10.1.0.0/16'), b01, c0], {
        ...base,
        handshaken: new Map([[1, new Set(['b'])]]),
      }),
    );
    expect(p2.routes.map((r) => `${r.cluster}>${r.iface}`)).toEqual([
      'b>pwgb',
      'b>pwgb',
      'c>pwga',
      'c>pwga',
    ]);
    // Everyone moved: only epoch 1 remains.
    const b1 = { ...b01, keys: b01.keys.slice(1), routesEpoch: 1 };
    const c1 = {
      ...c0,
      keys: [{ epoch: 1, publicKey: kp('c@1').publicKey, port: 51821 }],
      routesEpoch: 1,
    };
    const p3 = planGateway(
      input([member('a', 1, '10.1.0.0/16'), b1, c1], {
        ...base,
        handshaken: new Map([[1, new Set(['b', 'c'])]]),
      }),
    );
    expect(p3.devices.map((d) => d.epoch)).toEqual([1]);
    expect(p3.routesEpoch).toBe(1);
    expect(epochSlot(opts, 2)).toEqual({ iface: 'pwga', port: 51820 });
  });
});

describe('diff', () => {
  const plan = planGateway(
    input([
      member('a', 1, '10.1.0.0/16'),
      member('b', 2, '10.2.0.0/16'),
      member('c', 3, '10.3.0.0/16'),
    ]),
  ).devices[0]!;
  const applied: DeviceState = {
    privateKey: kp('a@0').privateKey,
    listenPort: 51820,
    fwmark: 0,
    peers: plan.peers.map((p) => ({
      publicKey: p.publicKey,
      hasPresharedKey: true,
      endpoint: p.endpoint,
      lastHandshakeSec: 5,
      txBytes: 1,
      rxBytes: 1,
      persistentKeepalive: 2,
      allowedIPs: [...p.allowedIPs].reverse(),
    })),
  };

  it('an empty device gets the key, port and every peer', () => {
    const cfg = diffDevice({ privateKey: null, listenPort: 0, fwmark: 0, peers: [] }, plan)!;
    expect(cfg.privateKey?.reveal()).toBe(kp('a@0').privateKey.reveal());
    expect(cfg.listenPort).toBe(51820);
    expect(cfg.peers?.map((p) => [p.updateOnly ?? false, p.replaceAllowedIPs])).toEqual([
      [false, true],
      [false, true],
    ]);
  });

  it('an up-to-date device needs nothing (allowed IP order does not matter)', () => {
    expect(diffDevice(applied, plan)).toBeNull();
  });

  it('a changed CIDR or endpoint is one update_only change to that peer, nothing else', () => {
    const moved = {
      ...plan,
      peers: plan.peers.map((p) =>
        p.cluster === 'b' ? { ...p, allowedIPs: ['10.2.0.0/16'], endpoint: '172.30.0.9:51820' } : p,
      ),
    };
    const cfg = diffDevice(applied, moved)!;
    expect(cfg.privateKey).toBeUndefined();
    expect(cfg.peers).toEqual([
      {
        publicKey: plan.peers[0]!.publicKey,
        updateOnly: true,
        endpoint: '172.30.0.9:51820',
        replaceAllowedIPs: true,
        allowedIPs: ['10.2.0.0/16'],
      },
    ]);
  });

  it('a peer that left is removed, others untouched', () => {
    const fewer = { ...plan, peers: plan.peers.slice(0, 1) };
    expect(diffDevice(applied, fewer)!.peers).toEqual([
      { publicKey: plan.peers[1]!.publicKey, remove: true },
    ]);
  });

  it('routes: replace moves atomically, deletes come last, unchanged ones untouched', () => {
    const ch = diffRoutes(
      [
        { dst: '10.2.0.0/16', iface: 'pwga' },
        { dst: '10.3.0.0/16', iface: 'pwga' },
        { dst: '10.9.0.0/16', iface: 'pwga' },
      ],
      [
        { dst: '10.2.0.0/16', iface: 'pwga', cluster: 'b' },
        { dst: '10.3.0.0/16', iface: 'pwgb', cluster: 'c' },
        { dst: '10.4.0.0/16', iface: 'pwga', cluster: 'd' },
      ],
    );
    expect(ch).toEqual([
      { op: 'replace', dst: '10.3.0.0/16', iface: 'pwgb' },
      { op: 'replace', dst: '10.4.0.0/16', iface: 'pwga' },
      { op: 'delete', dst: '10.9.0.0/16', iface: 'pwga' },
    ]);
  });
});
