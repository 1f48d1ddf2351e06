import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parsePrefix, prefixOverlap } from './cidr.js';
import { admitClusters, findConflicts, formatConflicts } from './cidr-conflicts.js';

const c = (name: string, pod: string[], svc: string[] = [], node: string[] = []) => ({
  name,
  podCIDRs: pod,
  serviceCIDRs: svc,
  nodeCIDRs: node,
});

describe('CIDR parsing', () => {
  it('canonicalises IPv4 and IPv6 and rejects host bits', () => {
    expect(parsePrefix('10.1.0.0/16').text).toBe('10.1.0.0/16');
    expect(parsePrefix('fd00:0:0:1::/64').text).toBe('fd00:0:0:1::/64');
    expect(parsePrefix('FD00:0000::/32').text).toBe('fd00::/32');
    expect(() => parsePrefix('10.1.0.1/16')).toThrow(/host bits set \(network is 10.1.0.0\/16\)/);
    expect(() => parsePrefix('10.1.0.0/33')).toThrow(/prefix length/);
    expect(() => parsePrefix('banana')).toThrow(/not an IP address/);
  });

  it('law: two prefixes overlap iff one contains the other (IPv4)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 32 - 1 }),
        fc.integer({ min: 8, max: 32 }),
        fc.integer({ min: 0, max: 2 ** 32 - 1 }),
        fc.integer({ min: 8, max: 32 }),
        (x, lx, y, ly) => {
          const txt = (v: number, l: number) => {
            const net = l === 0 ? 0 : ((v >>> (32 - l)) << (32 - l)) >>> 0;
            return `${net >>> 24}.${(net >>> 16) & 255}.${(net >>> 8) & 255}.${net & 255}/${l}`;
          };
          const a = parsePrefix(txt(x, lx));
          const b = parsePrefix(txt(y, ly));
          const o = prefixOverlap(a, b);
          const shorter = Math.min(lx, ly);
          const sameTop = shorter === 0 || x >>> (32 - shorter) === y >>> (32 - shorter);
          expect(o !== null).toBe(sameTop);
          if (o) expect(o.length).toBe(Math.max(lx, ly));
        },
      ),
    );
  });
});

describe('CIDR conflicts between clusters', () => {
  it('reports which clusters, which ranges and the overlap, v4 and v6, every kind', () => {
    const r = findConflicts([
      c('east', ['10.1.0.0/16', 'fd00:1::/48'], ['10.96.0.0/16'], ['192.168.1.0/24']),
      c('west', ['10.1.128.0/17', 'fd00:2::/48'], ['10.97.0.0/16'], ['192.168.0.0/16']),
      c('north', ['10.3.0.0/16', 'fd00:1:0:5::/64'], ['10.96.0.0/12']),
    ]);
    expect(r.invalid).toEqual([]);
    expect(formatConflicts(r)).toEqual([
      'conflict: cluster east pod CIDR 10.1.0.0/16 overlaps cluster west pod CIDR 10.1.128.0/17 (overlap 10.1.128.0/17)',
      'conflict: cluster east node CIDR 192.168.1.0/24 overlaps cluster west node CIDR 192.168.0.0/16 (overlap 192.168.1.0/24)',
      'conflict: cluster east pod CIDR fd00:1::/48 overlaps cluster north pod CIDR fd00:1:0:5::/64 (overlap fd00:1:0:5::/64)',
      'conflict: cluster east service CIDR 10.96.0.0/16 overlaps cluster north service CIDR 10.96.0.0/12 (overlap 10.96.0.0/16)',
      'conflict: cluster west service CIDR 10.97.0.0/16 overlaps cluster north service CIDR 10.96.0.0/12 (overlap 10.97.0.0/16)',
    ]);
  });

  it('finds nothing in disjoint clusters and does not compare a cluster with itself', () => {
    expect(
      findConflicts([c('a', ['10.1.0.0/16'], ['10.1.0.0/24']), c('b', ['10.2.0.0/16'])]).conflicts,
    ).toEqual([]);
  });

  it('invalid ranges are reported, not ignored', () => {
    const r = findConflicts([c('a', ['10.1.0.1/16'])]);
    expect(formatConflicts(r)).toEqual([
      'invalid: cluster a pod CIDR 10.1.0.1/16: CIDR 10.1.0.1/16 has host bits set (network is 10.1.0.0/16)',
    ]);
  });

  it('admission is first come, first served in join order', () => {
    const adm = admitClusters([
      c('a', ['10.1.0.0/16']),
      c('b', ['10.2.0.0/16']),
      c('late', ['10.2.5.0/24']),
      c('d', ['10.4.0.0/16']),
    ]);
    expect(adm.admitted).toEqual(['a', 'b', 'd']);
    expect(
      adm.refused.map((r) => [r.cluster, r.conflicts.map((x) => `${x.a.cluster}:${x.overlap}`)]),
    ).toEqual([['late', ['b:10.2.5.0/24']]]);
  });
});
