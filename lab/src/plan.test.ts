import { describe, expect, it } from 'vitest';
import { findConflicts } from '../../tunnel/src/cidr-conflicts.js';
import { loadWorldFromTexts } from '../../policy-compiler/src/index.js';
import { LIMITS, planLab, planNamespaces, validateOptions } from './plan.js';
import { labPorts, labWorldFiles, readExampleWorld, templateRoles } from './world.js';

const ex = readExampleWorld();
const roles = templateRoles(ex);

describe('lab plan', () => {
  it('names are unique, prefixed, and interface names fit IFNAMSIZ at the largest size', () => {
    const plan = planLab(
      { clusters: LIMITS.clusters, nodes: LIMITS.nodes, pods: LIMITS.pods },
      roles,
    );
    const ns = planNamespaces(plan);
    expect(new Set(ns).size).toBe(ns.length);
    expect(ns.every((n) => n.startsWith('pl-'))).toBe(true);
    const ifaces = plan.clusters.flatMap((c) => [
      c.underlayIf,
      `${c.wgBase}a`,
      `${c.wgBase}b`,
      ...c.nodes.map((n) => n.switchIf),
      ...c.pods.map((p) => p.hostIf),
    ]);
    expect(ifaces.every((i) => i.length <= 15)).toBe(true);
    // WireGuard device names are host-wide (UAPI socket path): unique across clusters
    const wg = plan.clusters.map((c) => c.wgBase);
    expect(new Set(wg).size).toBe(wg.length);
    const ips = plan.clusters.flatMap((c) => [
      c.gatewayFabricIp,
      c.gatewayUnderlayIp,
      ...c.nodes.map((n) => n.ip),
      ...c.pods.map((p) => p.ip),
    ]);
    expect(new Set(ips).size).toBe(ips.length);
  });

  it('a prefix renames every namespace, WireGuard device and pin dir, so two labs do not collide', () => {
    const a = planLab({ clusters: 2, nodes: 2, pods: 3 }, roles);
    const b = planLab({ clusters: 2, nodes: 2, pods: 3, prefix: 't42-' }, roles);
    expect(planNamespaces(b).every((n) => n.startsWith('t42-'))).toBe(true);
    const hostWide = (p: typeof a) => [
      ...planNamespaces(p),
      ...p.clusters.flatMap((c) => [c.wgBase, ...c.nodes.map((n) => n.pinDir)]),
    ];
    expect(hostWide(a).filter((n) => hostWide(b).includes(n))).toEqual([]);
    expect(validateOptions({ clusters: 2, nodes: 2, pods: 3, prefix: 'Bad_' })[0]).toContain(
      '--prefix',
    );
  });

  it('cluster CIDRs never overlap (the tunnel manager would refuse them)', () => {
    const plan = planLab({ clusters: LIMITS.clusters, nodes: 2, pods: 2 }, roles);
    const report = findConflicts(
      plan.clusters.map((c) => ({
        name: c.name,
        podCIDRs: [c.podCIDR],
        serviceCIDRs: [c.serviceCIDR],
        nodeCIDRs: [c.nodeCIDR],
      })),
    );
    expect(report.conflicts).toEqual([]);
  });

  it('rejects sizes outside the limits with the flag and the allowed range', () => {
    expect(validateOptions({ clusters: 0, nodes: 2, pods: 3 })).toEqual([
      `--clusters: an integer from 1 to ${LIMITS.clusters} (got 0)`,
    ]);
    expect(() => planLab({ clusters: 2, nodes: 9, pods: 1 }, roles)).toThrow(
      `--nodes: an integer from 1 to ${LIMITS.nodes} (got 9)`,
    );
  });

  it('the lab world loads cleanly and its pods carry exactly the planned addresses and nodes', () => {
    const plan = planLab({ clusters: 3, nodes: 2, pods: 3 }, roles);
    const files = labWorldFiles(plan, ex);
    const loaded = loadWorldFromTexts([...files].map(([file, text]) => ({ file, text })));
    expect(loaded.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    const got = loaded.world.pods
      .map((p) => `${p.cluster}/${p.namespace}/${p.name} ${p.nodeName} ${p.ips.join(',')}`)
      .sort();
    const want = plan.clusters
      .flatMap((c) => c.pods.map((p) => `${p.id} ${p.node} ${p.ip}`))
      .sort();
    expect(got).toEqual(want);
    expect(loaded.world.nodes.map((n) => n.ips[0]).sort()).toEqual(
      plan.clusters.flatMap((c) => c.nodes.map((n) => n.ip)).sort(),
    );
    expect(labPorts(plan, ex).map((p) => `${p.protocol}/${p.port}`)).toContain('UDP/8125');
  });
});
