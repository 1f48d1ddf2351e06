/**
 * The attach helper (attach-child.ts) as a child process in the node
 * namespace: the bench switches Palisade's programs on and off with it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, extname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export class AttachChild {
  private readonly lines: string[] = [];
  private waiter: ((l: string) => void) | undefined;
  private constructor(readonly proc: ChildProcess) {
    createInterface({ input: proc.stdout! }).on('line', (l) => {
      if (this.waiter) {
        const w = this.waiter;
        this.waiter = undefined;
        w(l);
      } else this.lines.push(l);
    });
  }
  /** `objectPath`: a BPF object other than the build's (a same-run reference); same maps. */
  static async start(
    ns: string,
    pinDir: string,
    ifindexes: number[],
    objectPath?: string,
  ): Promise<AttachChild> {
    const self = fileURLToPath(import.meta.url);
    const ext = extname(self);
    const child = join(dirname(self), `attach-child${ext}`);
    const hooks = join(
      dirname(self),
      '..',
      '..',
      'test',
      'privileged',
      'datapath',
      'ts-register.mjs',
    );
    const nodeArgs = ext === '.ts' ? ['--import', hooks, child] : [child];
    // nsenter keeps /sys (and the bpffs pins) visible, unlike `ip netns exec`
    const proc = spawn(
      'nsenter',
      [
        `--net=/run/netns/${ns}`,
        process.execPath,
        ...nodeArgs,
        pinDir,
        ifindexes.join(','),
        ...(objectPath ? [objectPath] : []),
      ],
      {
        stdio: ['pipe', 'pipe', 'inherit'],
      },
    );
    const c = new AttachChild(proc);
    const first = await c.next(30_000);
    if (first !== 'ready') throw new Error(`attach helper: ${first}`);
    return c;
  }
  next(timeoutMs: number): Promise<string> {
    const l = this.lines.shift();
    if (l !== undefined) return Promise.resolve(l);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('attach helper: no answer')), timeoutMs);
      this.waiter = (x) => {
        clearTimeout(t);
        resolve(x);
      };
    });
  }
  async cmd(c: 'attach' | 'detach'): Promise<void> {
    this.proc.stdin!.write(c + '\n');
    const r = await this.next(10_000);
    if (r !== 'ok') throw new Error(`attach helper: ${r}`);
  }
  stop(): void {
    if (this.proc.exitCode === null && this.proc.pid !== undefined)
      process.kill(this.proc.pid, 'SIGKILL');
  }
}
