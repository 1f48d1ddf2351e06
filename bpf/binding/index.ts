/**
 * Typed wrapper over the libbpf N-API binding (src/binding.cc). Small on
 * purpose: objects with pinned-map reuse, maps by fd, tc attach, test runs,
 * ringbuf. Failures throw BpfError (errno, code, op and libbpf's log, which
 * holds the verifier log when a load fails).
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Error thrown by every binding call. */
export interface BpfError extends Error {
  readonly errno: number;
  /** e.g. "ENOENT" */
  readonly code: string;
  /** the libbpf / syscall operation that failed */
  readonly op: string;
  /** libbpf's log for the call (verifier log on a failed program load) */
  readonly log?: string;
}

export function isBpfError(e: unknown): e is BpfError {
  return e instanceof Error && typeof (e as { errno?: unknown }).errno === 'number';
}

/** Map types used by Palisade (enum bpf_map_type). */
export const MapType = {
  HASH: 1,
  ARRAY: 2,
  PERCPU_ARRAY: 6,
  LPM_TRIE: 11,
  ARRAY_OF_MAPS: 12,
  LRU_HASH: 9,
  RINGBUF: 27,
} as const;

export const BPF_ANY = 0;
export const BPF_NOEXIST = 1;
export const BPF_EXIST = 2;
export const BPF_F_NO_PREALLOC = 1;

/** tc return codes */
export const TC_ACT_OK = 0;
export const TC_ACT_SHOT = 2;

export interface MapInfo {
  readonly name: string;
  readonly fd: number;
  readonly type: number;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  readonly mapFlags: number;
  readonly pinPath: string | null;
}

export interface ProgramInfo {
  readonly name: string;
  readonly fd: number;
}

export type TcPoint = 'ingress' | 'egress';

export interface TcAttachment {
  readonly handle: number;
  readonly priority: number;
  readonly progId: number;
}

/** What runs on one tcx hook of a device, in order (BPF_PROG_QUERY). */
export interface TcxQueryResult {
  readonly progIds: number[];
  readonly linkIds: number[];
  readonly revision: number;
}

/** bpf_link_info of a link; ifindex/attachType for tcx links (ifindex 0 = device gone, link defunct). */
export interface LinkInfo {
  readonly type: number;
  readonly id: number;
  readonly progId: number;
  readonly isTcx: boolean;
  readonly ifindex: number;
  readonly attachType: number;
}

export interface TestRunResult {
  /** the program's return value (TC_ACT_OK / TC_ACT_SHOT for tc) */
  readonly retval: number;
  readonly data: Buffer;
  readonly durationNs: number;
}

interface Native {
  BpfObject: new (
    path: string,
    pinRoot: string | null,
    maxEntries: Record<string, number> | null,
  ) => { maps(): MapInfo[]; programs(): ProgramInfo[]; close(): void };
  RingBuffer: new (
    fd: number,
    cb: (events: Buffer[]) => void,
  ) => { close(): void; unref(): void; ref(): void; drain(): void };
  mapLookup(fd: number, key: Uint8Array, valueSize: number): Buffer | null;
  mapUpdate(fd: number, key: Uint8Array, value: Uint8Array, flags: number): void;
  mapDelete(fd: number, key: Uint8Array): boolean;
  mapUpdateBatch(
    fd: number,
    keys: Uint8Array,
    values: Uint8Array,
    count: number,
    flags: number,
  ): number;
  mapNextKey(fd: number, key: Uint8Array | null, keySize: number): Buffer | null;
  mapCreate(
    type: number,
    name: string,
    keySize: number,
    valueSize: number,
    maxEntries: number,
    flags: number,
  ): number;
  mapFdById(id: number): number;
  objInfo(fd: number): {
    id: number;
    type: number;
    keySize: number;
    valueSize: number;
    maxEntries: number;
    mapFlags: number;
    name: string;
  };
  objPin(fd: number, path: string): void;
  objGet(path: string): number;
  closeFd(fd: number): void;
  numPossibleCpus(): number;
  tcHookCreate(ifindex: number): void;
  tcHookDestroy(ifindex: number): void;
  tcAttach(
    ifindex: number,
    point: TcPoint,
    progFd: number,
    handle: number,
    priority: number,
    replace: boolean,
  ): TcAttachment;
  tcDetach(ifindex: number, point: TcPoint, handle: number, priority: number): boolean;
  tcQuery(ifindex: number, point: TcPoint, handle: number, priority: number): number | null;
  tcxAttach(ifindex: number, point: TcPoint, progFd: number): number;
  tcxQuery(ifindex: number, point: TcPoint): TcxQueryResult;
  linkInfo(fd: number): LinkInfo;
  linkUpdate(linkFd: number, progFd: number): void;
  linkDetach(linkFd: number): void;
  progIdOf(progFd: number): number;
  progTestRun(
    fd: number,
    data: Uint8Array,
    ctx: Uint8Array | null,
    dataOutSize: number,
    repeat: number,
  ): TestRunResult;
}

/** The repository root (the directory holding bpf/), found from this module's location. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    if (existsSync(join(dir, 'bpf', 'include', 'palisade.h'))) return dir;
    dir = dirname(dir);
  }
  throw new Error(
    'cannot find the repository root (bpf/include/palisade.h) above ' +
      fileURLToPath(import.meta.url),
  );
}

export const bindingPath = (): string =>
  join(repoRoot(), 'bpf', 'binding', 'build', 'Release', 'palisade_bpf.node');

/** Default compiled BPF object (make -C bpf). */
export const defaultObjectPath = (): string => join(repoRoot(), 'bpf', 'build', 'palisade.bpf.o');

let native: Native | undefined;
function load(): Native {
  if (native) return native;
  const path = bindingPath();
  if (!existsSync(path)) {
    throw new Error(
      `libbpf binding not built: ${path} is missing (run scripts/setup.sh, or ` +
        `cd bpf/binding && node-gyp rebuild --nodedir=/usr)`,
    );
  }
  native = createRequire(import.meta.url)(path) as Native;
  return native;
}

// ------------------------------------------------------------------ maps

/** One map by fd. Keys and values are the raw bytes of the C structs. */
export class BpfMap {
  constructor(
    readonly fd: number,
    readonly name: string,
    readonly type: number,
    readonly keySize: number,
    readonly valueSize: number,
    readonly maxEntries: number,
  ) {}

  static fromInfo(i: MapInfo): BpfMap {
    return new BpfMap(i.fd, i.name, i.type, i.keySize, i.valueSize, i.maxEntries);
  }

  /** Opens a map by fd obtained elsewhere (pinned path, id); the caller owns the fd. */
  static fromFd(fd: number): BpfMap {
    const i = load().objInfo(fd);
    return new BpfMap(fd, i.name, i.type, i.keySize, i.valueSize, i.maxEntries);
  }

  get isPerCpu(): boolean {
    return this.type === MapType.PERCPU_ARRAY;
  }

  private get lookupSize(): number {
    if (this.type === MapType.ARRAY_OF_MAPS) return 4; // map id
    if (this.isPerCpu) return align8(this.valueSize) * numPossibleCpus();
    return this.valueSize;
  }

  private checkKey(key: Uint8Array): void {
    if (key.byteLength !== this.keySize) {
      throw new RangeError(
        `map ${this.name}: key is ${key.byteLength} bytes, expected ${this.keySize}`,
      );
    }
  }

  lookup(key: Uint8Array): Buffer | null {
    this.checkKey(key);
    return load().mapLookup(this.fd, key, this.lookupSize);
  }

  /** Per-CPU maps: one value per possible CPU. */
  lookupPerCpu(key: Uint8Array): Buffer[] | null {
    const all = this.lookup(key);
    if (!all) return null;
    const stride = align8(this.valueSize);
    const out: Buffer[] = [];
    for (let off = 0; off + stride <= all.length; off += stride)
      out.push(all.subarray(off, off + this.valueSize));
    return out;
  }

  update(key: Uint8Array, value: Uint8Array, flags = BPF_ANY): void {
    this.checkKey(key);
    load().mapUpdate(this.fd, key, value, flags);
  }

  delete(key: Uint8Array): boolean {
    this.checkKey(key);
    return load().mapDelete(this.fd, key);
  }

  /** Many updates in one syscall where the kernel supports it for this map type. */
  updateBatch(entries: readonly { key: Uint8Array; value: Uint8Array }[], flags = BPF_ANY): number {
    if (entries.length === 0) return 0;
    const vs = entries[0]!.value.byteLength;
    const keys = Buffer.alloc(entries.length * this.keySize);
    const values = Buffer.alloc(entries.length * vs);
    entries.forEach((e, i) => {
      this.checkKey(e.key);
      if (e.value.byteLength !== vs)
        throw new RangeError(`map ${this.name}: values of different sizes in one batch`);
      keys.set(e.key, i * this.keySize);
      values.set(e.value, i * vs);
    });
    return load().mapUpdateBatch(this.fd, keys, values, entries.length, flags);
  }

  /** Every key (bounded by maxEntries + 1 steps, so a concurrently changing map cannot loop forever). */
  *keys(): Generator<Buffer> {
    let prev: Buffer | null = null;
    for (let i = 0; i <= this.maxEntries; i++) {
      const next = load().mapNextKey(this.fd, prev, this.keySize);
      if (!next) return;
      yield next;
      prev = next;
    }
  }

  close(): void {
    load().closeFd(this.fd);
  }
}

const align8 = (n: number): number => (n + 7) & ~7;

let cpus: number | undefined;
export function numPossibleCpus(): number {
  cpus ??= load().numPossibleCpus();
  return cpus;
}

/** Creates a map outside any object (inner maps of a map-in-map). Returns the owning BpfMap. */
export function createMap(
  type: number,
  name: string,
  keySize: number,
  valueSize: number,
  maxEntries: number,
  flags = 0,
): BpfMap {
  const fd = load().mapCreate(type, name, keySize, valueSize, maxEntries, flags);
  return new BpfMap(fd, name, type, keySize, valueSize, maxEntries);
}

export const mapFdById = (id: number): number => load().mapFdById(id);
export const objGet = (path: string): number => load().objGet(path);
export const objPin = (fd: number, path: string): void => load().objPin(fd, path);
export const closeFd = (fd: number): void => load().closeFd(fd);
export const objInfo = (fd: number): ReturnType<Native['objInfo']> => load().objInfo(fd);

// --------------------------------------------------------------- objects

export interface OpenOptions {
  /** bpffs directory: maps with LIBBPF_PIN_BY_NAME are reused from / pinned here. Null = no pins. */
  readonly pinRoot: string | null;
  /** max_entries overrides by map name (must equal the pinned map's when reusing). */
  readonly maxEntries?: Readonly<Record<string, number>>;
}

/** A loaded BPF object. Closing it releases fds; pinned maps and attached programs stay. */
export class BpfObject {
  private readonly obj: InstanceType<Native['BpfObject']>;
  private readonly mapsByName = new Map<string, BpfMap>();
  private readonly progsByName = new Map<string, ProgramInfo>();

  private constructor(path: string, opts: OpenOptions) {
    try {
      this.obj = new (load().BpfObject)(
        path,
        opts.pinRoot,
        opts.maxEntries ? { ...opts.maxEntries } : null,
      );
    } catch (e) {
      // the verifier log belongs in the message: it is the reason
      if (isBpfError(e) && e.log) e.message = `${e.message}\nlibbpf log:\n${e.log}`;
      throw e;
    }
    for (const m of this.obj.maps()) this.mapsByName.set(m.name, BpfMap.fromInfo(m));
    for (const p of this.obj.programs()) this.progsByName.set(p.name, p);
  }

  /** Opens and loads (verifier) an object file. */
  static open(path: string, opts: OpenOptions): BpfObject {
    return new BpfObject(path, opts);
  }

  map(name: string): BpfMap {
    const m = this.mapsByName.get(name);
    if (!m) throw new Error(`BPF object has no map named ${name}`);
    return m;
  }

  program(name: string): ProgramInfo {
    const p = this.progsByName.get(name);
    if (!p) throw new Error(`BPF object has no program named ${name}`);
    return p;
  }

  mapInfos(): MapInfo[] {
    return this.obj.maps();
  }

  close(): void {
    this.obj.close();
  }
}

// -------------------------------------------------------------------- tc

export const tc = {
  /** Creates the clsact qdisc on an interface (no-op if present). */
  hookCreate(ifindex: number): void {
    load().tcHookCreate(ifindex);
  },
  /** Removes the clsact qdisc with every filter on it. */
  hookDestroy(ifindex: number): void {
    load().tcHookDestroy(ifindex);
  },
  /** Attaches (or atomically replaces, with replace) a direct-action filter. */
  attach(
    ifindex: number,
    point: TcPoint,
    progFd: number,
    opts: { handle: number; priority: number; replace: boolean },
  ): TcAttachment {
    return load().tcAttach(ifindex, point, progFd, opts.handle, opts.priority, opts.replace);
  },
  detach(ifindex: number, point: TcPoint, handle: number, priority: number): boolean {
    return load().tcDetach(ifindex, point, handle, priority);
  },
  /** Program id attached at (handle, priority), or null. */
  query(ifindex: number, point: TcPoint, handle: number, priority: number): number | null {
    return load().tcQuery(ifindex, point, handle, priority);
  },
};

// ------------------------------------------------------------------- tcx

/** enum bpf_attach_type values of tcx (kernel >= 6.6; not in Debian 12's uapi). */
export const BPF_TCX_INGRESS = 46;
export const BPF_TCX_EGRESS = 47;

/**
 * tcx links (BPF_LINK_CREATE with BPF_TCX_INGRESS/EGRESS through the raw
 * bpf(2) syscall, since libbpf 1.1 lacks them). A link lives as long as an fd
 * or a bpffs pin holds it; the program stays attached that long.
 */
export const tcx = {
  /** Attaches a program to a device's tcx hook; returns the link fd (the caller owns it). */
  attach(ifindex: number, point: TcPoint, progFd: number): number {
    return load().tcxAttach(ifindex, point, progFd);
  },
  /** The programs and links on a hook; throws EINVAL where the kernel has no tcx. */
  query(ifindex: number, point: TcPoint): TcxQueryResult {
    return load().tcxQuery(ifindex, point);
  },
  /** Swaps the link's program atomically (BPF_LINK_UPDATE): no packet sees no program. */
  update(linkFd: number, progFd: number): void {
    load().linkUpdate(linkFd, progFd);
  },
  /** Detaches the link from its hook now, whoever else holds it. */
  detach(linkFd: number): void {
    load().linkDetach(linkFd);
  },
  info(linkFd: number): LinkInfo {
    return load().linkInfo(linkFd);
  },
};

/** The kernel id of a loaded program (as tc/tcx queries report it). */
export const progIdOf = (progFd: number): number => load().progIdOf(progFd);

// -------------------------------------------------------------- test run

/** sizeof(struct __sk_buff) fields up to and including tc_index; offsets from linux/bpf.h. */
const SKB_CTX_SIZE = 48;
const SKB_OFF_MARK = 8;
const SKB_OFF_IFINDEX = 40;

export interface TestRunOptions {
  /**
   * __sk_buff.ifindex: the device the kernel runs the program on. Must exist
   * in the caller's network namespace; 0/1 = loopback.
   */
  readonly ifindex?: number;
  readonly mark?: number;
  readonly dataOutSize?: number;
  readonly repeat?: number;
}

/** BPF_PROG_TEST_RUN on a tc program with one packet (Ethernet frame). */
export function testRun(
  progFd: number,
  packet: Uint8Array,
  opts: TestRunOptions = {},
): TestRunResult {
  const ctx = Buffer.alloc(SKB_CTX_SIZE);
  ctx.writeUInt32LE(opts.mark ?? 0, SKB_OFF_MARK);
  ctx.writeUInt32LE(opts.ifindex ?? 0, SKB_OFF_IFINDEX);
  return load().progTestRun(
    progFd,
    packet,
    ctx,
    opts.dataOutSize ?? packet.byteLength + 256,
    opts.repeat ?? 1,
  );
}

// --------------------------------------------------------------- ringbuf

/**
 * Consumes a BPF ring buffer on the Node event loop (uv_poll on its epoll
 * fd): the callback gets every sample available at that moment, in order.
 */
export class RingBuffer {
  private readonly rb: InstanceType<Native['RingBuffer']>;
  private closed = false;

  constructor(mapFd: number, onSamples: (samples: Buffer[]) => void) {
    this.rb = new (load().RingBuffer)(mapFd, onSamples);
  }

  /** Delivers what is in the buffer now, synchronously. */
  drain(): void {
    if (!this.closed) this.rb.drain();
  }

  /** Lets the process exit while the ring buffer is open. */
  unref(): void {
    if (!this.closed) this.rb.unref();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.rb.close();
  }
}
