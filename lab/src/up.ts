/**
 * `palisade lab up`: builds the plan's namespaces and links, writes the lab
 * world, starts etcd, one gateway per cluster (`palisade tunnel up`), one
 * enforcer per node and the pods' listeners — each recorded in the state
 * file before the next step, so `down` can undo a run that stopped anywhere.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { etcdHealthy, freePort } from '../../tunnel/src/etcd-process.js';
import { downLab } from './down.js';
import { runPaths, type RunPaths } from './paths.js';
import {
  DEFAULT_OPTIONS,
  WG_PORT,
  planLab,
  planNamespaces,
  type LabOptions,
  type LabPlan,
} from './plan.js';
import { alive, spawnDetached, startTicks } from './processes.js';
import { newState, readState, writeState, type LabState, type ProcessRole } from './state.js';
import {
  buildCluster,
  buildUnderlay,
  existingNamespaces,
  ifindexIn,
  type Progress,
} from './topology.js';
import { labPorts, labWorldFiles, readExampleWorld, templateRoles } from './world.js';
import { run } from '../../tunnel/src/netns-ip.js';

export interface LabContext {
  readonly labDir: string;
  /** the `palisade` CLI entry (dist/cli/src/main.js): gateways run `palisade tunnel up` */
  readonly cliPath: string;
  readonly progress: Progress;
}

export class LabError extends Error {
  override name = 'LabError';
}

const bin = (name: string): string => fileURLToPath(new URL(`./bin/${name}.js`, import.meta.url));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The plan of a lab with these options (the example world decides the pods). */
export function labPlan(options: LabOptions = DEFAULT_OPTIONS): LabPlan {
  return planLab(options, templateRoles(readExampleWorld()));
}

async function waitFor(
  what: string,
  timeoutMs: number,
  check: () => boolean | Promise<boolean>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(100);
  }
  throw new LabError(`${what}: not ready within ${Math.round(timeoutMs / 1000)} s`);
}

function readJson<T>(path: string): T | null {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return null;
  }
}

async function preflight(): Promise<void> {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root');
  for (const tool of ['ip', 'nft', 'nsenter', 'wireguard-go', 'etcd']) {
    await run('sh', ['-c', `command -v ${tool}`]).catch(() =>
      missing.push(`${tool} (scripts/setup.sh installs it)`),
    );
  }
  if (!existsSync('/sys/fs/bpf')) missing.push('bpffs at /sys/fs/bpf');
  if (missing.length > 0) throw new LabError(`lab up needs: ${missing.join(', ')}`);
}

/** Whether a recorded lab is complete and running (every process alive, every namespace there). */
export async function labHealthy(s: LabState): Promise<boolean> {
  if (s.phase !== 'up') return false;
  const ns = await existingNamespaces();
  return (
    s.namespaces.every((n) => ns.has(n)) && s.processes.every((p) => alive(p.pid, p.startTicks))
  );
}

export async function upLab(
  ctx: LabContext,
  options: LabOptions,
): Promise<{ state: LabState; created: boolean }> {
  const existing = readState(ctx.labDir);
  if (existing) {
    const same = JSON.stringify(existing.options) === JSON.stringify(options);
    if (same && (await labHealthy(existing))) {
      ctx.progress(
        `lab is already up (run ${existing.runId}, ${options.clusters} clusters × ${options.nodes} nodes × ${options.pods} pods); nothing to do`,
      );
      return { state: existing, created: false };
    }
    if (!same && existing.phase === 'up') {
      throw new LabError(
        `a lab with ${existing.options.clusters}×${existing.options.nodes}×${existing.options.pods} is up; run 'palisade lab down' first`,
      );
    }
    ctx.progress('a previous lab is incomplete or broken: removing it first');
    await downLab(ctx.labDir, ctx.progress);
  }
  await preflight();
  const plan = labPlan(options);
  const have = await existingNamespaces();
  const clash = planNamespaces(plan).filter((n) => have.has(n));
  if (clash.length > 0) {
    throw new LabError(
      `namespaces already exist that the lab did not record: ${clash.join(', ')} (remove them, or run 'palisade lab down')`,
    );
  }
  const runId = randomBytes(4).toString('hex');
  const paths = runPaths(ctx.labDir, runId);
  const state = newState(runId, options, planNamespaces(plan));
  state.paths.push(paths.runDir);
  writeState(ctx.labDir, state);

  let aborted: NodeJS.Signals | null = null;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (aborted) return;
    aborted = sig;
    ctx.progress(`${sig}: stopping and removing what the lab made so far`);
    void downLab(ctx.labDir, ctx.progress).finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const save = (): void => {
    if (aborted) throw new LabError(`interrupted by ${aborted}`);
    writeState(ctx.labDir, state);
  };
  try {
    await build(ctx, plan, state, paths, save);
    state.phase = 'up';
    save();
    return { state, created: true };
  } catch (e) {
    if (aborted) await new Promise(() => undefined); // the signal handler finishes and exits
    state.phase = 'failed';
    state.lastError = (e as Error).message;
    writeState(ctx.labDir, state);
    throw e;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

async function build(
  ctx: LabContext,
  plan: LabPlan,
  state: LabState,
  paths: RunPaths,
  save: () => void,
): Promise<void> {
  const p = ctx.progress;
  const t0 = Date.now();
  for (const d of [
    paths.world,
    paths.logs,
    dirname(paths.etcdData),
    paths.tunnelKeys,
    paths.tunnelState,
  ])
    mkdirSync(d, { recursive: true, mode: 0o700 });
  const record = (ns: string): void => {
    state.namespaces.push(ns);
    save();
  };
  const track = (role: ProcessRole, of: string, pid: number, netns: string | null): void => {
    state.processes.push({ role, of, pid, startTicks: startTicks(pid), netns });
    save();
  };

  p(`[1/6] underlay ${plan.underlayNs} (172.29.0.0/24)`);
  await buildUnderlay(plan, record);
  p(
    `[2/6] ${plan.clusters.length} clusters × ${plan.options.nodes} nodes × ${plan.options.pods} pods`,
  );
  for (const c of plan.clusters) await buildCluster(plan, c, record, p);

  // the world the enforcers load and `palisade matrix` predicts from
  const ex = readExampleWorld();
  for (const [f, text] of labWorldFiles(plan, ex)) {
    mkdirSync(dirname(join(paths.world, f)), { recursive: true });
    writeFileSync(join(paths.world, f), text);
  }
  p(`      world: ${paths.world} (examples/world with the lab's addresses)`);

  p('[3/6] etcd (mesh store)');
  const clientPort = await freePort();
  const peerPort = await freePort();
  const endpoint = `http://127.0.0.1:${clientPort}`;
  const keeper = spawnDetached(
    [
      process.execPath,
      bin('etcd-keeper'),
      '--run',
      state.runId,
      '--data',
      paths.etcdData,
      '--client-port',
      String(clientPort),
      '--peer-port',
      String(peerPort),
    ],
    join(paths.logs, 'etcd-keeper.log'),
  );
  track('etcd-keeper', 'mesh', keeper, null);
  await waitFor('etcd', 20_000, () => existsSync(paths.etcdPidFile) && etcdHealthy(endpoint));
  const etcdPid = Number(readFileSync(paths.etcdPidFile, 'utf8').trim());
  track('etcd', 'mesh', etcdPid, null);
  state.etcdEndpoint = endpoint;
  save();
  p(`      etcd ${endpoint} (pid ${etcdPid})`);

  p('[4/6] WireGuard gateways (palisade tunnel up, wireguard-go)');
  for (const c of plan.clusters) {
    const t = ex.clusters.get(c.template);
    const cfg = {
      cluster: {
        name: c.name,
        labels: { ...(t?.metadata?.labels ?? {}) },
        podCIDRs: [c.podCIDR],
        serviceCIDRs: [c.serviceCIDR],
        nodeCIDRs: [c.nodeCIDR],
        gateway: { endpoint: `${c.gatewayUnderlayIp}:${WG_PORT}` },
      },
      netns: c.gatewayNs,
      ifaceBase: c.wgBase,
      etcd: [endpoint],
      keyDir: paths.tunnelKeys,
      stateDir: paths.tunnelState,
      keepaliveSec: 5,
      leaseTtlSec: 15,
    };
    writeFileSync(paths.gatewayConfig(c.name), stringify(cfg), { mode: 0o600 });
    const pid = spawnDetached(
      [process.execPath, ctx.cliPath, 'tunnel', 'up', '-c', paths.gatewayConfig(c.name)],
      join(paths.logs, `gateway-${c.name}.log`),
    );
    track('gateway', c.name, pid, null);
  }
  if (plan.clusters.length > 1) {
    for (const c of plan.clusters) {
      await waitFor(`gateway ${c.name} handshakes`, 40_000, () => {
        const st = readJson<{ peers: { state: string }[] }>(paths.gatewayStatus(c.name));
        return (
          st !== null &&
          st.peers.length === plan.clusters.length - 1 &&
          st.peers.every((x) => x.state === 'up')
        );
      });
      p(
        `      ${c.name}: ${c.wgBase}a on ${c.gatewayUnderlayIp}:${WG_PORT}, ${plan.clusters.length - 1} peer(s) up`,
      );
    }
  } else {
    await waitFor(`gateway ${plan.clusters[0]?.name}`, 20_000, () =>
      existsSync(paths.gatewayStatus(plan.clusters[0]?.name ?? '')),
    );
  }

  p("[5/6] enforcers (real BPF programs on the pods' veths, maps pinned per node)");
  for (const c of plan.clusters) {
    for (const n of c.nodes) {
      const dir = paths.nodeDir(n.name);
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      const pods: Record<string, { iface: string; ifindex: number }> = {};
      for (const pod of c.pods.filter((x) => x.node === n.name))
        pods[pod.id] = { iface: pod.hostIf, ifindex: await ifindexIn(n.netns, pod.hostIf) };
      state.pinDirs.push(n.pinDir);
      save();
      // nsenter, not `ip netns exec`: that remounts /sys and hides the bpffs pins
      const pid = spawnDetached(
        [
          'nsenter',
          `--net=/run/netns/${n.netns}`,
          process.execPath,
          bin('enforcer'),
          '--run',
          state.runId,
          '--node',
          n.name,
          '--cluster',
          c.name,
          '--world',
          paths.world,
          '--pin',
          n.pinDir,
          '--dir',
          dir,
          '--pods',
          JSON.stringify(pods),
        ],
        join(paths.logs, `enforcer-${n.name}.log`),
      );
      track('enforcer', n.name, pid, n.netns);
    }
  }
  for (const c of plan.clusters) {
    for (const n of c.nodes) {
      await waitFor(`enforcer ${n.name}`, 30_000, () => {
        const st = readJson<{
          applied: number;
          attached: { attached: boolean }[];
          lastError: string | null;
        }>(join(paths.nodeDir(n.name), 'status.json'));
        return st !== null && st.applied > 0 && st.attached.every((a) => a.attached);
      });
      const st = readJson<{ revision: number; attached: unknown[] }>(
        join(paths.nodeDir(n.name), 'status.json'),
      );
      p(
        `      ${n.name}: ${st?.attached.length ?? 0} pod veths attached, revision ${st?.revision ?? '?'}, pins ${n.pinDir}`,
      );
    }
  }

  p('[6/6] listeners in every pod');
  const ports = labPorts(plan, ex)
    .map((x) => `${x.protocol}/${x.port}`)
    .join(',');
  for (const c of plan.clusters) {
    for (const pod of c.pods) {
      const log = join(paths.logs, `listener-${pod.netns}.log`);
      const pid = spawnDetached(
        [
          'ip',
          'netns',
          'exec',
          pod.netns,
          process.execPath,
          bin('listener'),
          '--run',
          state.runId,
          '--pod',
          pod.id,
          '--ports',
          ports,
        ],
        log,
      );
      track('listener', pod.id, pid, pod.netns);
    }
  }
  for (const c of plan.clusters) {
    for (const pod of c.pods) {
      const log = join(paths.logs, `listener-${pod.netns}.log`);
      await waitFor(
        `listener ${pod.id}`,
        20_000,
        () => existsSync(log) && readFileSync(log, 'utf8').includes('listening'),
      );
    }
  }
  p(`      ${plan.clusters.reduce((n, c) => n + c.pods.length, 0)} pods listen on ${ports}`);
  p(
    `lab up in ${((Date.now() - t0) / 1000).toFixed(1)} s; state ${join(ctx.labDir, 'state.json')}`,
  );
}
