/**
 * Compiler benchmark (printed, never asserted): synthetic worlds of 1k, 10k
 * and 50k pods (500 namespaces, 1,000 policies of mixed kinds). For each:
 * full compile time, peak RSS, entries per map; then single-pod and
 * single-policy changes through recompile(), p50/p99 over N changes, with the
 * full compile of the same run beside them (ratio).
 *
 *   npm run -s build && node dist/bench/compile/run.js [--sizes 1000,10000] [--changes 1000]
 *     [--policy-changes N]
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  initialState,
  recompile,
  type CompilerState,
} from '../../policy-compiler/src/compile/index.js';
import type { Pod, NetworkPolicy, World } from '../../policy-compiler/src/model/index.js';
import { syntheticWorld } from './synthetic.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? (process.argv[i + 1] as string) : fallback;
}

const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
};
const ms = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e6;

/** Changes one pod's labels (alternating app), keeping everything else. */
function podChange(w: World, i: number): World {
  const idx = (i * 7919) % w.pods.length;
  const p = w.pods[idx] as Pod;
  const app = i % 2 === 0 ? 'api' : 'web';
  const pods = [...w.pods];
  pods[idx] = { ...p, labels: { ...p.labels, app } };
  return { ...w, pods };
}

/**
 * A rollout step: one pod replaced by a new one with the same labels on a fresh address (the
 * most common change in a running cluster). The addresses come from 10.100.x.y / 10.228.x.y,
 * inside each cluster's pod CIDR and unused by the synthetic pods (which stay below .x.100).
 */
function podRollout(w: World, i: number): World {
  const idx = (i * 7919) % w.pods.length;
  const p = w.pods[idx] as Pod;
  const base = (p.ips[0] ?? '10.0.0.0').split('.').map(Number)[1] ?? 0;
  const v4 = `10.${(base & 128) + 100}.${(i >> 8) & 255}.${i & 255}`;
  const pods = [...w.pods];
  pods[idx] = { ...p, name: `${p.name}-r${i}`, ips: [v4] };
  return { ...w, pods };
}

/** Changes one NetworkPolicy's port (a new revision). */
function policyChange(w: World, i: number): World {
  const idx = (i * 104729) % w.networkPolicies.length;
  const p = w.networkPolicies[idx] as NetworkPolicy;
  const nps = [...w.networkPolicies];
  nps[idx] = {
    ...p,
    revision: `r${i}`,
    ingress: [
      {
        index: 0,
        peers: 'all',
        ports: [{ kind: 'range', protocol: 'TCP', start: 1000 + (i % 500), end: 1000 + (i % 500) }],
        source: p.source,
      },
    ],
  };
  return { ...w, networkPolicies: nps };
}

function runChanges(
  state: CompilerState,
  n: number,
  change: (w: World, i: number) => World,
): {
  p50: number;
  p99: number;
  max: number;
  runs: number;
  tablesRebuiltP50: number;
  paths: Record<string, number>;
} {
  const times: number[] = [];
  const rebuilt: number[] = [];
  const paths: Record<string, number> = {};
  let s = state;
  for (let i = 0; i < n; i++) {
    const w = change(s.world, i);
    const t0 = process.hrtime.bigint();
    const r = recompile(s, w);
    times.push(ms(t0));
    if (!r.ok) throw new Error(r.error.message);
    rebuilt.push(r.rebuiltTables);
    paths[r.work.path] = (paths[r.work.path] ?? 0) + 1;
    s = r.state;
  }
  return {
    p50: quantile(times, 0.5),
    p99: quantile(times, 0.99),
    max: Math.max(...times),
    runs: n,
    tablesRebuiltP50: quantile(rebuilt, 0.5),
    paths,
  };
}

const sizes = arg('sizes', '1000,10000,50000').split(',').map(Number);
const changes = Number(arg('changes', '1000'));
// A separate count for policy changes (those that fall back to the general path cost a full
// compile each).
const policyChanges = Number(arg('policy-changes', String(changes)));
if (sizes.length > 1) {
  // One process per size, so peak RSS is that size's own.
  const all: unknown[] = [];
  for (const n of sizes) {
    const out = execFileSync(
      process.execPath,
      [
        ...process.execArgv,
        fileURLToPath(import.meta.url),
        '--sizes',
        String(n),
        '--changes',
        String(changes),
        '--policy-changes',
        String(policyChanges),
      ],
      {
        encoding: 'utf8',
        maxBuffer: 1 << 26,
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const line = out.trim().split('\n')[0] as string;
    process.stdout.write(`${line}\n`);
    all.push(JSON.parse(line));
  }
  process.stdout.write(`${JSON.stringify({ node: process.version, results: all })}\n`);
  process.exit(0);
}
const limits = { tables: 1 << 20, tableEntries: 1 << 24, ipcache: 1 << 24, endpoints: 1 << 20 };
const results: unknown[] = [];
for (const pods of sizes) {
  const world = syntheticWorld({ pods });
  // The full compile (fresh, no previous numbering) is also the initial state
  // of the incremental runs: one copy of the tables in memory, not two.
  const t0 = process.hrtime.bigint();
  const init = initialState(world, { limits });
  const fullMs = ms(t0);
  if (!init.ok) throw new Error(init.error.message);
  const full = { compiled: init.state.compiled };
  const pod = runChanges(init.state, changes, podChange);
  const rollout = runChanges(init.state, changes, podRollout);
  const policy = runChanges(init.state, policyChanges, policyChange);
  const s = full.compiled.stats;
  const r = {
    pods,
    namespaces: world.namespaces.length,
    policies: world.networkPolicies.length + world.clusterPolicies.length,
    fullCompileMs: Math.round(fullMs),
    peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
    maps: {
      identities: s.identities,
      ipcache: s.ipcacheEntries,
      endpoints: s.endpoints,
      tables: s.tables,
      policyEntries: s.policyEntries,
      maxTableEntries: s.maxTableEntries,
      cookies: s.cookies,
    },
    incrementalPodChangeMs: pod,
    incrementalPodRolloutMs: rollout,
    incrementalPolicyChangeMs: policy,
    ratioFullToPodP50: +(fullMs / pod.p50).toFixed(2),
    ratioFullToRolloutP50: +(fullMs / rollout.p50).toFixed(2),
    ratioFullToPolicyP50: +(fullMs / policy.p50).toFixed(2),
  };
  results.push(r);
  process.stdout.write(`${JSON.stringify(r)}\n`);
}
process.stdout.write(`${JSON.stringify({ node: process.version, results })}\n`);
