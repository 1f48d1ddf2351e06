/**
 * One cluster's WireGuard gateway: reconciles its network namespace to
 * planGateway(mesh) and keeps its records alive in the mesh store. Apply is
 * by diff (per-peer update_only / replace_allowed_ips, `ip route replace`),
 * never by tearing down a device or peer that is still wanted. A failed step
 * leaves what was applied before in place and is retried on the next change
 * or poll; the error is kept for status.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { formatConflicts, type Admission } from './cidr-conflicts.js';
import {
  UapiControl,
  WgToolControl,
  detectBackend,
  type BackendDetection,
  type WireGuardControl,
} from './control.js';
import { diffDevice, diffRoutes } from './diff.js';
import { classify, observe, type PeerHealth, type PeerObservation } from './health.js';
import { generateKeyPair, publicKeyOf, readPrivateKeyFile, writePrivateKeyFile } from './keys.js';
import {
  MeshStore,
  checkClusterName,
  type ClusterRecord,
  type GatewayRecord,
  type MeshSnapshot,
} from './mesh-store.js';
import { TunnelMetrics } from './metrics.js';
import { NetnsIp } from './netns-ip.js';
import {
  epochSlot,
  planGateway,
  type DevicePlan,
  type GatewayPlan,
  type Member,
  type OwnKey,
} from './plan.js';
import {
  checkIfaceName,
  isWireguardGo,
  startWireguardGo,
  stopWireguardGo,
} from './wireguard-go-process.js';

export interface GatewayConfig {
  readonly cluster: ClusterRecord;
  readonly netns: string;
  /** Device names are ifaceBase + 'a' / 'b' (two key epochs); at most 14 characters, unique on the host. */
  readonly ifaceBase: string;
  readonly underlayMtu: number;
  readonly mtu?: number;
  readonly keepaliveSec: number;
  readonly leaseTtlSec: number;
  readonly keyDir: string;
  readonly stateDir: string;
  readonly etcdEndpoints: readonly string[];
  readonly addresses?: readonly string[];
  readonly pollIntervalMs?: number;
  readonly callTimeoutMs?: number;
  /** Scheduled rotation: start a mesh-wide rotation when the epoch is older than this (0/absent = only on demand). */
  readonly rotateEverySec?: number;
}

export class JoinRefusedError extends Error {
  override name = 'JoinRefusedError';
  constructor(
    message: string,
    readonly admission: Admission,
  ) {
    super(message);
  }
}

export interface PeerStatus extends PeerHealth {
  readonly cluster: string;
  readonly epoch: number;
  readonly iface: string;
  readonly endpoint: string | null;
  readonly allowedIPs: readonly string[];
  readonly rxBytes: number;
  readonly txBytes: number;
  readonly lastHandshakeSec: number;
  /** The store's key for this peer differs from the one on the device. */
  readonly keyMismatch: boolean;
}

export interface GatewayStatus {
  readonly cluster: string;
  readonly backend: BackendDetection;
  readonly epoch: number;
  readonly devices: readonly {
    readonly iface: string;
    readonly epoch: number;
    readonly pid: number | null;
    readonly listenPort: number;
    readonly mtu: number;
  }[];
  readonly peers: readonly PeerStatus[];
  readonly refused: Admission['refused'];
  /** Unreadable mesh store records (their last good version stays in use). */
  readonly storeErrors: readonly string[];
  readonly lastError: string | null;
}

interface StateFile {
  managerPid: number;
  netns: string;
  devices: Record<string, { pid: number | null; epoch: number }>;
}

function parseEndpoint(ep: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(ep);
  if (!m)
    throw new Error(
      `cluster gateway.endpoint ${JSON.stringify(ep)}: expected address:port ([v6]:port)`,
    );
  return { host: (m[1] ?? m[2]) as string, port: Number(m[3]) };
}

export class Gateway {
  readonly metrics: TunnelMetrics;
  readonly backend: BackendDetection;
  private readonly ipn: NetnsIp;
  private readonly endpoint: { host: string; port: number };
  private readonly store: MeshStore;
  private readonly ownsStore: boolean;
  private ownKeys = new Map<number, OwnKey>();
  private devices = new Map<
    string,
    { pid: number | null; epoch: number; control: WireGuardControl; mtu: number }
  >();
  private snapshot: MeshSnapshot = { epoch: 0, epochStartedAtMs: 0, members: [], errors: [] };
  private createdAtMs = Date.now();
  private lastGood = new Map<string, Member>();
  private obs = new Map<string, PeerObservation>();
  private handshaken = new Map<number, Set<string>>();
  private plan: GatewayPlan | null = null;
  private published = '';
  private stopWatch: (() => Promise<void>) | null = null;
  private timer: NodeJS.Timeout | null = null;
  private chain: Promise<void> = Promise.resolve();
  private running = false;
  lastError: string | null = null;

  constructor(
    readonly config: GatewayConfig,
    store?: MeshStore,
    metrics?: TunnelMetrics,
  ) {
    checkClusterName(config.cluster.name);
    if (config.ifaceBase.length > 14)
      throw new Error(
        `ifaceBase ${JSON.stringify(config.ifaceBase)}: at most 14 characters (a suffix a/b is added)`,
      );
    checkIfaceName(`${config.ifaceBase}a`);
    if (!config.cluster.gateway)
      throw new Error(
        `cluster ${config.cluster.name}: spec.gateway.endpoint is required for a gateway`,
      );
    this.endpoint = parseEndpoint(config.cluster.gateway.endpoint);
    this.ipn = new NetnsIp(config.netns, config.callTimeoutMs);
    this.store = store ?? MeshStore.connect(config.etcdEndpoints);
    this.ownsStore = store === undefined;
    this.metrics = metrics ?? new TunnelMetrics();
    this.backend = detectBackend();
  }

  private get name(): string {
    return this.config.cluster.name;
  }

  private keyPath(epoch: number): string {
    return join(this.config.keyDir, `${this.name}.${epoch}.key`);
  }

  private statePath(): string {
    return join(this.config.stateDir, `${this.name}.json`);
  }

  private options() {
    return {
      ifaceBase: this.config.ifaceBase,
      basePort: this.endpoint.port,
      keepaliveSec: this.config.keepaliveSec,
      underlayMtu: this.config.underlayMtu,
      ...(this.config.mtu !== undefined ? { mtu: this.config.mtu } : {}),
      ...(this.config.addresses ? { addresses: this.config.addresses } : {}),
    };
  }

  private async ensureKey(epoch: number): Promise<OwnKey> {
    const have = this.ownKeys.get(epoch);
    if (have) return have;
    const path = this.keyPath(epoch);
    let privateKey;
    if (existsSync(path)) privateKey = await readPrivateKeyFile(path);
    else {
      privateKey = generateKeyPair().privateKey;
      await writePrivateKeyFile(path, privateKey);
    }
    const k = { epoch, privateKey, publicKey: publicKeyOf(privateKey) };
    this.ownKeys.set(epoch, k);
    return k;
  }

  /** Brings the gateway up and keeps it converging until down() or detach(). */
  async up(): Promise<void> {
    if (this.backend.backend === 'none')
      throw new Error(`no WireGuard implementation: ${this.backend.reason}`);
    if (!(await this.ipn.exists()))
      throw new Error(`network namespace ${this.config.netns} does not exist`);
    await mkdir(this.config.stateDir, { recursive: true, mode: 0o700 });
    await mkdir(this.config.keyDir, { recursive: true, mode: 0o700 });
    const snap = await this.store.snapshot();
    await this.ensureKey(snap.epoch);
    if (existsSync(this.keyPath(snap.epoch - 1))) await this.ensureKey(snap.epoch - 1);

    // Refuse to join (publish nothing) when our ranges overlap a member's.
    const others = snap.members.filter((m) => m.name !== this.name);
    const self = snap.members.find((m) => m.name === this.name);
    const probe = planGateway({
      local: this.name,
      localEndpointHost: this.endpoint.host,
      meshEpoch: snap.epoch,
      members: [
        ...others,
        this.selfMember(snap.epoch, self?.joinRevision ?? Number.MAX_SAFE_INTEGER),
      ],
      ownKeys: [...this.ownKeys.values()],
      handshaken: new Map(),
      options: this.options(),
    });
    if (!probe.selfAdmitted) {
      const mine = probe.admission.refused.find((r) => r.cluster === this.name);
      const lines = formatConflicts({
        conflicts: mine?.conflicts ?? [],
        invalid: mine?.invalid ?? [],
      });
      throw new JoinRefusedError(
        `cluster ${this.name} refused: its CIDRs overlap members of the mesh; nothing was routed\n${lines.join('\n')}`,
        probe.admission,
      );
    }
    await this.adoptState();
    await this.ipn.enableForwarding();
    this.running = true;
    await this.store.join(
      this.clusterRecord(),
      this.gatewayRecord(snap.epoch),
      this.config.leaseTtlSec,
    );
    this.snapshot = await this.store.snapshot();
    await this.reconcileNow();
    this.stopWatch = await this.store.watch((s) => {
      this.snapshot = s;
      void this.reconcile();
    });
    const poll = this.config.pollIntervalMs ?? Math.max(200, (this.config.keepaliveSec * 1000) / 4);
    this.timer = setInterval(() => void this.reconcile(), poll);
  }

  private clusterRecord(): ClusterRecord {
    const c = this.config.cluster;
    return {
      name: c.name,
      labels: c.labels,
      podCIDRs: c.podCIDRs,
      serviceCIDRs: c.serviceCIDRs,
      nodeCIDRs: c.nodeCIDRs,
      gateway: c.gateway,
    };
  }

  private gatewayRecord(epochHint: number): GatewayRecord {
    const keys = this.plan
      ? this.plan.devices.map((d) => ({
          epoch: d.epoch,
          publicKey: d.publicKey,
          port: d.listenPort,
        }))
      : [...this.ownKeys.values()]
          .filter((k) => k.epoch >= epochHint - 1)
          .map((k) => ({
            epoch: k.epoch,
            publicKey: k.publicKey,
            port: epochSlot(this.options(), k.epoch).port,
          }));
    return {
      endpointHost: this.endpoint.host,
      keys: keys.sort((a, b) => a.epoch - b.epoch),
      routesEpoch: this.plan?.routesEpoch ?? epochHint,
    };
  }

  private selfMember(epoch: number, joinRevision: number): Member {
    const g = this.gatewayRecord(epoch);
    return {
      ...this.clusterRecord(),
      endpointHost: g.endpointHost,
      keys: g.keys,
      routesEpoch: g.routesEpoch,
      joinRevision,
    };
  }

  /** Takes over devices a previous manager left running (so a manager restart does not drop traffic). */
  private async adoptState(): Promise<void> {
    const text = await readFile(this.statePath(), 'utf8').catch(() => null);
    if (!text) return;
    let st: StateFile;
    try {
      st = JSON.parse(text) as StateFile;
    } catch {
      return;
    }
    for (const [iface, d] of Object.entries(st.devices ?? {})) {
      const live =
        this.backend.backend === 'kernel'
          ? await this.ipn.linkExists(iface)
          : d.pid !== null && isWireguardGo(d.pid, iface);
      if (live)
        this.devices.set(iface, {
          pid: d.pid,
          epoch: d.epoch,
          control: this.control(iface),
          mtu: (await this.ipn.linkMtu(iface)) ?? 0,
        });
    }
  }

  private async writeState(): Promise<void> {
    const st: StateFile = { managerPid: process.pid, netns: this.config.netns, devices: {} };
    for (const [iface, d] of this.devices) st.devices[iface] = { pid: d.pid, epoch: d.epoch };
    const tmp = `${this.statePath()}.tmp`;
    await writeFile(tmp, JSON.stringify(st, null, 2), { mode: 0o600 });
    await rename(tmp, this.statePath());
  }

  private control(iface: string): WireGuardControl {
    return this.backend.backend === 'kernel'
      ? new WgToolControl(iface, this.config.netns, this.config.callTimeoutMs)
      : new UapiControl(iface, this.config.callTimeoutMs);
  }

  /** Queues one reconcile; concurrent triggers collapse into the chain. */
  reconcile(): Promise<void> {
    this.chain = this.chain
      .then(() => (this.running ? this.reconcileNow() : undefined))
      .catch(() => undefined);
    return this.chain;
  }

  private membersFromSnapshot(): Member[] {
    // A record that became unreadable keeps its last good version: bad input never tears down a working peer.
    const bad = new Set(
      this.snapshot.errors
        .map((e) => e.split(': ')[0]?.split('/')[3])
        .filter((x): x is string => !!x),
    );
    const out = new Map<string, Member>();
    for (const m of this.snapshot.members) {
      out.set(m.name, m);
      this.lastGood.set(m.name, m);
    }
    for (const n of bad) {
      const g = this.lastGood.get(n);
      if (g && !out.has(n)) out.set(n, g);
    }
    for (const n of [...this.lastGood.keys()]) if (!out.has(n)) this.lastGood.delete(n);
    return [...out.values()];
  }

  private async reconcileNow(): Promise<void> {
    try {
      const epoch = this.snapshot.epoch;
      await this.ensureKey(epoch);
      const members = this.membersFromSnapshot();
      const selfRev =
        members.find((m) => m.name === this.name)?.joinRevision ?? Number.MAX_SAFE_INTEGER;
      const all = [...members.filter((m) => m.name !== this.name), this.selfMember(epoch, selfRev)];
      await this.observeHealth();
      const plan = planGateway({
        local: this.name,
        localEndpointHost: this.endpoint.host,
        meshEpoch: epoch,
        members: all,
        ownKeys: [...this.ownKeys.values()],
        handshaken: this.handshaken,
        options: this.options(),
      });
      for (const d of plan.devices) await this.applyDevice(d);
      await this.applyRoutes(plan);
      for (const [iface, d] of [...this.devices]) {
        if (!plan.devices.some((p) => p.iface === iface)) await this.removeDevice(iface, d.epoch);
      }
      this.plan = plan;
      await this.nudgeKeepalives();
      await this.writeState();
      await this.writeStatusFile();
      await this.maybeScheduleRotation();
      const rec = this.gatewayRecord(epoch);
      const text = JSON.stringify(rec);
      if (text !== this.published) {
        await this.store.updateGateway(rec);
        this.published = text;
      }
      this.lastError = null;
    } catch (e) {
      this.lastError = (e as Error).message;
    }
  }

  private async applyDevice(d: DevicePlan): Promise<void> {
    let dev = this.devices.get(d.iface);
    if (dev && dev.epoch !== d.epoch) {
      await this.removeDevice(d.iface, dev.epoch);
      dev = undefined;
    }
    const alive =
      dev &&
      (this.backend.backend === 'kernel'
        ? await this.ipn.linkExists(d.iface)
        : dev.pid !== null && isWireguardGo(dev.pid, d.iface));
    if (!dev || !alive) {
      // Missing or died (crash, kill): start it again; peers reconnect by themselves.
      let pid: number | null = null;
      if (this.backend.backend === 'kernel') {
        await this.ipn.ip(['link', 'add', 'dev', d.iface, 'type', 'wireguard']);
      } else {
        pid = await startWireguardGo(
          this.config.netns,
          d.iface,
          join(this.config.stateDir, `${d.iface}.log`),
        );
      }
      dev = { pid, epoch: d.epoch, control: this.control(d.iface), mtu: 0 };
      this.devices.set(d.iface, dev);
      await this.writeState();
    }
    const cur = await dev.control.get();
    const change = diffDevice(cur, d);
    if (change) await dev.control.set(change);
    if (dev.mtu !== d.mtu) {
      for (const a of d.addresses) await this.ipn.addAddress(d.iface, a);
      await this.ipn.setUp(d.iface, d.mtu);
      dev.mtu = d.mtu;
    }
  }

  private async applyRoutes(plan: GatewayPlan): Promise<void> {
    const cur = [];
    for (const iface of this.devices.keys()) cur.push(...(await this.ipn.routes(iface)));
    for (const ch of diffRoutes(cur, plan.routes)) {
      if (ch.op === 'replace') await this.ipn.replaceRoute(ch.dst, ch.iface);
      else await this.ipn.deleteRoute(ch.dst, ch.iface).catch(() => undefined);
    }
  }

  private async removeDevice(iface: string, epoch: number): Promise<void> {
    const d = this.devices.get(iface);
    if (d?.pid != null) await stopWireguardGo(d.pid, iface);
    if (this.backend.backend === 'kernel') await this.ipn.deleteLink(iface);
    this.devices.delete(iface);
    for (const k of [...this.obs.keys()]) if (k.startsWith(`${iface}/`)) this.obs.delete(k);
    this.handshaken.delete(epoch);
    if (epoch < this.snapshot.epoch) {
      this.ownKeys.delete(epoch);
      await rm(this.keyPath(epoch), { force: true });
    }
  }

  /** The last observed status, for `palisade tunnel status` (no secrets in it). */
  statusFilePath(): string {
    return join(this.config.stateDir, `${this.name}.status.json`);
  }

  private async writeStatusFile(): Promise<void> {
    const st = this.currentStatus();
    const tmp = `${this.statusFilePath()}.tmp`;
    await writeFile(
      tmp,
      JSON.stringify({ observedAtMs: Date.now(), managerPid: process.pid, ...st }, null, 2),
      { mode: 0o600 },
    );
    await rename(tmp, this.statusFilePath());
  }

  private async maybeScheduleRotation(): Promise<void> {
    const every = this.config.rotateEverySec ?? 0;
    if (every <= 0) return;
    const since = this.snapshot.epochStartedAtMs || this.createdAtMs;
    if (Date.now() - since >= every * 1000) await this.store.bumpEpoch(this.snapshot.epoch);
  }

  private clusterOfKey(publicKey: string, epoch: number): string | null {
    for (const m of this.lastGood.values())
      if (m.keys.some((k) => k.epoch === epoch && k.publicKey === publicKey)) return m.name;
    return (
      this.plan?.devices
        .find((d) => d.epoch === epoch)
        ?.peers.find((p) => p.publicKey === publicKey)?.cluster ?? null
    );
  }

  private peerStatuses: PeerStatus[] = [];
  private lastNudgeMs = 0;

  /**
   * Makes every device send a keepalive to each of its peers now. WireGuard's
   * persistent keepalive is suppressed by any packet received, so with equal
   * intervals on both ends one end can stay silent for minutes and its peer
   * could not tell it from a dead one. Turning persistent keepalive off and on
   * again sends one at once (wireguard-go and the kernel both do), so each
   * gateway is heard by its peers at least every keepalive interval.
   */
  private async nudgeKeepalives(): Promise<void> {
    const now = Date.now();
    if (now - this.lastNudgeMs < this.config.keepaliveSec * 1000 * 0.9) return;
    this.lastNudgeMs = now;
    for (const [iface, d] of this.devices) {
      const peers = this.plan?.devices.find((p) => p.iface === iface)?.peers ?? [];
      if (peers.length === 0) continue;
      await d.control
        .set({
          peers: peers.map((p) => ({
            publicKey: p.publicKey,
            updateOnly: true,
            persistentKeepalive: 0,
          })),
        })
        .catch(() => undefined);
      await d.control
        .set({
          peers: peers.map((p) => ({
            publicKey: p.publicKey,
            updateOnly: true,
            persistentKeepalive: p.keepaliveSec,
          })),
        })
        .catch(() => undefined);
    }
  }

  private async observeHealth(): Promise<void> {
    const now = Date.now();
    const out: PeerStatus[] = [];
    for (const [iface, d] of this.devices) {
      const st = await d.control.get().catch(() => null);
      if (!st) continue;
      const hs = new Set<string>();
      for (const p of st.peers) {
        const cluster =
          this.clusterOfKey(p.publicKey, d.epoch) ??
          this.plan?.devices
            .find((x) => x.iface === iface)
            ?.peers.find((x) => x.publicKey === p.publicKey)?.cluster;
        const key = `${iface}/${p.publicKey}`;
        const o = observe(this.obs.get(key), p, now);
        this.obs.set(key, o);
        const h = classify(o, this.config.keepaliveSec, now);
        if (p.lastHandshakeSec > 0 && cluster) hs.add(cluster);
        if (!cluster) continue;
        const published = this.lastGood
          .get(cluster)
          ?.keys.find((k) => k.epoch === d.epoch)?.publicKey;
        out.push({
          ...h,
          cluster,
          epoch: d.epoch,
          iface,
          endpoint: p.endpoint,
          allowedIPs: p.allowedIPs,
          rxBytes: p.rxBytes,
          txBytes: p.txBytes,
          lastHandshakeSec: p.lastHandshakeSec,
          keyMismatch: published !== undefined && published !== p.publicKey,
        });
        this.metrics.record(key, {
          cluster,
          txBytes: p.txBytes,
          rxBytes: p.rxBytes,
          lastHandshakeSec: p.lastHandshakeSec,
          up: h.state === 'up',
        });
      }
      this.handshaken.set(d.epoch, hs);
    }
    this.peerStatuses = out.sort((a, b) => a.cluster.localeCompare(b.cluster) || a.epoch - b.epoch);
  }

  /** Current status (polls the devices once). */
  async status(): Promise<GatewayStatus> {
    await this.observeHealth();
    return this.currentStatus();
  }

  private currentStatus(): GatewayStatus {
    return {
      cluster: this.name,
      backend: this.backend,
      epoch: this.snapshot.epoch,
      devices: [...this.devices].map(([iface, d]) => ({
        iface,
        epoch: d.epoch,
        pid: d.pid,
        listenPort: epochSlot(this.options(), d.epoch).port,
        mtu: d.mtu,
      })),
      peers: this.peerStatuses,
      refused: this.plan?.admission.refused ?? [],
      storeErrors: this.snapshot.errors,
      lastError: this.lastError,
    };
  }

  /** Starts a mesh-wide key rotation; every gateway (this one included) hands over by itself. */
  async rotate(): Promise<number> {
    return this.store.bumpEpoch();
  }

  private async stopLoops(): Promise<void> {
    this.running = false;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.stopWatch) await this.stopWatch().catch(() => undefined);
    this.stopWatch = null;
    await this.chain;
  }

  /** Clean removal: leave the mesh, remove routes and devices, forget state. Keys stay (the cluster's identity). */
  async down(): Promise<void> {
    await this.stopLoops();
    await this.store.leave();
    for (const [iface, d] of [...this.devices]) {
      for (const r of await this.ipn.routes(iface).catch(() => []))
        await this.ipn.deleteRoute(r.dst, iface).catch(() => undefined);
      await this.removeDevice(iface, d.epoch);
    }
    await rm(this.statePath(), { force: true });
    await rm(this.statusFilePath(), { force: true });
    if (this.ownsStore) this.store.close();
  }

  /** Stops managing without touching the data plane or the store records (they age out): a manager crash. */
  async detach(): Promise<void> {
    await this.stopLoops();
    this.store.abandon();
    if (this.ownsStore) this.store.close();
  }

  /** Pids of the wireguard-go processes this gateway runs (tests kill them to simulate a crash). */
  pids(): number[] {
    return [...this.devices.values()].map((d) => d.pid).filter((p): p is number => p !== null);
  }
}
