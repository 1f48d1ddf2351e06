/**
 * `palisade agent`: one node's enforcer. Wires a source (manifest directory
 * or Kubernetes) → endpoint discovery → Reconciler → the real Datapath
 * (pinned under config.pinDir) → ringbuf events → EventIngest → FlowPipeline
 * (NDJSON / OCSF / stdout sinks, CEL filter) → AgentMetrics → the API.
 *
 * Restart and crash behaviour (docs/enforcer.md "Agent"): programs, maps and
 * attachments live in bpffs and tc, so kill -9 changes nothing for packets;
 * a new agent adopts them (Datapath.open replaces the programs atomically),
 * discovers interfaces *before* its first sync (so no endpoint is ever
 * removed from the map by a half-initialized agent), and only starts
 * consuming the pinned ringbuf once it can attribute events. The ringbuf's
 * consumer position is in the pinned map, so the new process reads from
 * where the old one stopped: events are not delivered twice.
 * SIGTERM is graceful (sinks flushed, API closed) and also leaves enforcement
 * in place: an agent upgrade must not open a gap.
 */
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { KubeConfig } from '@kubernetes/client-node';
import {
  loadWorldFromTexts,
  ParseCache,
  type LoadResult,
} from '../../../policy-compiler/src/load/index.js';
import type { World } from '../../../policy-compiler/src/model/world.js';
import { evaluate, prepareWorld } from '../../../policy-compiler/src/semantics/index.js';
import type { PreparedWorld } from '../../../policy-compiler/src/semantics/index.js';
import { loadTokenFile } from '../api/auth.js';
import { startApi } from '../api/server.js';
import {
  BadProbeError,
  type AgentStatus,
  type SourceNote,
  type SourceStatus,
} from '../api/types.js';
import { Datapath } from '../datapath/datapath.js';
import {
  attributionFromWorld,
  EventIngest,
  FlowPipeline,
  monotonicToWallOffsetNs,
  NdjsonFileSink,
  OcsfFileSink,
  StreamSink,
  type FlowSink,
} from '../flows/index.js';
import { compileFilter } from '../flows/filter.js';
import { AgentMetrics } from '../metrics/metrics.js';
import { Reconciler } from '../reconcile/reconciler.js';
import {
  DirectorySource,
  KubernetesSource,
  MeshPolicyStatusWriter,
  type SourceSnapshot,
} from '../sources/index.js';
import { MeshStore } from '../../../tunnel/src/mesh-store.js';
import {
  countRecords,
  meshInputs,
  mergeSnapshots,
  type MeshNote,
  type MeshView,
} from '../sources/mesh-store-merge.js';
import { EndpointPublisher } from '../sources/mesh-store-publisher.js';
import { MeshStoreSource } from '../sources/mesh-store-source.js';
import { screenLocalObjects } from './local-objects.js';
import { readAllocationFile, writeAllocationFile } from './allocation-file.js';
import { AgentConfigError, type AgentConfig } from './config.js';
import {
  localPods,
  matchByRoutes,
  matchStatic,
  readLinksAndRoutes,
  type LocalInterface,
} from './discovery.js';

export interface AgentLog {
  info(msg: string): void;
  error(msg: string): void;
}

export interface RunningAgent {
  /** The API's base URL. */
  readonly url: string;
  status(): AgentStatus & { readonly interfaces: readonly LocalInterface[] };
  /** Graceful stop: sinks flushed, API closed; programs and pins keep enforcing. */
  stop(): Promise<void>;
}

const stderrLog: AgentLog = {
  info: (m) => process.stderr.write(`palisade agent: ${m}\n`),
  error: (m) => process.stderr.write(`palisade agent: error: ${m}\n`),
};

export async function runAgent(
  config: AgentConfig,
  log: AgentLog = stderrLog,
): Promise<RunningAgent> {
  const nodeName = `${config.cluster}/${config.node}`;
  const token = await loadTokenFile(config.api.tokenFile);
  let filter;
  if (config.flows.filter !== null) {
    const f = compileFilter(config.flows.filter);
    if (!f.ok)
      throw new AgentConfigError(`flows.filter: column ${f.error.column}: ${f.error.message}`);
    filter = f.filter;
  }

  const metrics = new AgentMetrics();
  const sinks: FlowSink[] = [];
  if (config.flows.ndjson)
    sinks.push(new NdjsonFileSink(config.flows.ndjson.path, config.flows.ndjson));
  if (config.flows.ocsf) sinks.push(new OcsfFileSink(config.flows.ocsf.path, config.flows.ocsf));
  if (config.flows.stdout) sinks.push(new StreamSink(process.stdout));
  const pipeline = new FlowPipeline({
    sinks,
    nodeName,
    metrics,
    ...(filter ? { filter } : {}),
    lostReportIntervalMs: 10_000,
  });

  const dp = Datapath.open({
    pinDir: config.pinDir,
    denyEventsPerSec: config.denyEventsPerSec,
    sizes: config.datapath,
  });
  const clockOffsetNs = monotonicToWallOffsetNs();

  let interfaces = new Map<string, LocalInterface>();
  const attached = new Set<number>();
  let world: World | undefined;
  let prepared: PreparedWorld | undefined;
  let ingest: EventIngest | undefined;
  let unsubscribe: (() => void) | undefined;
  let stopped = false;

  async function discover(pods: World | undefined): Promise<boolean> {
    const { links, routes } = await readLinksAndRoutes();
    const found =
      config.interfaces.discovery === 'static'
        ? matchStatic(config.interfaces.static, links)
        : pods
          ? matchByRoutes(
              localPods(pods, config.cluster, config.node),
              links,
              routes,
              config.interfaces.kinds,
            )
          : [];
    const next = new Map(found.map((f) => [f.endpoint, f]));
    const same =
      next.size === interfaces.size &&
      [...next].every(([id, f]) => interfaces.get(id)?.ifindex === f.ifindex);
    interfaces = next;
    return !same;
  }

  const allocationPath = join(config.stateDir, 'allocation.json');
  const saved = readAllocationFile(allocationPath);
  if (saved !== null && 'error' in saved) {
    log.error(`${allocationPath}: ${saved.error}; numbering identities afresh`);
  }
  const reconciler = new Reconciler({
    ...(saved !== null && !('error' in saved) ? { initialAllocation: saved } : {}),
    nodeName,
    cluster: config.cluster,
    applier: dp,
    ifindexOf: (id) => interfaces.get(id)?.ifindex,
    metrics,
    debounceMs: config.debounceMs,
    onError: (m) => {
      log.error(m);
      writeStatusSoon();
    },
    onApplied: (compiled, w) => {
      try {
        writeAllocationFile(allocationPath, compiled.allocation);
      } catch (e) {
        log.error(`${allocationPath}: ${(e as Error).message}`);
      }
      world = w;
      prepared = undefined;
      // Endpoints are in the map (applyFull) before the programs see packets.
      const want = new Set([...interfaces.values()].map((i) => i.ifindex));
      for (const i of want) {
        if (attached.has(i)) continue;
        try {
          dp.attach(i);
          attached.add(i);
        } catch (e) {
          log.error(`attach ifindex ${i}: ${(e as Error).message}`);
        }
      }
      for (const i of [...attached]) {
        if (want.has(i)) continue;
        try {
          dp.detach(i);
        } catch (e) {
          log.error(`detach ifindex ${i}: ${(e as Error).message}`);
        }
        attached.delete(i);
      }
      const ctx = attributionFromWorld(w, compiled.encoded.cookies, {
        nodeName,
        cluster: config.cluster,
        clockOffsetNs,
      });
      if (!ingest) {
        ingest = new EventIngest(pipeline, ctx);
        const ing = ingest;
        unsubscribe = dp.onEvent((ev) => ing.decoded(ev));
      } else ingest.setContext(ctx);
      writeStatusSoon();
    },
  });

  // Kubernetes mode: this node's realization of each MeshNetworkPolicy goes
  // to its status subresource (sources/status-writer.ts), after every round.
  let kubeConfig: KubeConfig | undefined;
  if (config.source.kind === 'kubernetes') {
    kubeConfig = new KubeConfig();
    if (config.source.kubeconfig) kubeConfig.loadFromFile(config.source.kubeconfig);
    else kubeConfig.loadFromDefault();
  }
  const statusWriter = kubeConfig
    ? new MeshPolicyStatusWriter({
        kubeConfig,
        cluster: config.cluster,
        node: config.node,
        onError: (p, m) => log.error(`status of MeshNetworkPolicy ${p}: ${m}`),
      })
    : undefined;
  let statusWrites = Promise.resolve();
  let statusQueued = false;
  function writeStatusSoon(): void {
    if (!statusWriter || statusQueued) return;
    statusQueued = true;
    statusWrites = statusWrites.then(async () => {
      statusQueued = false;
      if (!stopped) await statusWriter.write(reconciler.status().policies);
    });
  }

  // The mesh store: other clusters' endpoints and MeshNetworkPolicies merged
  // into the local source's snapshot; this node's pods published.
  const store = config.mesh
    ? MeshStore.connect(config.mesh.etcd, config.mesh.callTimeoutMs)
    : undefined;
  const publisher =
    store && config.mesh?.publish
      ? new EndpointPublisher({
          store,
          cluster: config.cluster,
          node: config.node,
          ttlSec: config.mesh.leaseTtlSec,
          batchSize: config.mesh.batchSize,
          onError: (m) => log.error(m),
        })
      : undefined;
  let meshView: MeshView | undefined;
  let meshWaitOver = !store;
  let meshShadowed: MeshNote[] = [];
  const meshSource = store
    ? new MeshStoreSource({
        store,
        cluster: config.cluster,
        debounceMs: Math.min(config.debounceMs, 50),
        onLog: (m) => log.error(m),
        onChange: (v) => {
          meshView = v;
          meshWaitOver = true;
          metrics.setMesh(countRecords(v));
          discovering = discovering.then(() => combine());
        },
      })
    : undefined;

  // The local source's newest snapshot (foreign objects screened out) and world.
  let local: { snapshot: SourceSnapshot; loaded: LoadResult; original: SourceSnapshot } | undefined;
  let localNotes: readonly SourceNote[] = [];
  const warned = new Set<string>();
  const sourceMode = config.source.kind;
  const parseCache = new ParseCache(); // each snapshot re-reads every file; most are unchanged
  function onSnapshot(s: SourceSnapshot): void {
    discovering = discovering.then(async () => {
      if (stopped) return;
      const loaded = loadWorldFromTexts(s.inputs, { parseCache });
      const screened = screenLocalObjects(s, loaded, config.cluster, sourceMode);
      localNotes = screened.notes;
      // One warning per object, not per snapshot.
      const keys = new Set(screened.notes.map((n) => `${n.key}\0${n.message}`));
      for (const n of screened.notes)
        if (!warned.has(`${n.key}\0${n.message}`)) log.info(`warning: ${n.key}: ${n.message}`);
      for (const k of [...warned]) if (!keys.has(k)) warned.delete(k);
      for (const k of keys) warned.add(k);
      local = { snapshot: screened.snapshot, loaded, original: s };
      publisher?.update(loaded.world);
      await combine();
    });
  }

  // Discover with the snapshot's pods before the reconciler syncs it, so the
  // first sync after a restart keeps every local endpoint in the map.
  let discovering = Promise.resolve();
  let localKey: string | undefined;
  async function combine(): Promise<void> {
    const cur = local;
    if (stopped || !cur || !meshWaitOver) return;
    const { loaded } = cur;
    let s = cur.snapshot;
    if (meshView) {
      const m = meshInputs(meshView, loaded.world);
      meshShadowed = m.shadowed;
      s = mergeSnapshots(s, m.inputs);
    }
    {
      // Only a change of the local pods needs netlink now; interfaces that
      // come and go for the same pods are the rescan timer's job.
      const key = JSON.stringify(
        localPods(loaded.world, config.cluster, config.node).map((p) => [
          p.namespace,
          p.name,
          p.ips,
        ]),
      );
      if (key !== localKey || config.interfaces.discovery === 'static') {
        try {
          await discover(loaded.world);
          localKey = key;
        } catch (e) {
          log.error(`interface discovery: ${(e as Error).message}`);
        }
      }
      // The reconciler reuses our load only when it is of the same content
      // (digest), i.e. when nothing was screened out or merged in.
      reconciler.submit(s, { of: cur.original, loaded });
    }
  }

  const source =
    config.source.kind === 'directory'
      ? new DirectorySource({
          dir: config.source.dir,
          onSnapshot,
          debounceMs: config.debounceMs,
          rescanMs: config.source.rescanMs,
        })
      : (() => {
          return new KubernetesSource({
            kubeConfig: kubeConfig as KubeConfig,
            onSnapshot,
            clusterName: config.cluster,
            debounceMs: config.debounceMs,
            onError: (r, m) => log.error(`kubernetes ${r}: ${m}`),
          });
        })();

  const sourceStatus = (): SourceStatus[] => {
    const localProblems = local?.snapshot.problems ?? [];
    const out: SourceStatus[] = [
      {
        name: config.source.kind,
        state: local ? 'synced' : 'connecting',
        problems: localNotes.length + localProblems.length,
        ignored: 0,
        notes: [
          ...localProblems.map((p) => ({ key: p.file, kind: 'problem', message: p.message })),
          ...localNotes,
        ].slice(0, 100),
      },
    ];
    if (meshSource) {
      const st = meshSource.status();
      const notes = meshSource.currentNotes();
      const order = { problem: 0, shadowed: 1, ignored: 2 } as const;
      notes.sort((a, b) => order[a.kind] - order[b.kind] || (a.key < b.key ? -1 : 1));
      out.push({
        name: 'mesh',
        state: st.state,
        problems: st.problems,
        ignored: st.ignored + meshShadowed.length,
        notes: [
          ...notes.filter((n) => n.kind === 'problem'),
          ...meshShadowed,
          ...notes.filter((n) => n.kind !== 'problem'),
        ].slice(0, 100),
        counts: {
          ...st.counts,
          fullReads: st.fullReads,
          ...(publisher ? { published: publisher.publishedCount } : {}),
        },
        revision: st.revision,
        lastError: st.lastError ?? publisher?.lastError ?? null,
      });
    }
    return out;
  };

  const status = () => ({
    ...reconciler.status(),
    sources: sourceStatus(),
    interfaces: [...interfaces.values()],
  });

  const { app, url } = await startApi({
    token,
    nodeName,
    metrics,
    pipeline,
    isEnforced: () => reconciler.isEnforced(),
    status,
    evaluate: (probe) => {
      if (!world) throw new BadProbeError('no policy enforced yet');
      prepared ??= prepareWorld(world);
      try {
        return evaluate(prepared, probe);
      } catch (e) {
        throw new BadProbeError((e as Error).message);
      }
    },
    host: config.api.host,
    port: config.api.port,
  }).catch((e: Error) => {
    store?.close(); // an open etcd channel would keep the process alive
    dp.close();
    throw new AgentConfigError(`api.listen ${config.api.host}:${config.api.port}: ${e.message}`);
  });
  const api: FastifyInstance = app;

  if (meshSource) {
    // The first sync waits (bounded) for the store, so a restarting agent does
    // not drop the mesh's policies and endpoints for a moment; the pinned
    // state keeps enforcing meanwhile.
    const wait = setTimeout(() => {
      if (meshWaitOver || stopped) return;
      meshWaitOver = true;
      log.error(
        `mesh store not read within ${config.mesh?.initialSyncTimeoutMs} ms: enforcing the local source alone until it is`,
      );
      discovering = discovering.then(() => combine());
    }, config.mesh?.initialSyncTimeoutMs ?? 0);
    wait.unref();
    void meshSource.start();
  }
  await source.start();

  const tick = setInterval(() => {
    dp.drainEvents();
    ingest?.ringbufLostTotal(dp.eventStats().lost);
    if (config.statusFile) {
      try {
        writeFileSync(
          `${config.statusFile}.tmp`,
          JSON.stringify({ ...status(), pid: process.pid, flows: pipeline.stats }, null, 2),
        );
        renameSync(`${config.statusFile}.tmp`, config.statusFile);
      } catch (e) {
        log.error(`status file: ${(e as Error).message}`);
      }
    }
  }, 250);
  const rescan = setInterval(() => {
    discovering = discovering.then(async () => {
      if (stopped) return;
      try {
        if (await discover(world)) reconciler.resync();
      } catch (e) {
        log.error(`interface discovery: ${(e as Error).message}`);
      }
    });
  }, config.interfaces.rescanMs);

  log.info(
    `node ${nodeName}: API on ${url}, pins in ${config.pinDir}, attach ${dp.attachMode} (${dp.attachModeReason})`,
  );

  return {
    url,
    status,
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(tick);
      clearInterval(rescan);
      await Promise.resolve(source.stop());
      await meshSource?.stop();
      publisher?.stop();
      store?.close();
      reconciler.stop();
      await discovering.catch(() => undefined);
      await statusWrites.catch(() => undefined);
      dp.drainEvents();
      unsubscribe?.();
      await api.close();
      await pipeline.close().catch((e: Error) => log.error(`flow sinks: ${e.message}`));
      dp.close();
    },
  };
}
