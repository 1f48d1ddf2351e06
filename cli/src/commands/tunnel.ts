/**
 * `palisade tunnel up|down|status|rotate|check-cidrs`: the WireGuard gateway
 * of one cluster (tunnel/), driven by a config file (docs/tunnel.md).
 *   up           runs the gateway in the foreground until SIGINT/SIGTERM, then removes it cleanly
 *   down         stops a running `up` (by the pid in its state file) or cleans up after one that died
 *   status       the last status the running gateway observed (peers, state, handshake age, bytes)
 *   rotate       starts a mesh-wide key rotation (every gateway hands over by itself)
 *   check-cidrs  pod/service/node CIDR overlaps between the clusters of a world (exit 1 on conflicts)
 */
import { existsSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { GatewayConfig, GatewayStatus } from '../../../tunnel/src/index.js';
import { findConflicts, formatConflicts } from '../../../tunnel/src/cidr-conflicts.js';
import { loadGatewayConfig } from '../../../tunnel/src/config.js';

// The gateway side (etcd client, grpc) loads only when a tunnel command runs,
// so other commands do not pay for it at start-up.
const gatewayModule = () => import('../../../tunnel/src/index.js');
import { CliError, EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, type CliContext } from '../context.js';
import { renderTable } from '../render/table.js';
import { loadValidWorld } from '../world-input.js';
import { filenameOption, outputOption } from './options.js';

interface ConfigOpts {
  config: string;
  output?: 'table' | 'json';
}

async function config(path: string): Promise<GatewayConfig> {
  try {
    return await loadGatewayConfig(path);
  } catch (e) {
    throw new CliError((e as Error).message, EXIT_USAGE);
  }
}

const configOption = (cmd: Command): Command =>
  cmd.requiredOption('-c, --config <file>', 'gateway config file (YAML; docs/tunnel.md)');

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function isOurManager(pid: number): boolean {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return argv.includes('tunnel') && argv.includes('up');
  } catch {
    return false;
  }
}

interface StateFile {
  managerPid: number;
  devices: Record<string, { pid: number | null; epoch: number }>;
}

function readJson<T>(path: string): T | null {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return null;
  }
}

const age = (s: number | null): string => (s === null ? 'never' : `${Math.round(s)}s`);

function renderStatus(st: GatewayStatus & { observedAtMs?: number }): string {
  const head = `cluster ${st.cluster}  backend ${st.backend.backend}  epoch ${st.epoch}  devices ${st.devices.map((d) => `${d.iface}(:${d.listenPort}, mtu ${d.mtu})`).join(' ') || 'none'}\n`;
  const rows = st.peers.map((p) => [
    p.cluster,
    String(p.epoch),
    p.state,
    p.endpoint ?? '-',
    age(p.handshakeAgeSec),
    String(p.rxBytes),
    String(p.txBytes),
    [
      p.handshakeFailing ? 'handshake failing (key mismatch or unreachable)' : '',
      p.keyMismatch ? 'device key differs from store' : '',
    ]
      .filter(Boolean)
      .join('; ') || '-',
  ]);
  const table = renderTable(
    ['peer', 'epoch', 'state', 'endpoint', 'handshake', 'rx', 'tx', 'note'],
    rows,
  );
  const refused = st.refused
    .map(
      (r) =>
        `refused: ${r.cluster}\n${formatConflicts({ conflicts: r.conflicts, invalid: r.invalid })
          .map((l) => `  ${l}`)
          .join('\n')}\n`,
    )
    .join('');
  const errors = [
    ...st.storeErrors.map((e) => `store: ${e}`),
    ...(st.lastError ? [`last error: ${st.lastError}`] : []),
  ]
    .map((l) => `${l}\n`)
    .join('');
  return head + table + refused + errors;
}

export function tunnel(program: Command, ctx: CliContext): void {
  const t = program
    .command('tunnel')
    .description('WireGuard gateways between clusters: keys, rotation, routes, CIDR conflicts');

  configOption(
    t
      .command('up')
      .description("run this cluster's gateway in the foreground (SIGINT/SIGTERM removes it)"),
  ).action(async (opts: ConfigOpts) => {
    const cfg = await config(opts.config);
    const { Gateway, JoinRefusedError } = await gatewayModule();
    const gw = new Gateway(cfg);
    try {
      await gw.up();
    } catch (e) {
      await gw.detach().catch(() => undefined);
      if (e instanceof JoinRefusedError) throw new CliError(e.message, EXIT_FINDINGS);
      throw new CliError(`tunnel up: ${(e as Error).message}`, EXIT_USAGE);
    }
    ctx.stderr.write(
      `tunnel up: cluster ${cfg.cluster.name} in netns ${cfg.netns}, ${gw.backend.backend} (${gw.backend.reason})\n`,
    );
    await new Promise<void>((resolve) => {
      const stop = (): void => resolve();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    await gw.down();
    ctx.stderr.write(`tunnel down: cluster ${cfg.cluster.name} removed\n`);
    ctx.exitCode = EXIT_OK;
  });

  configOption(
    t
      .command('down')
      .description('stop the running gateway of this config, or clean up after one that died'),
  ).action(async (opts: ConfigOpts) => {
    const cfg = await config(opts.config);
    const { MeshStore, isWireguardGo, stopWireguardGo } = await gatewayModule();
    const statePath = join(cfg.stateDir, `${cfg.cluster.name}.json`);
    const st = readJson<StateFile>(statePath);
    if (
      st &&
      st.managerPid !== process.pid &&
      alive(st.managerPid) &&
      isOurManager(st.managerPid)
    ) {
      process.kill(st.managerPid, 'SIGTERM');
      for (let i = 0; i < 100 && existsSync(statePath); i++)
        await new Promise((r) => setTimeout(r, 100));
      if (existsSync(statePath))
        throw new CliError(
          `tunnel down: manager pid ${st.managerPid} did not finish within 10 s`,
          EXIT_USAGE,
        );
      ctx.stderr.write(`tunnel down: stopped manager pid ${st.managerPid}\n`);
      return;
    }
    // The manager is gone: stop what it left, by pid, and remove its records.
    for (const [iface, d] of Object.entries(st?.devices ?? {}))
      if (d.pid !== null && isWireguardGo(d.pid, iface)) await stopWireguardGo(d.pid, iface);
    const store = MeshStore.connect(cfg.etcdEndpoints);
    try {
      await store.deleteCluster(cfg.cluster.name);
    } catch (e) {
      ctx.stderr.write(`tunnel down: could not remove store records: ${(e as Error).message}\n`);
    } finally {
      store.close();
    }
    await rm(statePath, { force: true });
    await rm(join(cfg.stateDir, `${cfg.cluster.name}.status.json`), { force: true });
    ctx.stderr.write(`tunnel down: cluster ${cfg.cluster.name} cleaned up\n`);
  });

  configOption(
    t
      .command('status')
      .description('peers of this gateway: state (up/stale/down), handshake age, bytes'),
  )
    .addOption(outputOption(['table', 'json'], 'table'))
    .action(async (opts: ConfigOpts) => {
      const cfg = await config(opts.config);
      const st = readJson<GatewayStatus & { observedAtMs: number; managerPid: number }>(
        join(cfg.stateDir, `${cfg.cluster.name}.status.json`),
      );
      if (!st)
        throw new CliError(
          `tunnel status: no gateway is running for cluster ${cfg.cluster.name} (no status in ${cfg.stateDir})`,
          EXIT_FINDINGS,
        );
      const running = alive(st.managerPid);
      if (opts.output === 'json')
        ctx.stdout.write(`${JSON.stringify({ ...st, managerRunning: running }, null, 2)}\n`);
      else
        ctx.stdout.write(
          `${renderStatus(st)}${running ? '' : `warning: manager pid ${st.managerPid} is not running; this status is stale\n`}`,
        );
      ctx.exitCode = running && st.peers.every((p) => p.state === 'up') ? EXIT_OK : EXIT_FINDINGS;
    });

  configOption(
    t
      .command('rotate')
      .description('start a mesh-wide key rotation now (every gateway hands over without loss)'),
  ).action(async (opts: ConfigOpts) => {
    const cfg = await config(opts.config);
    const { MeshStore } = await gatewayModule();
    const store = MeshStore.connect(cfg.etcdEndpoints);
    try {
      const epoch = await store.bumpEpoch();
      ctx.stdout.write(`rotation started: key epoch ${epoch}\n`);
    } catch (e) {
      throw new CliError(`tunnel rotate: ${(e as Error).message}`, EXIT_USAGE);
    } finally {
      store.close();
    }
  });

  t.command('check-cidrs')
    .description(
      'report pod/service/node CIDR overlaps between the clusters of a world (exit 1 on conflicts)',
    )
    .addOption(filenameOption('world'))
    .addOption(outputOption(['table', 'json'], 'table'))
    .action(async (opts: { filename: string[]; output: 'table' | 'json' }) => {
      const world = await loadValidWorld(opts.filename, ctx);
      const clusters = world.clusters.filter((c) => c.declared);
      const report = findConflicts(clusters);
      if (opts.output === 'json') {
        ctx.stdout.write(
          `${JSON.stringify({ clusters: clusters.map((c) => c.name), ...report }, null, 2)}\n`,
        );
      } else if (report.conflicts.length === 0 && report.invalid.length === 0) {
        ctx.stdout.write(`no CIDR conflicts between ${clusters.length} clusters\n`);
      } else {
        const rows = report.conflicts.map((c) => [
          c.a.cluster,
          `${c.a.kind} ${c.a.cidr}`,
          c.b.cluster,
          `${c.b.kind} ${c.b.cidr}`,
          c.overlap,
        ]);
        ctx.stdout.write(renderTable(['cluster', 'range', 'cluster', 'range', 'overlap'], rows));
        for (const l of formatConflicts({ conflicts: [], invalid: report.invalid }))
          ctx.stdout.write(`${l}\n`);
      }
      ctx.exitCode = report.conflicts.length + report.invalid.length > 0 ? EXIT_FINDINGS : EXIT_OK;
    });
}
