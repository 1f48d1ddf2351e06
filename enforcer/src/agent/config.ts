/**
 * The agent's configuration: a YAML or JSON file plus command-line flags
 * (flags win). Validation is by hand so every error names the file, the
 * field path and what is allowed; unknown fields are errors (a typo must not
 * silently fall back to a default). Pure apart from reading the file.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { parse as parseYaml } from 'yaml';

export type InterfaceDiscovery = 'routes' | 'static';

export interface RotationConfig {
  readonly path: string;
  readonly maxBytes: number;
  readonly maxFiles: number;
}

export interface AgentConfig {
  readonly node: string;
  readonly cluster: string;
  readonly source:
    | { readonly kind: 'directory'; readonly dir: string; readonly rescanMs: number }
    | { readonly kind: 'kubernetes'; readonly kubeconfig: string | null };
  /** bpffs directory of this node's pins. */
  readonly pinDir: string;
  readonly debounceMs: number;
  readonly denyEventsPerSec: number;
  readonly flows: {
    readonly filter: string | null;
    readonly ndjson: RotationConfig | null;
    readonly ocsf: RotationConfig | null;
    readonly stdout: boolean;
  };
  readonly api: {
    readonly host: string;
    readonly port: number;
    readonly tokenFile: string;
  };
  readonly interfaces: {
    readonly discovery: InterfaceDiscovery;
    /** routes: link kinds (ip -d link info_kind) a pod's host-side interface may have. */
    readonly kinds: readonly string[];
    /** static: endpoint id → host-side interface name. */
    readonly static: Readonly<Record<string, string>>;
    /** How often interfaces are re-discovered (pods appear and go). */
    readonly rescanMs: number;
  };
  /** BPF map sizes (Datapath.open sizes); omitted = the datapath's defaults. */
  readonly datapath: {
    readonly endpoints?: number;
    readonly ipcache?: number;
    readonly tables?: number;
    readonly tableEntries?: number;
    readonly conntrack?: number;
    readonly cookies?: number;
  };
  /** Optional status.json written every statusIntervalMs (lab-style observers); null = none. */
  readonly statusFile: string | null;
  /** Files the agent keeps across restarts (the compiler's number allocation). */
  readonly stateDir: string;
  /** The mesh store (etcd): other clusters' endpoints and MeshNetworkPolicies; null = not used. */
  readonly mesh: MeshConfig | null;
}

export interface MeshConfig {
  /** etcd client URLs. */
  readonly etcd: readonly string[];
  /** Publish this node's pods as endpoint records (other clusters need them). */
  readonly publish: boolean;
  /** Lease TTL of the published records: a dead node's pods age out after it. */
  readonly leaseTtlSec: number;
  /** Operations per etcd transaction when publishing. */
  readonly batchSize: number;
  /** How long the first sync waits for the store before enforcing the local source alone. */
  readonly initialSyncTimeoutMs: number;
  /** Timeout of each etcd call. */
  readonly callTimeoutMs: number;
}

/** Flag values (strings as commander gives them); undefined = not given. */
export interface AgentFlags {
  readonly node?: string;
  readonly cluster?: string;
  readonly manifests?: string;
  readonly kubeconfig?: string;
  readonly pinDir?: string;
  readonly flowsNdjson?: string;
  readonly flowsOcsf?: string;
  readonly flowsStdout?: boolean;
  readonly flowsFilter?: string;
  readonly tokenFile?: string;
  readonly listen?: string;
  readonly interfaces?: string;
  readonly statusFile?: string;
  readonly stateDir?: string;
  /** Comma-separated etcd client URLs. */
  readonly meshEtcd?: string;
  readonly meshPublish?: boolean;
}

export class AgentConfigError extends Error {
  override readonly name = 'AgentConfigError';
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

class Checker {
  readonly errors: string[] = [];
  constructor(private readonly where: string) {}
  fail(path: string, message: string): void {
    this.errors.push(`${this.where}: ${path}: ${message}`);
  }
  keys(o: Obj, path: string, allowed: readonly string[]): void {
    for (const k of Object.keys(o)) {
      if (!allowed.includes(k))
        this.fail(path ? `${path}.${k}` : k, `unknown field (allowed: ${allowed.join(', ')})`);
    }
  }
  obj(v: unknown, path: string): Obj {
    if (v === undefined || v === null) return {};
    if (!isObj(v)) {
      this.fail(path, 'must be a mapping');
      return {};
    }
    return v;
  }
  str(
    v: unknown,
    path: string,
    def: string | null,
    pattern?: RegExp,
    what?: string,
  ): string | null {
    if (v === undefined || v === null) return def;
    if (typeof v !== 'string' || v.length === 0 || (pattern && !pattern.test(v))) {
      this.fail(path, `must be ${what ?? 'a non-empty string'}`);
      return def;
    }
    return v;
  }
  int(v: unknown, path: string, def: number, min: number, max: number): number {
    if (v === undefined || v === null) return def;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      this.fail(path, `must be an integer from ${min} to ${max}`);
      return def;
    }
    return v;
  }
  bool(v: unknown, path: string, def: boolean): boolean {
    if (v === undefined || v === null) return def;
    if (typeof v !== 'boolean') {
      this.fail(path, 'must be true or false');
      return def;
    }
    return v;
  }
}

const NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
const NAME_WHAT = 'a DNS name (lowercase letters, digits, "-", ".")';
const DEFAULT_PORT = 9962;

/** Parses "host:port", "[v6]:port" or ":port" (host 127.0.0.1). */
export function parseListen(text: string): { host: string; port: number } | string {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text);
  const host = m ? (m[1] ?? m[2] ?? '') || '127.0.0.1' : '';
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535 || (host !== 'localhost' && isIP(host) === 0)) {
    return `"${text}" is not a listen address (allowed: <IP>:<port>, [<IPv6>]:<port>, localhost:<port>, :<port>)`;
  }
  return { host, port };
}

function rotation(c: Checker, v: unknown, path: string): RotationConfig | null {
  if (v === undefined || v === null) return null;
  if (typeof v === 'string') v = { path: v };
  const o = c.obj(v, path);
  c.keys(o, path, ['path', 'maxBytes', 'maxFiles']);
  const p = c.str(o['path'], `${path}.path`, null);
  if (p === null) {
    c.fail(`${path}.path`, 'is required (a file path)');
    return null;
  }
  return {
    path: p,
    maxBytes: c.int(o['maxBytes'], `${path}.maxBytes`, 64 << 20, 4096, 2 ** 40),
    maxFiles: c.int(o['maxFiles'], `${path}.maxFiles`, 3, 1, 100),
  };
}

/**
 * Validates a parsed config document merged with flags. `where` names the
 * file (or "flags") in messages. Throws AgentConfigError listing every problem.
 */
export function validateAgentConfig(doc: unknown, flags: AgentFlags, where: string): AgentConfig {
  const c = new Checker(where);
  const fc = new Checker('flags');
  const root = c.obj(doc, '(document)');
  c.keys(root, '', [
    'node',
    'cluster',
    'source',
    'pinDir',
    'debounceMs',
    'denyEventsPerSec',
    'flows',
    'api',
    'interfaces',
    'statusFile',
    'stateDir',
    'datapath',
    'mesh',
  ]);
  const node =
    fc.str(flags.node, '--node', null, NAME, NAME_WHAT) ??
    c.str(root['node'], 'node', null, NAME, NAME_WHAT);
  const cluster =
    fc.str(flags.cluster, '--cluster', null, NAME, NAME_WHAT) ??
    c.str(root['cluster'], 'cluster', null, NAME, NAME_WHAT);
  if (node === null) c.fail('node', 'is required (or --node)');
  if (cluster === null) c.fail('cluster', 'is required (or --cluster)');

  const src = c.obj(root['source'], 'source');
  c.keys(src, 'source', ['kind', 'dir', 'rescanMs', 'kubeconfig']);
  let kind = c.str(src['kind'], 'source.kind', 'directory');
  if (kind !== 'directory' && kind !== 'kubernetes') {
    c.fail('source.kind', `"${kind}" is not a source (allowed: directory, kubernetes)`);
    kind = 'directory';
  }
  if (flags.manifests !== undefined) kind = 'directory';
  else if (flags.kubeconfig !== undefined) kind = 'kubernetes';
  let source: AgentConfig['source'];
  if (kind === 'directory') {
    const dir =
      fc.str(flags.manifests, '--manifests', null) ?? c.str(src['dir'], 'source.dir', null);
    if (dir === null) c.fail('source.dir', 'is required for a directory source (or --manifests)');
    source = {
      kind: 'directory',
      dir: dir ?? '',
      rescanMs: c.int(src['rescanMs'], 'source.rescanMs', 2000, 100, 3_600_000),
    };
  } else {
    source = {
      kind: 'kubernetes',
      kubeconfig:
        fc.str(flags.kubeconfig, '--kubeconfig', null) ??
        c.str(src['kubeconfig'], 'source.kubeconfig', null),
    };
  }

  const pinDir =
    fc.str(flags.pinDir, '--pin-dir', null) ??
    c.str(root['pinDir'], 'pinDir', '/sys/fs/bpf/palisade');
  if (pinDir !== null && !pinDir.startsWith('/sys/fs/bpf/'))
    c.fail('pinDir', `"${pinDir}" must be a directory under /sys/fs/bpf/ (a bpffs mount)`);

  const fl = c.obj(root['flows'], 'flows');
  c.keys(fl, 'flows', ['filter', 'ndjson', 'ocsf', 'stdout']);
  const ndjson =
    flags.flowsNdjson !== undefined
      ? rotation(fc, flags.flowsNdjson, '--flows-ndjson')
      : rotation(c, fl['ndjson'], 'flows.ndjson');
  const ocsf =
    flags.flowsOcsf !== undefined
      ? rotation(fc, flags.flowsOcsf, '--flows-ocsf')
      : rotation(c, fl['ocsf'], 'flows.ocsf');

  const api = c.obj(root['api'], 'api');
  c.keys(api, 'api', ['listen', 'tokenFile']);
  const listenText =
    fc.str(flags.listen, '--listen', null) ??
    c.str(api['listen'], 'api.listen', `127.0.0.1:${DEFAULT_PORT}`);
  const listen = parseListen(listenText ?? '');
  if (typeof listen === 'string')
    (flags.listen !== undefined ? fc : c).fail(
      flags.listen !== undefined ? '--listen' : 'api.listen',
      listen,
    );
  const tokenFile =
    fc.str(flags.tokenFile, '--token-file', null) ?? c.str(api['tokenFile'], 'api.tokenFile', null);
  if (tokenFile === null)
    c.fail('api.tokenFile', 'is required (or --token-file): a file with mode 0600');

  const ifs = c.obj(root['interfaces'], 'interfaces');
  c.keys(ifs, 'interfaces', ['discovery', 'kinds', 'static', 'rescanMs']);
  let discovery =
    fc.str(flags.interfaces, '--interfaces', null) ??
    c.str(ifs['discovery'], 'interfaces.discovery', 'routes');
  if (discovery !== 'routes' && discovery !== 'static') {
    (flags.interfaces !== undefined ? fc : c).fail(
      flags.interfaces !== undefined ? '--interfaces' : 'interfaces.discovery',
      `"${discovery}" is not a discovery method (allowed: routes, static)`,
    );
    discovery = 'routes';
  }
  let kinds: string[] = ['veth'];
  if (ifs['kinds'] !== undefined) {
    const k = ifs['kinds'];
    if (
      !Array.isArray(k) ||
      k.length === 0 ||
      !k.every((x) => typeof x === 'string' && /^[a-z0-9_-]+$/.test(x))
    )
      c.fail('interfaces.kinds', 'must be a non-empty list of link kinds (e.g. [veth, netkit])');
    else kinds = k as string[];
  }
  const stat: Record<string, string> = {};
  const so = c.obj(ifs['static'], 'interfaces.static');
  for (const [id, name] of Object.entries(so)) {
    if (typeof name !== 'string' || !/^[^\s/]{1,15}$/.test(name))
      c.fail(
        `interfaces.static.${id}`,
        'must be an interface name (1-15 characters, no "/" or spaces)',
      );
    else stat[id] = name;
  }
  if (discovery === 'static' && Object.keys(stat).length === 0)
    c.fail(
      'interfaces.static',
      'must map at least one endpoint id to an interface name when discovery is static',
    );

  const statusFile =
    fc.str(flags.statusFile, '--status-file', null) ??
    c.str(root['statusFile'], 'statusFile', null);

  const stateDir =
    fc.str(flags.stateDir, '--state-dir', null) ??
    c.str(root['stateDir'], 'stateDir', '/var/lib/palisade/agent');
  if (stateDir !== null && !stateDir.startsWith('/'))
    c.fail('stateDir', `"${stateDir}" must be an absolute path`);

  const dpo = c.obj(root['datapath'], 'datapath');
  const SIZE_KEYS = [
    'endpoints',
    'ipcache',
    'tables',
    'tableEntries',
    'conntrack',
    'cookies',
  ] as const;
  c.keys(dpo, 'datapath', SIZE_KEYS);
  const datapath: Record<string, number> = {};
  for (const k of SIZE_KEYS) {
    if (dpo[k] !== undefined) datapath[k] = c.int(dpo[k], `datapath.${k}`, 0, 1, 1 << 24);
  }

  const mesh = meshConfig(c, fc, root['mesh'], flags);

  const errors = [...fc.errors, ...c.errors];
  if (errors.length > 0) throw new AgentConfigError(errors.join('\n'));
  return {
    node: node as string,
    cluster: cluster as string,
    source,
    pinDir: pinDir as string,
    debounceMs: c.int(root['debounceMs'], 'debounceMs', 100, 0, 60_000),
    denyEventsPerSec: c.int(root['denyEventsPerSec'], 'denyEventsPerSec', 1000, 0, 10_000_000),
    flows: {
      filter:
        fc.str(flags.flowsFilter, '--flows-filter', null) ??
        c.str(fl['filter'], 'flows.filter', null),
      ndjson,
      ocsf,
      stdout: flags.flowsStdout ?? c.bool(fl['stdout'], 'flows.stdout', false),
    },
    api: {
      ...(typeof listen === 'string' ? { host: '127.0.0.1', port: DEFAULT_PORT } : listen),
      tokenFile: tokenFile as string,
    },
    interfaces: {
      discovery: discovery as InterfaceDiscovery,
      kinds,
      static: stat,
      rescanMs: c.int(ifs['rescanMs'], 'interfaces.rescanMs', 2000, 100, 3_600_000),
    },
    statusFile,
    stateDir: stateDir as string,
    datapath,
    mesh,
  };
}

/** `http(s)://host:port` with nothing after the port (etcd3 takes host URLs). */
const ETCD_URL = /^https?:\/\/(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}\/?$/;

function meshConfig(c: Checker, fc: Checker, v: unknown, flags: AgentFlags): MeshConfig | null {
  if ((v === undefined || v === null) && flags.meshEtcd === undefined) {
    if (flags.meshPublish)
      fc.fail('--mesh-publish', 'needs a mesh store (mesh.etcd or --mesh-etcd)');
    return null;
  }
  const o = c.obj(v, 'mesh');
  c.keys(o, 'mesh', [
    'etcd',
    'publish',
    'leaseTtlSec',
    'batchSize',
    'initialSyncTimeoutMs',
    'callTimeoutMs',
  ]);
  let etcd: string[] = [];
  const check = (ch: Checker, path: string, list: unknown): void => {
    if (!Array.isArray(list) || list.length === 0) {
      ch.fail(path, 'must be a non-empty list of etcd client URLs (e.g. [http://127.0.0.1:2379])');
      return;
    }
    list.forEach((u, i) => {
      if (typeof u !== 'string' || !ETCD_URL.test(u))
        ch.fail(
          `${path}[${i}]`,
          `${JSON.stringify(u)} is not an etcd client URL (allowed: http(s)://<host>:<port>)`,
        );
    });
    if (ch.errors.length === 0 || list.every((u) => typeof u === 'string')) etcd = list as string[];
  };
  if (flags.meshEtcd !== undefined)
    check(
      fc,
      '--mesh-etcd',
      flags.meshEtcd.split(',').map((s) => s.trim()),
    );
  else check(c, 'mesh.etcd', o['etcd']);
  return {
    etcd,
    publish: flags.meshPublish ?? c.bool(o['publish'], 'mesh.publish', false),
    leaseTtlSec: c.int(o['leaseTtlSec'], 'mesh.leaseTtlSec', 30, 2, 3600),
    batchSize: c.int(o['batchSize'], 'mesh.batchSize', 64, 1, 128),
    initialSyncTimeoutMs: c.int(
      o['initialSyncTimeoutMs'],
      'mesh.initialSyncTimeoutMs',
      10_000,
      0,
      600_000,
    ),
    callTimeoutMs: c.int(o['callTimeoutMs'], 'mesh.callTimeoutMs', 3000, 100, 60_000),
  };
}

/** Reads a YAML or JSON config file (JSON is YAML) and validates it with the flags. */
export function loadAgentConfig(path: string | undefined, flags: AgentFlags): AgentConfig {
  if (path === undefined) return validateAgentConfig({}, flags, 'flags');
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new AgentConfigError(
      `${path}: cannot read config file (${(e as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
  if (text.length > 1 << 20) throw new AgentConfigError(`${path}: config file larger than 1 MiB`);
  let doc: unknown;
  try {
    doc = parseYaml(text, { maxAliasCount: 100 });
  } catch (e) {
    const err = e as { linePos?: { line: number; col: number }[]; message: string };
    const pos = err.linePos?.[0];
    const first = err.message.split('\n')[0] ?? 'syntax error';
    throw new AgentConfigError(
      `${path}${pos ? `:${pos.line}:${pos.col}` : ''}: not valid YAML or JSON: ${first}`,
    );
  }
  return validateAgentConfig(doc ?? {}, flags, path);
}
