/**
 * `palisade agent` end to end on one node: a policy file written into the
 * watched directory is enforced on real TCP traffic exactly as the reference
 * engine predicts and shows in /v1/status; its denies become attributed flow
 * records (NDJSON and valid OCSF) and metrics; kill -9 under traffic changes
 * nothing for packets; a restarted agent adopts the pins without a gap and
 * without duplicating flow records; a bad file leaves the old policy
 * enforced; the API refuses missing and wrong tokens; SIGTERM is graceful
 * and leaves enforcement in place.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { tcxLinkPinName } from '../../../enforcer/src/datapath/datapath.js';
import { validateOcsfNetworkActivity } from '../../../enforcer/src/flows/ocsf-validate.js';
import { requirePrivileges } from '../../support/privileged.js';
import {
  AgentNode,
  NS,
  PODS,
  docs,
  readRecords,
  type AgentProc,
  type FlowLine,
} from './harness.js';

let node: AgentNode;
let agent: AgentProc;
let config: string;

const POLICY = docs({
  apiVersion: 'networking.k8s.io/v1',
  kind: 'NetworkPolicy',
  metadata: { name: 'b-from-a', namespace: NS, annotations: { 'palisade.dev/cluster': 'c1' } },
  spec: {
    podSelector: { matchLabels: { app: 'b' } },
    policyTypes: ['Ingress'],
    ingress: [
      {
        from: [{ podSelector: { matchLabels: { app: 'a' } } }],
        ports: [{ protocol: 'TCP', port: 7000 }],
      },
    ],
  },
});

const asObj = (m: Map<string, boolean>) => Object.fromEntries([...m].sort());

beforeAll(async () => {
  requirePrivileges('root', 'bpffs', 'netns');
  node = await AgentNode.create('ag');
  config = node.writeConfig({ statusFile: node.path('status.json') });
  agent = node.startAgent(config);
  await node.until(
    'readyz',
    () => node.api('/readyz', 'none'),
    (r) => r.code === 200,
  );
}, 60_000);

afterAll(async () => {
  await node?.cleanup();
}, 30_000);

/**
 * Our programs on an interface of the node namespace, as the agent's pinned
 * tcx links show them ("from_pod to_pod" when both hooks are linked, "" when
 * detached: detach unpins after BPF_LINK_DETACH).
 */
function programsOn(ifindex: number): string {
  return (['ingress', 'egress'] as const)
    .filter((p) => existsSync(join(node.pinDir, tcxLinkPinName(ifindex, p))))
    .map((p) => (p === 'ingress' ? 'from_pod' : 'to_pod'))
    .join(' ');
}

describe('palisade agent on one node', () => {
  it('finds every pod interface by its route and, with no policy, allows what the reference allows', async () => {
    const st = await node.until(
      'interfaces in the status file',
      async () =>
        JSON.parse(readFileSync(node.path('status.json'), 'utf8')) as {
          interfaces: { endpoint: string; ifname: string; ifindex: number }[];
        },
      (s) => s.interfaces.length === PODS.length,
    );
    expect(st.interfaces.map((i) => [i.endpoint, i.ifname, i.ifindex]).sort()).toEqual(
      node.topo.pods
        .slice(0, PODS.length)
        .map((p, i) => [`c1/${NS}/${PODS[i]}`, p.hostIf, p.ifindex])
        .sort(),
    );
    expect(programsOn(node.topo.pod(1).ifindex)).toMatch(/from_pod/);
    const want = node.reference();
    expect([...want.values()].every(Boolean)).toBe(true);
    expect(asObj(await node.traffic())).toEqual(asObj(want));
  });

  it('a policy file written into the directory is enforced as the reference predicts and shows in /v1/status', async () => {
    node.writeWorldFile('policy.yaml', POLICY);
    const st = await node.until(
      'policy enforced in status',
      () => node.status(),
      (s) => s.policies.some((p) => p.name === 'b-from-a' && p.state === 'enforced'),
    );
    const p = st.policies.find((x) => x.name === 'b-from-a')!;
    expect(p.enforcedRevision).toBe(p.revision);
    expect(st.lastError ?? null).toBeNull();
    const want = node.reference();
    // the policy denies some probes and allows others, so the comparison can fail both ways
    expect(new Set(want.values())).toEqual(new Set([true, false]));
    expect(asObj(await node.traffic())).toEqual(asObj(want));
  });

  it('denies are attributed flow records in NDJSON and valid OCSF, and counted in /metrics', async () => {
    const deny = (r: FlowLine) =>
      r.flow?.verdict === 'DROPPED' &&
      r.flow.source.pod_name === 'c' &&
      r.flow.destination.pod_name === 'b' &&
      'TCP' in r.flow.l4 &&
      r.flow.l4.TCP.destination_port === 7000;
    const recs = await node.until(
      'a deny record c -> b:7000',
      async () => readRecords(node.path('flows.ndjson')),
      (rs) => rs.some(deny),
    );
    const d = recs.find(deny)!.flow!;
    expect(d.source.endpoint_id).toBe(`c1/${NS}/c`);
    expect(d.destination.endpoint_id).toBe(`c1/${NS}/b`);
    expect(d.source.labels).toContain('k8s:app=c');
    expect(d.node_name).toBe('c1/n1');
    expect(d.ingress_denied_by).toEqual([
      expect.objectContaining({ kind: 'NetworkPolicy', namespace: NS, name: 'b-from-a' }),
    ]);

    const ocsf = await node.until(
      'OCSF records',
      async () => readRecords(node.path('flows.ocsf.ndjson')),
      (rs) => rs.some((e) => e['disposition'] === 'Blocked'),
    );
    for (const e of ocsf) expect(validateOcsfNetworkActivity(e)).toEqual([]);

    const m = await node.api('/metrics');
    expect(m.code).toBe(200);
    const denies = m.body
      .split('\n')
      .filter((l) => l.startsWith('palisade_policy_verdicts_total{') && l.includes('action="deny"'))
      .map((l) => Number(l.split(' ').at(-1)));
    expect(denies.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    expect(m.body).toMatch(/^palisade_flow_records_total\{[^}]*sink="ndjson"[^}]*\} [1-9]/m);
  });

  it('the API refuses a missing or wrong token (health stays open)', async () => {
    expect((await node.api('/v1/status', 'none')).code).toBe(401);
    expect((await node.api('/v1/status', 'wrong')).code).toBe(401);
    expect((await node.api('/metrics', 'wrong')).code).toBe(401);
    expect((await node.api('/healthz', 'none')).code).toBe(200);
    expect((await node.api('/v1/status', 'token')).code).toBe(200);
  });

  it('a bad policy file: error in status, old policy still enforced, agent keeps running', async () => {
    node.writeWorldFile(
      'bad.yaml',
      'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: broken, namespace: shop}\nspec:\n  podSelector: 42\n',
    );
    const st = await node.until(
      'error in status',
      () => node.status(),
      (s) => typeof s.lastError === 'string' && s.lastError.length > 0,
    );
    expect(st.lastError).toMatch(/bad\.yaml/);
    expect(st.policies.find((p) => p.name === 'b-from-a')?.enforcedRevision).toBeTruthy();
    expect(node.alive(agent)).toBe(true);
    node.removeWorldFile('bad.yaml');
    const want = node.reference();
    expect(asObj(await node.traffic())).toEqual(asObj(want));
    await node.until(
      'error cleared',
      () => node.status(),
      (s) => (s.lastError ?? null) === null,
    );
  });

  it('attaches when a pod appears in the world and detaches when it goes', async () => {
    const d = node.topo.pod(PODS.length);
    // this kernel has tcx: the agent attaches with links pinned next to its maps
    const filters = async () => programsOn(d.ifindex);
    const interfaces = async () =>
      (
        JSON.parse(readFileSync(node.path('status.json'), 'utf8')) as {
          interfaces: { endpoint: string; ifindex: number }[];
        }
      ).interfaces;
    expect(await filters()).not.toMatch(/from_pod/);
    node.writeWorldFile('pod-d.yaml', docs(node.podDoc('d', PODS.length)));
    const seen = await node.until('pod d discovered', interfaces, (i) =>
      i.some((x) => x.endpoint === `c1/${NS}/d`),
    );
    expect(seen.find((x) => x.endpoint === `c1/${NS}/d`)?.ifindex).toBe(d.ifindex);
    await node.until('programs on d', filters, (f) => /from_pod/.test(f));
    node.removeWorldFile('pod-d.yaml');
    await node.until('pod d gone', interfaces, (i) => i.every((x) => x.endpoint !== `c1/${NS}/d`));
    await node.until('programs off d', filters, (f) => !/from_pod/.test(f));
  });

  it('kill -9 under traffic changes nothing; a restart adopts the pins with no gap and no duplicated records', async () => {
    const a = await node.topo.agent(0);
    const c = await node.topo.agent(2);
    const b4 = node.topo.pod(1).ip4;
    const wrong: string[] = [];
    let rounds = 0;
    let stop = false;
    // bounded: at most 200 rounds, and stopped below
    const traffic = (async () => {
      while (!stop && rounds < 200) {
        const [ok, denied] = await Promise.all([a.tcp(b4, 7000, 700), c.tcp(b4, 7000, 250)]);
        if (!ok) wrong.push(`round ${rounds}: a->b:7000 refused`);
        if (denied) wrong.push(`round ${rounds}: c->b:7000 got through`);
        rounds++;
      }
    })();
    await new Promise((r) => setTimeout(r, 500));
    const before = readRecords(node.path('flows.ndjson')).flatMap((r) =>
      r.flow ? [r.flow] : [],
    ).length;
    const numbersBefore = readFileSync(node.path('state/allocation.json'), 'utf8');
    await node.killAgent(agent, 'SIGKILL');
    const killedAt = Date.now();
    const roundsAtKill = rounds;
    await new Promise((r) => setTimeout(r, 1500));
    const deadRounds = rounds - roundsAtKill;
    const restartAt = Date.now();
    agent = node.startAgent(config);
    await node.until(
      'readyz after restart',
      () => node.api('/readyz', 'none'),
      (r) => r.code === 200,
    );
    await new Promise((r) => setTimeout(r, 1000));
    stop = true;
    await traffic;
    expect(wrong).toEqual([]);
    // the restarted agent kept every identity, table and cookie number
    expect(readFileSync(node.path('state/allocation.json'), 'utf8')).toBe(numbersBefore);
    expect(deadRounds).toBeGreaterThan(0);

    // events of the dead window were read by the new agent from the pinned ringbuf
    const recs = await node.until(
      'records of the window without an agent',
      async () => readRecords(node.path('flows.ndjson')).flatMap((r) => (r.flow ? [r.flow] : [])),
      (rs) =>
        rs.some((r) => {
          const t = Date.parse(r.time);
          return r.verdict === 'DROPPED' && t > killedAt && t < restartAt;
        }),
    );
    expect(recs.length).toBeGreaterThan(before);
    const uuids = recs.map((r) => r.uuid);
    expect(uuids.length).toBe(new Set(uuids).size);
    expect(asObj(await node.traffic())).toEqual(asObj(node.reference()));
  });

  it('SIGTERM stops gracefully (exit 0) and leaves the policy enforced', async () => {
    expect(await node.killAgent(agent, 'SIGTERM')).toBe(0);
    const want = node.reference();
    expect(asObj(await node.traffic())).toEqual(asObj(want));
  });
});
