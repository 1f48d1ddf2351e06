/**
 * Network namespaces for tests: every name carries a per-run prefix so nothing
 * collides with the host's own, and cleanup() removes exactly what was made.
 * All addresses live inside these namespaces; the root namespace gets none.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export async function sh(cmd: string, args: string[], timeoutMs = 10_000): Promise<string> {
  const { stdout } = await run(cmd, args, { timeout: timeoutMs, maxBuffer: 16 << 20 });
  return stdout;
}

export class NetnsLab {
  readonly prefix: string;
  private readonly namespaces: string[] = [];

  constructor(tag: string) {
    // Short: interface names are limited to 15 characters.
    this.prefix = `pt${tag}${process.pid.toString(36).slice(-3)}`;
  }

  name(local: string): string {
    return `${this.prefix}-${local}`;
  }

  async addNamespace(local: string): Promise<string> {
    const ns = this.name(local);
    await sh('ip', ['netns', 'add', ns]);
    this.namespaces.push(ns);
    await this.exec(ns, 'ip', ['link', 'set', 'lo', 'up']);
    return ns;
  }

  /** Runs a command inside a namespace (bounded by timeoutMs). */
  exec(ns: string, cmd: string, args: string[], timeoutMs = 10_000): Promise<string> {
    return sh('ip', ['netns', 'exec', ns, cmd, ...args], timeoutMs);
  }

  /** veth pair with one end in each namespace; returns the interface names. */
  async addVeth(nsA: string, ifA: string, nsB: string, ifB: string): Promise<void> {
    await sh('ip', [
      'link',
      'add',
      ifA,
      'netns',
      nsA,
      'type',
      'veth',
      'peer',
      'name',
      ifB,
      'netns',
      nsB,
    ]);
    await this.exec(nsA, 'ip', ['link', 'set', ifA, 'up']);
    await this.exec(nsB, 'ip', ['link', 'set', ifB, 'up']);
  }

  async cleanup(): Promise<void> {
    for (const ns of this.namespaces.splice(0).reverse()) {
      await sh('ip', ['netns', 'del', ns]).catch(() => undefined);
    }
  }
}
