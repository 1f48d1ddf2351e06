import { describe, expect, it } from 'vitest';
import { AgentMetrics } from '../../enforcer/src/metrics/index.js';

function sample(text: string, name: string, labels = ''): number | undefined {
  const line = text
    .split('\n')
    .find((l) => l.startsWith(`${name}${labels} `) || (labels === '' && l.startsWith(`${name} `)));
  return line === undefined ? undefined : Number(line.split(' ').pop());
}

describe('agent metrics', () => {
  it('exposes the FORMATS.md set with palisade_ prefix and base units', async () => {
    const m = new AgentMetrics({ processMetrics: false });
    m.verdict('egress', 'deny', 'Admin');
    m.verdict('egress', 'deny', 'Admin');
    m.drop('POLICY_DENY', 'egress', 3);
    m.flowRecordWritten('ndjson', 5);
    m.flowRecordsLost('queue_full', 2);
    m.observeCompile(0.02);
    m.observeSync(0.003);
    m.setMapUsage('ipcache', 10, 262144);
    m.setIdentities(7);
    m.setEndpoints(4);
    m.setRealized({ enforced: 3, pending: 1, error: 1 });
    const t = await m.text();
    expect(
      sample(
        t,
        'palisade_policy_verdicts_total',
        '{direction="egress",action="deny",tier="Admin"}',
      ),
    ).toBe(2);
    expect(
      sample(
        t,
        'palisade_policy_verdicts_total',
        '{direction="ingress",action="allow",tier="Baseline"}',
      ),
    ).toBe(0);
    expect(sample(t, 'palisade_drops_total', '{reason="POLICY_DENY",direction="egress"}')).toBe(3);
    expect(sample(t, 'palisade_flow_records_total', '{sink="ndjson"}')).toBe(5);
    expect(sample(t, 'palisade_flow_records_lost_total', '{reason="queue_full"}')).toBe(2);
    expect(sample(t, 'palisade_policy_compile_seconds_count')).toBe(1);
    expect(sample(t, 'palisade_datapath_sync_seconds_sum')).toBeCloseTo(0.003);
    expect(sample(t, 'palisade_policy_map_entries', '{map="ipcache"}')).toBe(10);
    expect(sample(t, 'palisade_policy_map_capacity', '{map="ipcache"}')).toBe(262144);
    expect(sample(t, 'palisade_identities')).toBe(7);
    expect(sample(t, 'palisade_endpoints')).toBe(4);
    expect(sample(t, 'palisade_policy_realized', '{state="error"}')).toBe(1);
    for (const l of t.split('\n').filter((x) => x && !x.startsWith('#'))) {
      expect(l).toMatch(/^palisade_/);
    }
  });

  it('keeps label cardinality bounded: unknown values fold into one bucket', async () => {
    const m = new AgentMetrics({ processMetrics: false });
    for (let i = 0; i < 50; i++) {
      m.verdict('ingress', 'allow', `tier-${i}`);
      m.drop(`reason-${i}`, 'ingress');
      m.flowRecordWritten(`sink-${i}`);
    }
    const t = await m.text();
    expect(
      sample(
        t,
        'palisade_policy_verdicts_total',
        '{direction="ingress",action="allow",tier="Default"}',
      ),
    ).toBe(50);
    expect(sample(t, 'palisade_drops_total', '{reason="OTHER",direction="ingress"}')).toBe(50);
    expect(sample(t, 'palisade_flow_records_total', '{sink="other"}')).toBe(50);
    const series = t.split('\n').filter((x) => x.startsWith('palisade_policy_verdicts_total{'));
    expect(series.length).toBe(2 * 3 * 4);
  });

  it('two instances do not share state (own registry)', async () => {
    const a = new AgentMetrics({ processMetrics: false });
    const b = new AgentMetrics();
    a.setEndpoints(9);
    expect(sample(await b.text(), 'palisade_endpoints')).toBe(0);
    expect(await b.text()).toContain('palisade_process_resident_memory_bytes');
  });
  it('has mesh gauges (records by kind, tunnel peers) only once the agent reads a mesh store', async () => {
    const m = new AgentMetrics({ processMetrics: false });
    expect(await m.text()).not.toMatch(/palisade_tunnel_peers|palisade_mesh_records/);
    m.setMesh({ clusters: 3, gateways: 2, endpoints: 40, policies: 5 });
    m.setMesh({ clusters: 3, gateways: 1, endpoints: 41, policies: 5 });
    const t = await m.text();
    expect(sample(t, 'palisade_tunnel_peers')).toBe(1);
    expect(sample(t, 'palisade_mesh_records', '{kind="cluster"}')).toBe(3);
    expect(sample(t, 'palisade_mesh_records', '{kind="endpoint"}')).toBe(41);
    expect(sample(t, 'palisade_mesh_records', '{kind="policy"}')).toBe(5);
  });
});
