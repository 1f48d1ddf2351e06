/**
 * The node's datapath: the BPF object loaded with its maps pinned under a
 * bpffs directory, compiled tables synced into those maps, programs attached
 * to pod interfaces. A table replaced by a policy change is one atomic step
 * for packets: a new inner table is filled completely, then swapped into the
 * outer array. A table the compiler patches (it only gains the entries of
 * identities new to the compile and loses those of identities gone from it)
 * is changed key by key in its inner map, in make-before-break order around
 * the ipcache and endpoint changes, so no packet looks up a half-patched
 * identity. config.revision is bumped after, so conntrack entries are
 * re-checked against the new policy (docs/datapath.md "Applying a delta").
 */
import { existsSync, mkdirSync, readdirSync, rmSync, statfsSync } from 'node:fs';
import { join } from 'node:path';

import {
  BPF_F_NO_PREALLOC,
  BPF_NOEXIST,
  BPF_TCX_EGRESS,
  BPF_TCX_INGRESS,
  BpfMap,
  BpfObject,
  MapType,
  closeFd,
  createMap,
  defaultObjectPath,
  mapFdById,
  isBpfError,
  objGet,
  objInfo,
  objPin,
  progIdOf,
  RingBuffer,
  tc,
  tcx,
  testRun,
  type TestRunResult,
} from '../../../bpf/binding/index.js';
import type {
  CompiledEndpoint,
  CompiledTable,
  EncodedDelta,
  EncodedTables,
  MapEntry,
  TablePatch,
} from '../../../policy-compiler/src/compiled.js';
import type { EndpointId } from '../../../policy-compiler/src/model/endpoint.js';
import { sameEntries, searchEntries } from '../../../policy-compiler/src/compile/table-patch.js';
import { decodeEvent, type PalEvent } from '../flows/event-decode.js';
import {
  CFG_F_AUDIT_EVENTS,
  DROP_REASON_NAMES,
  EP_F_POLICY_READY,
  SIZE,
  configValue,
  decodeConfig,
  decodeEndpointValue,
  endpointKey,
  endpointValue,
  sumCounters,
  u32Key,
  type Config,
  type Counter,
  type DropReasonName,
} from './structs.js';

const BPF_FS_MAGIC = 0xcafe4a11;

/** tc filter identity of our programs on every interface (both hooks), clsact mode. */
export const TC_HANDLE = 0x5a1;
export const TC_PRIORITY = 1;

/**
 * How the programs are attached to pod interfaces: `tcx` links (kernel >=
 * 6.6, no qdisc and no cls_bpf classifier on the packet path) or the
 * `clsact` qdisc with a direct-action cls_bpf filter (older kernels).
 */
export type AttachMode = 'tcx' | 'clsact';
/** `auto`: tcx where the kernel has it, else clsact. */
export type AttachModeChoice = 'auto' | AttachMode;
/** Environment override of the attach mode (when the open options name none). */
export const ATTACH_MODE_ENV = 'PALISADE_DATAPATH_ATTACH';

const TCX_POINTS = [
  ['ingress', 'from_pod'],
  ['egress', 'to_pod'],
] as const;
type TcPoint = (typeof TCX_POINTS)[number][0];

/** Pin file of the tcx link of one hook, in the pin directory next to the maps. */
export const tcxLinkPinName = (ifindex: number, point: TcPoint): string =>
  `tcx_${ifindex}_${point}`;
const TCX_PIN_RE = /^tcx_(\d+)_(ingress|egress)$/;

/** What runs on an interface, as the kernel reports it. */
export interface Attachment {
  /** null = our programs are not attached on both hooks */
  readonly mode: AttachMode | null;
  /** program ids on the ingress (from_pod) and egress (to_pod) hooks */
  readonly ingress: number | null;
  readonly egress: number | null;
}

export interface DatapathSizes {
  readonly endpoints?: number;
  readonly ipcache?: number;
  /** outer policy array (tables) */
  readonly tables?: number;
  /** entries per inner table */
  readonly tableEntries?: number;
  readonly conntrack?: number;
  readonly cookies?: number;
}

export interface DatapathOpenOptions {
  /** bpffs directory for pins (created if missing); null = private maps, nothing pinned (test engines). */
  readonly pinDir: string | null;
  readonly objectPath?: string;
  readonly sizes?: DatapathSizes;
  /** per-CPU deny event limit; 0 = unlimited. Default 1000. */
  readonly denyEventsPerSec?: number;
  /** Emit Audit-mode disagreement events. Default true. */
  readonly auditEvents?: boolean;
  /**
   * Take over as the loader (default true with a pinDir): pin the programs
   * and re-attach them on interfaces already running ours. False for a
   * second process that only reads or writes the pinned maps (an observer,
   * possibly in another network namespace, where ifindexes mean nothing).
   */
  readonly adopt?: boolean;
  /**
   * Private maps only (pinDir null): rewrite an existing inner table in place
   * instead of swapping a new one in, and empty removed tables instead of
   * deleting their slot. Not atomic for packets, but it avoids the RCU grace
   * period the kernel waits for on every map-in-map update; for test engines
   * where no traffic runs (an empty table and an absent one both deny).
   */
  readonly inPlaceTables?: boolean;
  /**
   * How to attach programs (default: env PALISADE_DATAPATH_ATTACH, else
   * `auto` = tcx links where the kernel supports them, clsact otherwise).
   */
  readonly attach?: AttachModeChoice;
}

export interface ApplyResult {
  readonly revision: number;
  /** Tables written whole (new inner map and swap, or rewritten in place with inPlaceTables). */
  readonly tablesWritten: number;
  /** Tables patched key by key in their inner map (applyDelta; 0 for applyFull). */
  readonly tablesPatched: number;
  readonly tablesRemoved: number;
  readonly endpointsWritten: number;
  readonly endpointsRemoved: number;
  readonly ipcacheWritten: number;
  readonly ipcacheRemoved: number;
}

export type IfindexOf = (endpoint: EndpointId) => number | undefined;

export type HookDirection = 'egress' | 'ingress';

export interface TestRunVerdict extends TestRunResult {
  readonly allowed: boolean;
}

/** Error for input that does not fit the maps: nothing was changed. */
export class DatapathCapacityError extends Error {
  override readonly name = 'DatapathCapacityError';
}

const DEFAULTS = {
  endpoints: 4096,
  ipcache: 262144,
  tables: 4096,
  tableEntries: 65536,
  conntrack: 262144,
  cookies: 65536,
} as const;

export class Datapath {
  private readonly maps: {
    endpoints: BpfMap;
    ipcache: BpfMap;
    policy: BpfMap;
    conntrack: BpfMap;
    config: BpfMap;
    ruleCounters: BpfMap;
    drops: BpfMap;
    stats: BpfMap;
    events: BpfMap;
  };
  private readonly sizes: Required<DatapathSizes>;
  /**
   * What each policy slot holds, for the slots this process wrote: skip
   * rewriting unchanged tables, and patch in place only a table whose
   * content is known. No entry = unknown (never written by this process,
   * failed, or in the middle of a patch).
   */
  private readonly slots = new Map<number, SlotContent>();
  /** endpoint id → ifindex written, to remove endpoints whose interface is gone */
  private readonly endpointIfindex = new Map<EndpointId, number>();
  private ring: RingBuffer | undefined;
  private readonly listeners = new Set<(e: PalEvent) => void>();
  private closed = false;
  private inPlace = false;
  private mode: AttachMode = 'clsact';
  private modeReason = '';
  private modeChoice: AttachModeChoice = 'auto';
  /** tcx link fds this process holds (private datapaths without a pin dir) */
  private readonly heldLinks = new Map<string, number>();

  private constructor(
    private readonly obj: BpfObject,
    readonly pinDir: string | null,
    sizes: Required<DatapathSizes>,
  ) {
    this.sizes = sizes;
    this.maps = {
      endpoints: obj.map('pal_endpoints'),
      ipcache: obj.map('pal_ipcache'),
      policy: obj.map('pal_policy'),
      conntrack: obj.map('pal_conntrack'),
      config: obj.map('pal_config'),
      ruleCounters: obj.map('pal_rule_ctrs'),
      drops: obj.map('pal_drops'),
      stats: obj.map('pal_stats'),
      events: obj.map('pal_events'),
    };
  }

  /**
   * Loads the object (verifier), reusing maps pinned under pinDir (state of
   * a previous agent: tables, conntrack, revision). Interfaces that already
   * run our programs get the freshly loaded ones by atomic tc replace, so
   * adopting a previous process's pins leaves no gap.
   */
  static open(opts: DatapathOpenOptions): Datapath {
    const sizes = { ...DEFAULTS, ...(opts.sizes ?? {}) };
    if (opts.pinDir !== null) ensureBpffsDir(opts.pinDir);
    const objectPath = opts.objectPath ?? defaultObjectPath();
    if (!existsSync(objectPath)) {
      throw new Error(`BPF object ${objectPath} is missing (run make -C bpf)`);
    }
    const obj = BpfObject.open(objectPath, {
      pinRoot: opts.pinDir,
      maxEntries: {
        pal_endpoints: sizes.endpoints,
        pal_ipcache: sizes.ipcache,
        pal_policy: sizes.tables,
        pal_conntrack: sizes.conntrack,
        pal_rule_ctrs: sizes.cookies,
      },
    });
    const dp = new Datapath(obj, opts.pinDir, sizes);
    try {
      dp.resolveAttachMode(opts.attach ?? attachModeFromEnv());
    } catch (e) {
      obj.close();
      throw e;
    }
    if (opts.inPlaceTables) {
      if (opts.pinDir !== null)
        throw new Error('inPlaceTables is for private maps only (pinDir: null)');
      dp.inPlace = true;
    }
    // The loader owns the settings; an observer keeps them unless it names one.
    const old = dp.config();
    const owner = opts.pinDir === null || opts.adopt !== false;
    dp.writeConfig({
      revision: old.revision,
      flags:
        opts.auditEvents !== undefined || owner
          ? opts.auditEvents === false
            ? 0
            : CFG_F_AUDIT_EVENTS
          : old.flags,
      denyEventsPerSec: opts.denyEventsPerSec ?? (owner ? 1000 : old.denyEventsPerSec),
    });
    if (opts.pinDir !== null && opts.adopt !== false) {
      dp.pinPrograms(opts.pinDir);
      dp.adoptAttachments();
    }
    return dp;
  }

  /** Removes a pin directory and everything pinned in it (maps die when nothing else holds them). */
  static removePins(pinDir: string): void {
    rmSync(pinDir, { recursive: true, force: true });
  }

  // --------------------------------------------------------------- sync

  /** Makes the maps equal to `encoded` (endpoints keyed by ifindexOf; unknown = not local, skipped). */
  applyFull(encoded: EncodedTables, ifindexOf: IfindexOf): ApplyResult {
    // Only this node's endpoints go into pal_endpoints: the world's others
    // (other nodes, other clusters) do not count against its capacity.
    const wantedEp = new Map<number, CompiledEndpoint>();
    for (const ep of encoded.endpoints) {
      const ifindex = ifindexOf(ep.endpoint);
      if (ifindex !== undefined) wantedEp.set(ifindex, ep);
    }
    this.checkCapacity(encoded.tables, encoded.ipcache.length, wantedEp.size);
    const ipcacheWritten = this.upsert(this.maps.ipcache, encoded.ipcache);

    const { written, failed } = this.writeTables(encoded.tables);

    for (const [ifindex, ep] of wantedEp) this.writeEndpoint(ifindex, ep, failed);
    let endpointsRemoved = 0;
    for (const key of [...this.maps.endpoints.keys()]) {
      if (!wantedEp.has(key.readUInt32LE(0)) && this.maps.endpoints.delete(key)) endpointsRemoved++;
    }
    this.endpointIfindex.clear();
    for (const [ifindex, ep] of wantedEp) this.endpointIfindex.set(ep.endpoint, ifindex);

    const wantedTables = new Set(encoded.tables.map((t) => t.table));
    const tablesRemoved = this.removeTablesExcept(wantedTables);

    const wantedIpc = new Set(encoded.ipcache.map((e) => hex(e.key)));
    let ipcacheRemoved = 0;
    for (const key of [...this.maps.ipcache.keys()]) {
      if (!wantedIpc.has(hex(key)) && this.maps.ipcache.delete(key)) ipcacheRemoved++;
    }
    const revision = this.bumpRevision();
    throwIfFailed(failed);
    return {
      revision,
      tablesWritten: written,
      tablesPatched: 0,
      tablesRemoved,
      endpointsWritten: wantedEp.size,
      endpointsRemoved,
      ipcacheWritten,
      ipcacheRemoved,
    };
  }

  /**
   * Applies the minimal change, against the tables this process last applied
   * (the caller's contract). Replaced tables are swapped whole; patched
   * tables are changed key by key in their current inner map when this
   * process knows that map's content, else written whole. `totals` (ipcache
   * entries and local endpoints after the change) are checked against
   * capacity before anything is written; without them only the tables are
   * checked.
   *
   * Order, make before break: a patch only inserts the keys of identities
   * that no ipcache or endpoint entry named before this compile, and only
   * removes the keys of identities that none names after it. Its inserts go
   * in first, before any address maps to those identities (ipcache upserts
   * come after), so a packet sees a new identity's entries complete or not
   * at all (no address has it yet); its removals come last, after the ipcache
   * and endpoint changes (removals included), when no address maps to those
   * identities any more. So no packet looks up a half-patched identity.
   * A replaced table is one atomic swap; a patch is atomic per key only.
   */
  applyDelta(
    delta: EncodedDelta,
    ifindexOf: IfindexOf,
    totals?: { readonly ipcache: number; readonly localEndpoints: number },
  ): ApplyResult {
    const { replace, patch, remove } = delta.tables;
    // Steps as in docs/datapath.md "Applying a delta". 1. Capacity, before anything is written.
    this.checkCapacity(
      [...replace, ...patch.map((p) => p.table)],
      totals?.ipcache ?? 0,
      totals?.localEndpoints ?? 0,
    );
    // 2. Patches' inserts into the inner map in the slot (identities no address maps to yet).
    //    A patch that cannot be applied in place (content unknown, failed insert) is written whole in step 4.
    const whole: CompiledTable[] = [...replace];
    const patching: { readonly patch: TablePatch; readonly mapId: number }[] = [];
    for (const p of patch) {
      const mapId = this.insertPatch(p);
      if (mapId === null) whole.push(p.table);
      else patching.push({ patch: p, mapId });
    }
    // 3. ipcache upserts: addresses may now map to the new identities.
    const ipcacheWritten = this.upsert(this.maps.ipcache, delta.ipcache.upsert);
    // 4. Whole tables (new inner map, then swap).
    const { written, failed } = this.writeTables(whole);
    let tablesWritten = written;
    // 5. Endpoints.
    let endpointsWritten = 0;
    for (const ep of delta.endpoints.upsert) {
      const ifindex = ifindexOf(ep.endpoint);
      if (ifindex === undefined) continue;
      this.writeEndpoint(ifindex, ep, failed);
      this.endpointIfindex.set(ep.endpoint, ifindex);
      endpointsWritten++;
    }
    let endpointsRemoved = 0;
    for (const id of delta.endpoints.remove) {
      const ifindex = this.endpointIfindex.get(id) ?? ifindexOf(id);
      this.endpointIfindex.delete(id);
      if (ifindex !== undefined && this.maps.endpoints.delete(endpointKey(ifindex)))
        endpointsRemoved++;
    }
    // 6. ipcache entries no longer wanted: now no address maps to a removed identity.
    let ipcacheRemoved = 0;
    for (const key of delta.ipcache.remove) if (this.maps.ipcache.delete(key)) ipcacheRemoved++;
    // 7. Patches' removals (identities nothing maps to any more). A failed
    //    delete falls back to writing the table whole (new inner map, then swap).
    let tablesPatched = 0;
    for (const { patch: p, mapId } of patching) {
      if (this.removePatch(p, mapId)) {
        tablesPatched++;
        continue;
      }
      const r = this.writeTables([p.table], true);
      tablesWritten += r.written;
      for (const [t, e] of r.failed) failed.set(t, e);
    }
    // 8. Tables no longer wanted (no endpoint names them since step 5).
    let tablesRemoved = 0;
    for (const t of remove) {
      this.slots.delete(t);
      if (this.maps.policy.delete(u32Key(t))) tablesRemoved++;
    }
    // Fail closed: every endpoint using a failed table, not only the ones this delta wrote.
    if (failed.size > 0) this.failClosed(failed);
    const revision = this.bumpRevision();
    throwIfFailed(failed);
    return {
      revision,
      tablesWritten,
      tablesPatched,
      tablesRemoved,
      endpointsWritten,
      endpointsRemoved,
      ipcacheWritten,
      ipcacheRemoved,
    };
  }

  /** Replaces one table atomically (new inner map, then swap), without bumping the revision. */
  replaceTable(table: CompiledTable): void {
    this.checkCapacity([table], 0, 0);
    const { failed } = this.writeTables([table], true);
    throwIfFailed(failed);
  }

  // ------------------------------------------------------------- attach

  /** The attach mechanism in use (`tcx` or `clsact`). */
  get attachMode(): AttachMode {
    return this.mode;
  }

  /** Why that mode: forced by option/env, probed, or fallen back after a refusal. */
  get attachModeReason(): string {
    return this.modeReason;
  }

  /**
   * Attaches from_pod (ingress of the host-side interface) and to_pod
   * (egress). tcx: one link per hook, pinned in the pin directory so it
   * outlives this process; an existing link of ours is switched to this
   * object's program with BPF_LINK_UPDATE (atomic). Then our clsact filters
   * from an earlier mode or version are removed: the tcx program runs first
   * and decides, so the switch leaves no window. clsact: direct-action
   * filters (atomic tc replace), then our tcx links are removed likewise.
   */
  attach(ifindex: number): void {
    if (this.mode === 'tcx') {
      try {
        this.attachTcx(ifindex);
        this.detachClsact(ifindex);
        return;
      } catch (e) {
        if (!(this.modeChoice === 'auto' && isRefusal(e))) throw e;
        this.mode = 'clsact';
        this.modeReason = `the kernel refused a tcx link (${(e as Error).message}); using clsact`;
      }
    }
    tc.hookCreate(ifindex);
    const opts = { handle: TC_HANDLE, priority: TC_PRIORITY, replace: true };
    tc.attach(ifindex, 'ingress', this.obj.program('from_pod').fd, opts);
    tc.attach(ifindex, 'egress', this.obj.program('to_pod').fd, opts);
    this.detachTcx(ifindex);
  }

  /** Removes our programs from an interface: tcx links (detach, unpin, close) and clsact filters (the qdisc stays for others). */
  detach(ifindex: number): void {
    this.detachTcx(ifindex);
    this.detachClsact(ifindex);
  }

  /** Whether our programs are attached on both hooks of an interface (either mechanism). */
  isAttached(ifindex: number): boolean {
    return this.attachment(ifindex).mode !== null;
  }

  /** The programs of ours on an interface's two hooks, tcx links first (they run first). */
  attachment(ifindex: number): Attachment {
    const linkProg = (point: TcPoint): number | null =>
      this.withLink(ifindex, point, (fd) => tcx.info(fd).progId) ?? null;
    const linkIn = linkProg('ingress');
    const linkEg = linkProg('egress');
    if (linkIn !== null && linkEg !== null) return { mode: 'tcx', ingress: linkIn, egress: linkEg };
    const filterIn = clsactQuery(ifindex, 'ingress');
    const filterEg = clsactQuery(ifindex, 'egress');
    if (filterIn !== null && filterEg !== null)
      return { mode: 'clsact', ingress: filterIn, egress: filterEg };
    return { mode: null, ingress: linkIn ?? filterIn, egress: linkEg ?? filterEg };
  }

  /** Kernel ids of this object's programs (what attachment() reports once attached by this process). */
  programIds(): { readonly ingress: number; readonly egress: number } {
    return {
      ingress: progIdOf(this.obj.program('from_pod').fd),
      egress: progIdOf(this.obj.program('to_pod').fd),
    };
  }

  // ------------------------------------------------------------ testing

  /**
   * Runs from_pod (egress) or to_pod (ingress) on one Ethernet frame with
   * BPF_PROG_TEST_RUN. `ifindex` must exist in this process's netns (1 = lo).
   */
  testRun(
    direction: HookDirection,
    frame: Uint8Array,
    opts: { ifindex: number; mark?: number },
  ): TestRunVerdict {
    const prog = this.obj.program(direction === 'egress' ? 'from_pod' : 'to_pod');
    const r = testRun(prog.fd, frame, { ifindex: opts.ifindex, mark: opts.mark ?? 0 });
    return { ...r, allowed: r.retval === 0 };
  }

  // ----------------------------------------------------- events, counters

  /** Subscribes to decoded ringbuf events; returns the unsubscribe function. */
  onEvent(cb: (e: PalEvent) => void): () => void {
    this.listeners.add(cb);
    if (!this.ring) {
      this.ring = new RingBuffer(this.maps.events.fd, (samples) => {
        for (const s of samples) {
          const d = decodeEvent(s);
          if (!d.ok) continue;
          for (const l of this.listeners) l(d.event);
        }
      });
    }
    return () => {
      this.listeners.delete(cb);
      if (this.listeners.size === 0) {
        this.ring?.close();
        this.ring = undefined;
      }
    };
  }

  /** Delivers pending events synchronously (e.g. right after a test run). */
  drainEvents(): void {
    this.ring?.drain();
  }

  ruleCounter(cookie: number): Counter {
    return sumCounters(this.maps.ruleCounters.lookupPerCpu(u32Key(cookie)));
  }

  dropStats(): Record<DropReasonName, Counter> {
    const out = {} as Record<DropReasonName, Counter>;
    DROP_REASON_NAMES.forEach(
      (name, i) => (out[name] = sumCounters(this.maps.drops.lookupPerCpu(u32Key(i)))),
    );
    return out;
  }

  eventStats(): { suppressed: bigint; lost: bigint } {
    return {
      suppressed: sumCounters(this.maps.stats.lookupPerCpu(u32Key(0))).packets,
      lost: sumCounters(this.maps.stats.lookupPerCpu(u32Key(1))).packets,
    };
  }

  config(): Config {
    const v = this.maps.config.lookup(u32Key(0));
    return v ? decodeConfig(v) : { revision: 0, flags: 0, denyEventsPerSec: 0 };
  }

  revision(): number {
    return this.config().revision;
  }

  /** The raw map handles, for tests and diagnostics. */
  map(name: keyof Datapath['maps']): BpfMap {
    return this.maps[name];
  }

  /** Releases fds. Pins, attached programs and therefore enforcement stay. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.ring?.close();
    this.ring = undefined;
    // links without a pin detach with their last fd (private datapaths only)
    for (const fd of this.heldLinks.values()) closeFd(fd);
    this.heldLinks.clear();
    this.obj.close();
  }

  // ------------------------------------------------------------ private

  private writeConfig(c: Config): void {
    this.maps.config.update(u32Key(0), configValue(c));
  }

  private bumpRevision(): number {
    const c = this.config();
    const revision = (c.revision + 1) >>> 0 || 1;
    this.writeConfig({ ...c, revision });
    return revision;
  }

  private checkCapacity(
    tables: readonly CompiledTable[],
    ipcache: number,
    endpoints: number,
  ): void {
    const problems: string[] = [];
    for (const t of tables) {
      if (!Number.isInteger(t.table) || t.table < 0 || t.table >= this.sizes.tables) {
        problems.push(`table ${t.table} outside the policy array (0..${this.sizes.tables - 1})`);
      }
      if (t.entries.length > this.sizes.tableEntries) {
        problems.push(
          `table ${t.table} has ${t.entries.length} entries, capacity ${this.sizes.tableEntries}`,
        );
      }
    }
    if (ipcache > this.sizes.ipcache)
      problems.push(`ipcache has ${ipcache} entries, capacity ${this.sizes.ipcache}`);
    if (endpoints > this.sizes.endpoints) {
      problems.push(
        `${endpoints} local endpoints (this node's), endpoint map capacity ${this.sizes.endpoints}`,
      );
    }
    if (problems.length > 0) {
      throw new DatapathCapacityError(
        `datapath capacity exceeded, nothing changed: ${problems.join('; ')}`,
      );
    }
  }

  private upsert(map: BpfMap, entries: readonly MapEntry[]): number {
    if (entries.length === 0) return 0;
    return map.updateBatch(entries);
  }

  /**
   * New inner map per table, filled, then swapped into the outer array
   * (inPlaceTables: the slot's inner map emptied and refilled). Skipped,
   * unless `force`, when the slot still holds the inner map this process
   * last wrote and its content equals `t` (same object, or entry by entry).
   * Failures are collected.
   */
  private writeTables(
    tables: readonly CompiledTable[],
    force = false,
  ): { written: number; failed: Map<number, Error> } {
    const failed = new Map<number, Error>();
    let written = 0;
    for (const t of tables) {
      const known = this.slots.get(t.table);
      if (
        !force &&
        known?.table != null &&
        sameContent(known.table, t) &&
        this.slotMapId(t.table) === known.mapId
      )
        continue;
      this.slots.delete(t.table);
      let inner: BpfMap | undefined;
      try {
        if (this.inPlace) {
          const id = this.rewriteInPlace(t);
          if (id !== null) {
            this.slots.set(t.table, { mapId: id, table: t });
            written++;
            continue;
          }
        }
        inner = createMap(
          MapType.LPM_TRIE,
          `pal_t${t.table}`,
          SIZE.policyKey,
          SIZE.policyValue,
          this.sizes.tableEntries,
          BPF_F_NO_PREALLOC,
        );
        if (t.entries.length > 0) inner.updateBatch(t.entries);
        this.maps.policy.update(u32Key(t.table), u32Key(inner.fd));
        this.slots.set(t.table, { mapId: objInfo(inner.fd).id, table: t });
        written++;
      } catch (e) {
        failed.set(t.table, e instanceof Error ? e : new Error(String(e)));
      } finally {
        inner?.close(); // the outer array holds the reference now
      }
    }
    return { written, failed };
  }

  /** Id of the inner map in a policy slot; null = empty. */
  private slotMapId(table: number): number | null {
    return this.maps.policy.lookup(u32Key(table))?.readUInt32LE(0) ?? null;
  }

  /** Runs fn on an inner map opened by id (closed after). */
  private withInner<T>(mapId: number, fn: (inner: BpfMap) => T): T {
    const inner = BpfMap.fromFd(mapFdById(mapId));
    try {
      return fn(inner);
    } finally {
      inner.close();
    }
  }

  /**
   * First half of an in-place patch: the inserts, into the slot's inner map.
   * Only when this process knows that map's content (it wrote or patched it
   * last, and the slot still holds it) and the patch fits it: its removed
   * keys are there, its inserted ones are not, the sizes add up, and the map
   * can hold the inserts before the removals. Returns the inner map's id, or
   * null = write `patch.table` whole instead (content unknown, or an insert
   * failed: the map may hold some of them, so it is never patched further).
   * From here until the removals are done the slot's content is unknown.
   */
  private insertPatch(p: TablePatch): number | null {
    const n = p.table.table;
    const known = this.slots.get(n);
    if (known?.table == null) return null;
    if (!patchFits(known.table, p, this.sizes.tableEntries)) return null;
    if (this.slotMapId(n) !== known.mapId) return null;
    this.slots.delete(n);
    if (p.insert.length === 0) return known.mapId;
    try {
      // BPF_NOEXIST: a key already there means the map is not what we know (EEXIST).
      this.withInner(known.mapId, (inner) => inner.updateBatch(p.insert, BPF_NOEXIST));
      return known.mapId;
    } catch {
      return null;
    }
  }

  /**
   * Second half: the removals, key by key, in the map the inserts went into.
   * False (write the table whole) when the slot holds another map now, a key
   * was not there, or the kernel refused a delete.
   */
  private removePatch(p: TablePatch, mapId: number): boolean {
    const n = p.table.table;
    if (this.slotMapId(n) !== mapId) return false;
    try {
      if (p.remove.length > 0) {
        this.withInner(mapId, (inner) => {
          for (const k of p.remove) {
            if (!inner.delete(k)) throw new Error(`table ${n}: key ${hex(k)} was not there`);
          }
        });
      }
    } catch {
      return false;
    }
    this.slots.set(n, { mapId, table: p.table });
    return true;
  }

  /** Fail closed: an endpoint whose table failed to load is written without POLICY_READY. */
  private writeEndpoint(ifindex: number, ep: CompiledEndpoint, failed: Map<number, Error>): void {
    const broken = failed.has(ep.egressTable) || failed.has(ep.ingressTable);
    this.maps.endpoints.update(
      endpointKey(ifindex),
      endpointValue({
        identity: ep.identity,
        egressTable: ep.egressTable,
        ingressTable: ep.ingressTable,
        flags: broken ? ep.flags & ~EP_F_POLICY_READY : ep.flags,
        nodeId: ep.nodeId,
      }),
    );
  }

  /** Every endpoint in the map that uses a failed table loses POLICY_READY (drop). */
  private failClosed(failed: Map<number, Error>): void {
    for (const key of [...this.maps.endpoints.keys()]) {
      const v = this.maps.endpoints.lookup(key);
      if (!v) continue;
      const ep = decodeEndpointValue(v);
      if (!(ep.flags & EP_F_POLICY_READY)) continue;
      if (!failed.has(ep.egressTable) && !failed.has(ep.ingressTable)) continue;
      this.maps.endpoints.update(
        key,
        endpointValue({ ...ep, flags: ep.flags & ~EP_F_POLICY_READY }),
      );
    }
  }

  /** In-place mode: empties and refills the slot's current inner table; its map id, null if the slot is empty. */
  private rewriteInPlace(t: CompiledTable): number | null {
    const id = this.slotMapId(t.table);
    if (id === null) return null;
    this.withInner(id, (inner) => {
      for (const k of [...inner.keys()]) inner.delete(k);
      if (t.entries.length > 0) inner.updateBatch(t.entries);
    });
    return id;
  }

  private removeTablesExcept(keep: ReadonlySet<number>): number {
    let removed = 0;
    // ARRAY_OF_MAPS keys are every index; lookups tell which are set.
    for (let t = 0; t < this.sizes.tables; t++) {
      if (keep.has(t)) continue;
      const k = u32Key(t);
      const known = this.slots.get(t);
      if (this.inPlace && known !== undefined && known.table === null) continue;
      if (this.inPlace && this.maps.policy.lookup(k)) {
        this.slots.delete(t);
        const id = this.rewriteInPlace({ table: t, entries: [] });
        if (id !== null) this.slots.set(t, { mapId: id, table: null });
        removed++;
        continue;
      }
      if (this.maps.policy.lookup(k) && this.maps.policy.delete(k)) {
        this.slots.delete(t);
        removed++;
      }
    }
    return removed;
  }

  private pinPrograms(pinDir: string): void {
    for (const name of ['from_pod', 'to_pod']) {
      const path = join(pinDir, `prog_${name}`);
      rmSync(path, { force: true });
      objPin(this.obj.program(name).fd, path);
    }
  }

  /**
   * Interfaces of known endpoints or with pinned links that run our programs
   * get this object's programs (BPF_LINK_UPDATE or tc replace: atomic).
   * Pinned links whose interface is gone (defunct) are unpinned.
   */
  private adoptAttachments(): void {
    const candidates = new Set<number>();
    for (const key of [...this.maps.endpoints.keys()]) candidates.add(key.readUInt32LE(0));
    for (const name of this.pinDir === null ? [] : readdirSync(this.pinDir)) {
      const m = TCX_PIN_RE.exec(name);
      if (m) candidates.add(Number(m[1]));
    }
    for (const ifindex of candidates) {
      try {
        if (this.isAttached(ifindex)) this.attach(ifindex);
        else this.sweepDefunctLinks(ifindex);
      } catch {
        // interface gone (pod deleted while we were away): nothing to adopt
        this.sweepDefunctLinks(ifindex);
      }
    }
  }

  private resolveAttachMode(choice: AttachModeChoice): void {
    this.modeChoice = choice;
    if (choice === 'clsact') {
      this.mode = 'clsact';
      this.modeReason = 'clsact forced by configuration';
      return;
    }
    // Side-effect-free probe: a tcx query on loopback. Kernels without tcx
    // reject the attach type with EINVAL.
    try {
      tcx.query(1, 'ingress');
      this.mode = 'tcx';
      this.modeReason = choice === 'tcx' ? 'tcx forced by configuration' : 'kernel supports tcx';
    } catch (e) {
      if (choice === 'tcx') {
        throw new Error(
          `attach mode tcx requested but the kernel has no tcx: ${(e as Error).message}`,
        );
      }
      this.mode = 'clsact';
      this.modeReason = `kernel has no tcx (${(e as Error).message}); using clsact`;
    }
  }

  private linkKey = (ifindex: number, point: TcPoint): string => `${ifindex}/${point}`;

  /**
   * Runs fn on our live tcx link of a hook (held fd or pin), or returns
   * undefined when there is none. A pin that is not a tcx link of this
   * ifindex and hook (device gone, or a stale name) does not count.
   */
  private withLink<T>(ifindex: number, point: TcPoint, fn: (fd: number) => T): T | undefined {
    const held = this.heldLinks.get(this.linkKey(ifindex, point));
    let fd = held;
    if (fd === undefined) {
      if (this.pinDir === null) return undefined;
      try {
        fd = objGet(join(this.pinDir, tcxLinkPinName(ifindex, point)));
      } catch (e) {
        if (isBpfError(e) && e.code === 'ENOENT') return undefined;
        throw e;
      }
    }
    try {
      const info = tcx.info(fd);
      const type = point === 'ingress' ? BPF_TCX_INGRESS : BPF_TCX_EGRESS;
      if (!info.isTcx || info.ifindex !== ifindex || info.attachType !== type) return undefined;
      return fn(fd);
    } finally {
      if (held === undefined) closeFd(fd);
    }
  }

  private attachTcx(ifindex: number): void {
    const created: TcPoint[] = [];
    try {
      for (const [point, prog] of TCX_POINTS) {
        const progFd = this.obj.program(prog).fd;
        const updated = this.withLink(ifindex, point, (fd) => {
          tcx.update(fd, progFd);
          return true;
        });
        if (updated) continue;
        this.unpinLink(ifindex, point); // a defunct or foreign pin of that name
        const fd = tcx.attach(ifindex, point, progFd);
        created.push(point);
        if (this.pinDir === null) {
          this.heldLinks.set(this.linkKey(ifindex, point), fd);
          continue;
        }
        try {
          objPin(fd, join(this.pinDir, tcxLinkPinName(ifindex, point)));
        } finally {
          closeFd(fd); // the pin holds the link now (or, if pinning failed, it goes)
        }
      }
    } catch (e) {
      // all or nothing for a first attach: undo the hooks this call created
      for (const point of created) this.detachTcxPoint(ifindex, point);
      throw e;
    }
  }

  private detachTcx(ifindex: number): void {
    for (const [point] of TCX_POINTS) this.detachTcxPoint(ifindex, point);
  }

  /** BPF_LINK_DETACH (also when another fd still holds the link), then unpin and close. */
  private detachTcxPoint(ifindex: number, point: TcPoint): void {
    const key = this.linkKey(ifindex, point);
    const held = this.heldLinks.get(key);
    if (held !== undefined) {
      this.heldLinks.delete(key);
      try {
        tcx.detach(held);
      } finally {
        closeFd(held);
      }
      return;
    }
    this.withLink(ifindex, point, (fd) => tcx.detach(fd));
    this.unpinLink(ifindex, point);
  }

  private unpinLink(ifindex: number, point: TcPoint): void {
    if (this.pinDir !== null)
      rmSync(join(this.pinDir, tcxLinkPinName(ifindex, point)), { force: true });
  }

  /** Unpins links of an interface that no longer run (device gone). */
  private sweepDefunctLinks(ifindex: number): void {
    for (const [point] of TCX_POINTS) {
      if (this.withLink(ifindex, point, () => true) === undefined) this.unpinLink(ifindex, point);
    }
  }

  private detachClsact(ifindex: number): void {
    for (const point of ['ingress', 'egress'] as const) {
      try {
        tc.detach(ifindex, point, TC_HANDLE, TC_PRIORITY);
      } catch (e) {
        if (!(isBpfError(e) && (e.code === 'ENODEV' || e.code === 'EINVAL'))) throw e;
      }
    }
  }
}

/** Errors with which a kernel refuses tcx (unknown attach type, not supported). */
function isRefusal(e: unknown): boolean {
  return (
    isBpfError(e) &&
    (e.code === 'EINVAL' || e.code === 'ENOTSUP' || e.code === 'ENOTSUPP' || e.errno === 95)
  );
}

function clsactQuery(ifindex: number, point: TcPoint): number | null {
  try {
    return tc.query(ifindex, point, TC_HANDLE, TC_PRIORITY);
  } catch (e) {
    if (isBpfError(e) && e.code === 'ENODEV') return null;
    throw e;
  }
}

function attachModeFromEnv(): AttachModeChoice {
  const v = process.env[ATTACH_MODE_ENV];
  if (v === undefined || v === '') return 'auto';
  if (v === 'auto' || v === 'tcx' || v === 'clsact') return v;
  throw new Error(`${ATTACH_MODE_ENV}=${v}: allowed values are auto, tcx, clsact`);
}

function ensureBpffsDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const type = statfsSync(dir).type;
  if (type !== BPF_FS_MAGIC) {
    throw new Error(
      `pin directory ${dir} is not on a bpf filesystem (mount -t bpf bpffs /sys/fs/bpf; scripts/setup.sh does)`,
    );
  }
}

/** What a policy slot holds, as this process wrote it. */
interface SlotContent {
  /** Id of the inner map in the slot (a slot found holding another map is unknown). */
  readonly mapId: number;
  /**
   * The table written or patched to: the same object means the same
   * content; another object is compared entry by entry, only when a full
   * sync asks whether it may skip the table. null = emptied in place
   * (inPlaceTables removal).
   */
  readonly table: CompiledTable | null;
}

/** Same entries (sorted tables): the same object, or byte for byte. */
const sameContent = (a: CompiledTable, b: CompiledTable): boolean =>
  a === b || sameEntries(a.entries, b.entries);

/** Whether sorted `entries` has `key` (binary search). */
const hasKey = (entries: readonly MapEntry[], key: Uint8Array): boolean =>
  searchEntries(entries, key) >= 0;

/**
 * Whether `p` applies to a table known to hold `before`: every removed key
 * is in it, no inserted key is, the result has patch.table's size, and the
 * inserts fit the inner map before the removals free room. O(k log n) for
 * k changed keys: the patch's own claims, checked against what was written.
 */
function patchFits(before: CompiledTable, p: TablePatch, capacity: number): boolean {
  const n = before.entries.length;
  if (n + p.insert.length - p.remove.length !== p.table.entries.length) return false;
  if (n + p.insert.length > capacity) return false;
  for (const k of p.remove) if (!hasKey(before.entries, k)) return false;
  for (const e of p.insert) if (hasKey(before.entries, e.key)) return false;
  return true;
}

const hex = (b: Uint8Array): string =>
  Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

function throwIfFailed(failed: Map<number, Error>): void {
  if (failed.size === 0) return;
  const detail = [...failed].map(([t, e]) => `table ${t}: ${e.message}`).join('; ');
  throw new Error(`policy tables failed to load; their endpoints fail closed (drop): ${detail}`);
}
