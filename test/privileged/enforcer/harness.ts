/**
 * One node for `palisade agent` end-to-end tests: a node namespace with pod
 * namespaces on veths (bench/datapath/topology.ts), a watched world
 * directory, the agent as a child process inside the node namespace (tc
 * attach and its ifindexes are per namespace), and API calls with curl in
 * that namespace (the API listens on the node namespace's 127.0.0.1).
 * Everything is removed by name or pid in cleanup().
 */
import { spawn, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';

import { PodTopology } from '../../../bench/datapath/topology.js';
import type { FlowRecord } from '../../../enforcer/src/flows/record.js';
import { loadWorldFromTexts } from '../../../policy-compiler/src/load/index.js';
import { evaluate, prepareWorld } from '../../../policy-compiler/src/semantics/index.js';

export const CLI = resolve('dist/cli/src/main.js');

/**
 * Node script for `nsenter --net=… node -e`: relays TCP 127.0.0.1:port inside a
 * namespace to the Unix socket $RELAY_SOCK, so agents in a namespace reach a
 * server in the root namespace without any address or route there.
 */
export const nsRelayScript = (port: number): string => `
const net = require('net');
const sock = process.env.RELAY_SOCK;
net.createServer((c) => {
  const u = net.createConnection(sock);
  c.pipe(u); u.pipe(c);
  const end = () => { c.destroy(); u.destroy(); };
  c.on('error', end); u.on('error', end); c.on('close', end); u.on('close', end);
}).listen(${port}, '127.0.0.1', () => console.log('ready'));
`;
export const CLUSTER = 'c1';
export const NODE = 'n1';
export const NS = 'shop';
export const PODS = ['a', 'b', 'c'] as const;
export const PORTS = [7000, 7001];

export interface AgentProc {
  readonly proc: ChildProcess;
  readonly pid: number;
  stderr: string;
  exited: Promise<number | null>;
}

export function docs(...objs: unknown[]): string {
  return objs.map((o) => `---\n${stringify(o)}`).join('');
}

export class AgentNode {
  readonly dir: string;
  readonly worldDir: string;
  readonly pinDir: string;
  readonly token = `tok-${process.pid}-${Math.random().toString(36).slice(2)}abcdef`;
  readonly agents: AgentProc[] = [];

  private constructor(
    readonly topo: PodTopology,
    tag: string,
  ) {
    this.dir = mkdtempSync(join(tmpdir(), `palisade-agent-${tag}-`));
    this.worldDir = join(this.dir, 'world');
    mkdirSync(this.worldDir);
    this.pinDir = `/sys/fs/bpf/palisade-agent-${tag}-${process.pid}`;
    writeFileSync(join(this.dir, 'token'), this.token + '\n', { mode: 0o600 });
    chmodSync(join(this.dir, 'token'), 0o600);
    writeFileSync(join(this.dir, 'auth.h'), `Authorization: Bearer ${this.token}\n`, {
      mode: 0o600,
    });
    writeFileSync(join(this.dir, 'wrong.h'), `Authorization: Bearer not-${this.token}\n`, {
      mode: 0o600,
    });
  }

  static async create(tag: string): Promise<AgentNode> {
    // one namespace more than the world lists: pod "d" appears later
    const topo = await PodTopology.create(tag, PODS.length + 1);
    const n = new AgentNode(topo, tag);
    for (let i = 0; i < PODS.length; i++) {
      const a = await topo.agent(i);
      await a.call({ op: 'serve', tcpPorts: PORTS, udpPorts: [] });
    }
    n.writeWorkloads();
    return n;
  }

  path(f: string): string {
    return join(this.dir, f);
  }

  /** The manifest of pod `name` on topology pod `i`. */
  podDoc(name: string, i: number): Record<string, unknown> {
    return {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name,
        namespace: NS,
        annotations: { 'palisade.dev/cluster': CLUSTER },
        labels: { app: name },
      },
      spec: {
        nodeName: NODE,
        containers: [
          { name: 'srv', ports: PORTS.map((p) => ({ containerPort: p, protocol: 'TCP' })) },
        ],
      },
      status: {
        podIP: this.topo.pod(i).ip4,
        podIPs: [{ ip: this.topo.pod(i).ip4 }, { ip: this.topo.pod(i).ip6 }],
      },
    };
  }

  writeWorkloads(): void {
    const ann = { 'palisade.dev/cluster': CLUSTER };
    const text = docs(
      {
        apiVersion: 'palisade.dev/v1alpha1',
        kind: 'Cluster',
        metadata: { name: CLUSTER },
        spec: { podCIDRs: ['10.77.0.0/16', 'fd77::/16'] },
      },
      {
        apiVersion: 'v1',
        kind: 'Node',
        metadata: { name: NODE, annotations: ann },
        status: { addresses: [{ type: 'InternalIP', address: '192.0.2.1' }] },
      },
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS, annotations: ann } },
      ...PODS.map((name, i) => this.podDoc(name, i)),
    );
    this.writeWorldFile('workloads.yaml', text);
  }

  /** Atomic write (rename) so the watcher never reads half a file. */
  writeWorldFile(name: string, text: string): void {
    const tmp = join(this.dir, `.${name}.tmp`);
    writeFileSync(tmp, text);
    renameSync(tmp, join(this.worldDir, name));
  }

  removeWorldFile(name: string): void {
    rmSync(join(this.worldDir, name), { force: true });
  }

  writeConfig(extra: Record<string, unknown> = {}): string {
    const cfg = {
      node: NODE,
      cluster: CLUSTER,
      source: { kind: 'directory', dir: this.worldDir, rescanMs: 1000 },
      pinDir: this.pinDir,
      stateDir: this.path('state'),
      debounceMs: 50,
      flows: {
        ndjson: { path: this.path('flows.ndjson'), maxBytes: 8 << 20, maxFiles: 2 },
        ocsf: { path: this.path('flows.ocsf.ndjson'), maxBytes: 8 << 20, maxFiles: 2 },
      },
      api: { listen: '127.0.0.1:9962', tokenFile: this.path('token') },
      interfaces: { discovery: 'routes', rescanMs: 500 },
      ...extra,
    };
    const p = this.path('agent.yaml');
    writeFileSync(p, stringify(cfg));
    return p;
  }

  /**
   * Starts `palisade agent` inside the node namespace: nsenter, not `ip netns
   * exec` (that remounts /sys and hides the bpffs at /sys/fs/bpf).
   */
  startAgent(config: string): AgentProc {
    const proc = spawn(
      'nsenter',
      [`--net=/run/netns/${this.topo.nodeNs}`, process.execPath, CLI, 'agent', '--config', config],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    if (proc.pid === undefined) throw new Error('agent did not start');
    const a: AgentProc = {
      proc,
      pid: proc.pid,
      stderr: '',
      exited: new Promise((r) => proc.once('exit', (code) => r(code))),
    };
    proc.stderr!.on('data', (d: Buffer) => (a.stderr = (a.stderr + d.toString()).slice(-20_000)));
    this.agents.push(a);
    return a;
  }

  alive(a: AgentProc): boolean {
    return a.proc.exitCode === null && a.proc.signalCode === null;
  }

  /** GET in the node namespace; auth = 'token' | 'wrong' | 'none'. */
  async api(
    path: string,
    auth: 'token' | 'wrong' | 'none' = 'token',
  ): Promise<{ code: number; body: string }> {
    const args = ['-s', '-m', '5', '-w', '\n%{http_code}'];
    if (auth !== 'none') args.push('-H', `@${this.path(auth === 'token' ? 'auth.h' : 'wrong.h')}`);
    args.push(`http://127.0.0.1:9962${path}`);
    const out = await this.topo.exec(this.topo.nodeNs, 'curl', args).catch(() => '\n0');
    const i = out.lastIndexOf('\n');
    return { code: Number(out.slice(i + 1)), body: out.slice(0, i) };
  }

  async status(): Promise<{
    datapathRevision: number;
    lastError?: string | null;
    policies: {
      name: string;
      state: string;
      revision: string;
      enforcedRevision: string | null;
      error: string | null;
    }[];
  }> {
    const r = await this.api('/v1/status');
    if (r.code !== 200) throw new Error(`/v1/status: ${r.code} ${r.body}`);
    return JSON.parse(r.body);
  }

  /** Polls until pred holds (bounded). */
  async until<T>(
    what: string,
    f: () => Promise<T>,
    pred: (v: T) => boolean,
    ms = 15_000,
  ): Promise<T> {
    const end = Date.now() + ms;
    let last: T | undefined;
    while (Date.now() < end) {
      try {
        last = await f();
        if (pred(last)) return last;
      } catch {
        // not yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(
      `timed out waiting for ${what}; last: ${JSON.stringify(last)?.slice(0, 2000)}; agent stderr: ${this.agents.at(-1)?.stderr}`,
    );
  }

  /** The reference engine's verdict for every (from, to, TCP port) of the pods, from the world dir. */
  reference(): Map<string, boolean> {
    const inputs = readdirSync(this.worldDir)
      .filter((f) => f.endsWith('.yaml'))
      .map((f) => ({ file: f, text: readFileSync(join(this.worldDir, f), 'utf8') }));
    const loaded = loadWorldFromTexts(inputs);
    const prepared = prepareWorld(loaded.world);
    const out = new Map<string, boolean>();
    for (const from of PODS)
      for (const to of PODS) {
        if (from === to) continue;
        for (const port of PORTS) {
          const v = evaluate(prepared, {
            from: `${CLUSTER}/${NS}/${from}`,
            to: `${CLUSTER}/${NS}/${to}`,
            protocol: 'TCP',
            port,
          });
          out.set(`${from}->${to}:${port}`, v.verdict === 'Allow');
        }
      }
    return out;
  }

  /** Real TCP connects for the same probes (IPv4), concurrently. */
  async traffic(timeoutMs = 700): Promise<Map<string, boolean>> {
    const probes: Promise<[string, boolean]>[] = [];
    PODS.forEach((from, fi) =>
      PODS.forEach((to, ti) => {
        if (from === to) return;
        for (const port of PORTS) {
          probes.push(
            this.topo
              .agent(fi)
              .then(async (ag) => [
                `${from}->${to}:${port}`,
                await ag.tcp(this.topo.pod(ti).ip4, port, timeoutMs),
              ]),
          );
        }
      }),
    );
    return new Map(await Promise.all(probes));
  }

  async killAgent(a: AgentProc, signal: NodeJS.Signals = 'SIGKILL'): Promise<number | null> {
    if (this.alive(a)) process.kill(a.pid, signal);
    return Promise.race([a.exited, new Promise<null>((r) => setTimeout(() => r(null), 10_000))]);
  }

  async cleanup(): Promise<void> {
    for (const a of this.agents) {
      if (this.alive(a)) {
        try {
          process.kill(a.pid, 'SIGKILL');
        } catch {
          // gone
        }
        await Promise.race([a.exited, new Promise((r) => setTimeout(r, 5000))]);
      }
    }
    await this.topo.cleanup();
    rmSync(this.pinDir, { recursive: true, force: true });
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A line of a flow file: a native record (flow or lost_events) or an OCSF event. */
export type FlowLine = Partial<FlowRecord> & Record<string, unknown>;

/** Every JSON line of an NDJSON file ([] while it does not exist). */
export function readRecords(path: string): FlowLine[] {
  let text = '';
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((l) => l.trim().length > 0)
    .map((l) => JSON.parse(l) as FlowLine);
}
