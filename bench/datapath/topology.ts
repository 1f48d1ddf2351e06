/**
 * Pods as network namespaces with veth pairs into one node namespace (the
 * node routes between them, IPv4 and IPv6). Shared by the datapath tests
 * and the datapath benchmark. Everything lives in namespaces this creates;
 * cleanup() stops the pod agents it started (by pid) and removes them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

import { NetnsLab, sh } from '../../test/support/netns.js';
import { POD_AGENT_JS } from './pod-agent.js';

export interface Pod {
  readonly index: number;
  readonly ns: string;
  /** host-side interface in the node namespace */
  readonly hostIf: string;
  readonly ifindex: number;
  readonly ip4: string;
  readonly ip6: string;
}

export type AgentReply = { id: number; ok: boolean } & Record<string, unknown>;

/** A pod's agent process: send a command, await its reply. */
export class PodAgent {
  private next = 1;
  private readonly waiting = new Map<number, (r: AgentReply) => void>();
  readonly events: Record<string, unknown>[] = [];
  private readonly eventWaiters: ((e: Record<string, unknown>) => void)[] = [];

  constructor(readonly proc: ChildProcess) {
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      if (msg['event'] !== undefined) {
        this.events.push(msg);
        for (const w of this.eventWaiters.splice(0)) w(msg);
        return;
      }
      const id = msg['id'];
      if (typeof id === 'number') {
        this.waiting.get(id)?.(msg as AgentReply);
        this.waiting.delete(id);
      }
    });
  }

  call(cmd: Record<string, unknown>, timeoutMs = 20_000): Promise<AgentReply> {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`pod agent: no reply to ${String(cmd['op'])} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, (r) => {
        clearTimeout(t);
        resolve(r);
      });
      this.proc.stdin!.write(JSON.stringify({ ...cmd, id }) + '\n');
    });
  }

  /** Waits (bounded) for an asynchronous event line such as {event: 'stopped'}. */
  waitEvent(
    pred: (e: Record<string, unknown>) => boolean,
    timeoutMs: number,
  ): Promise<Record<string, unknown> | null> {
    const found = this.events.find(pred);
    if (found) return Promise.resolve(found);
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(null), timeoutMs);
      const w = (e: Record<string, unknown>): void => {
        if (pred(e)) {
          clearTimeout(t);
          resolve(e);
        } else this.eventWaiters.push(w);
      };
      this.eventWaiters.push(w);
    });
  }

  tcp(host: string, port: number, timeoutMs = 1500): Promise<boolean> {
    return this.call({ op: 'tcp', host, port, timeoutMs }).then((r) => r.ok);
  }

  udp(host: string, port: number, timeoutMs = 1500): Promise<boolean> {
    return this.call({ op: 'udp', host, port, timeoutMs }).then((r) => r.ok);
  }
}

export class PodTopology {
  readonly agents = new Map<number, PodAgent>();
  private readonly procs: ChildProcess[] = [];

  private constructor(
    readonly lab: NetnsLab,
    readonly nodeNs: string,
    readonly pods: readonly Pod[],
  ) {}

  static async create(tag: string, podCount: number): Promise<PodTopology> {
    const lab = new NetnsLab(tag);
    try {
      const nodeNs = await lab.addNamespace('node');
      await lab.exec(nodeNs, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
      await lab.exec(nodeNs, 'sysctl', ['-qw', 'net.ipv6.conf.all.forwarding=1']);
      const pods: Pod[] = [];
      for (let i = 0; i < podCount; i++) {
        const ns = await lab.addNamespace(`p${i}`);
        const hostIf = `${lab.prefix}h${i}`;
        await lab.addVeth(nodeNs, hostIf, ns, 'eth0');
        const n = i + 1;
        const ip4 = `10.77.${n}.2`;
        const ip6 = `fd77:${n}::2`;
        await lab.exec(nodeNs, 'ip', ['addr', 'add', `10.77.${n}.1/24`, 'dev', hostIf]);
        await lab.exec(nodeNs, 'ip', ['addr', 'add', `fd77:${n}::1/64`, 'dev', hostIf, 'nodad']);
        await lab.exec(ns, 'ip', ['addr', 'add', `${ip4}/24`, 'dev', 'eth0']);
        await lab.exec(ns, 'ip', ['addr', 'add', `${ip6}/64`, 'dev', 'eth0', 'nodad']);
        await lab.exec(ns, 'ip', ['route', 'add', 'default', 'via', `10.77.${n}.1`]);
        await lab.exec(ns, 'ip', ['-6', 'route', 'add', 'default', 'via', `fd77:${n}::1`]);
        const info = JSON.parse(
          await lab.exec(nodeNs, 'ip', ['-j', 'link', 'show', 'dev', hostIf]),
        ) as {
          ifindex: number;
        }[];
        pods.push({ index: i, ns, hostIf, ifindex: info[0]!.ifindex, ip4, ip6 });
      }
      return new PodTopology(lab, nodeNs, pods);
    } catch (e) {
      await lab.cleanup();
      throw e;
    }
  }

  pod(i: number): Pod {
    const p = this.pods[i];
    if (!p) throw new Error(`no pod ${i}`);
    return p;
  }

  /** Starts (once) the agent process inside pod i. */
  async agent(i: number): Promise<PodAgent> {
    const have = this.agents.get(i);
    if (have) return have;
    const proc = spawn(
      'ip',
      ['netns', 'exec', this.pod(i).ns, process.execPath, '-e', POD_AGENT_JS],
      {
        stdio: ['pipe', 'pipe', 'inherit'],
      },
    );
    this.procs.push(proc);
    const a = new PodAgent(proc);
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('pod agent did not start')), 10_000);
      createInterface({ input: proc.stdout! }).once('line', () => {
        clearTimeout(t);
        resolve();
      });
    });
    this.agents.set(i, a);
    return a;
  }

  /** Runs a command in a namespace and returns stdout. */
  exec(ns: string, cmd: string, args: string[], timeoutMs = 10_000): Promise<string> {
    return this.lab.exec(ns, cmd, args, timeoutMs);
  }

  /** Starts a long-running process (by pid, stopped in cleanup). */
  spawnIn(ns: string, cmd: string, args: string[]): ChildProcess {
    const p = spawn('ip', ['netns', 'exec', ns, cmd, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.procs.push(p);
    return p;
  }

  async cleanup(): Promise<void> {
    for (const p of this.procs.splice(0)) {
      if (p.exitCode === null && p.pid !== undefined) {
        try {
          process.kill(p.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    await this.lab.cleanup();
  }
}

export { sh };
