/**
 * A private etcd (Debian's etcd-server) for tests, benchmarks and the lab:
 * loopback only, our ports, our data dir, stopped by the pid we started.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { get } from 'node:http';
import { open } from 'node:fs/promises';

export interface EtcdOptions {
  readonly dataDir: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly binary?: string;
  readonly name?: string;
  readonly startTimeoutMs?: number;
  /** Where etcd's log goes (default: `<dataDir>.log`, next to the data dir). */
  readonly logFile?: string;
}

export interface EtcdHandle {
  readonly endpoint: string;
  readonly pid: number;
  stop(): Promise<void>;
}

/** An unused TCP port on 127.0.0.1 (the kernel's choice). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      s.close(() =>
        typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port')),
      );
    });
  });
}

/** etcd's /health says true (bounded: one second). */
export function etcdHealthy(endpoint: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = get(`${endpoint}/health`, { timeout: 1000 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve(res.statusCode === 200 && body.includes('true')));
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
  });
}

function exited(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), timeoutMs);
    child.once('exit', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

export async function startEtcd(opts: EtcdOptions): Promise<EtcdHandle> {
  const name = opts.name ?? 'palisade';
  const client = `http://127.0.0.1:${opts.clientPort}`;
  const peer = `http://127.0.0.1:${opts.peerPort}`;
  const logFile = opts.logFile ?? `${opts.dataDir.replace(/\/+$/, '')}.log`;
  const log = await open(logFile, 'a', 0o600);
  const child = spawn(
    opts.binary ?? '/usr/bin/etcd',
    [
      '--name',
      name,
      '--data-dir',
      opts.dataDir,
      '--listen-client-urls',
      client,
      '--advertise-client-urls',
      client,
      '--listen-peer-urls',
      peer,
      '--initial-advertise-peer-urls',
      peer,
      '--initial-cluster',
      `${name}=${peer}`,
      '--initial-cluster-state',
      'new',
      '--logger',
      'zap',
      '--log-outputs',
      'stderr',
    ],
    { stdio: ['ignore', log.fd, log.fd] },
  );
  await log.close();
  const pid = child.pid;
  if (pid === undefined) throw new Error(`etcd: could not start ${opts.binary ?? '/usr/bin/etcd'}`);
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    process.kill(pid, 'SIGTERM');
    if (!(await exited(child, 5000))) {
      process.kill(pid, 'SIGKILL');
      await exited(child, 5000);
    }
  };
  const deadline = Date.now() + (opts.startTimeoutMs ?? 15_000);
  while (Date.now() < deadline) {
    if (child.exitCode !== null)
      throw new Error(`etcd exited with code ${child.exitCode} (log: ${logFile})`);
    if (await etcdHealthy(client)) return { endpoint: client, pid, stop };
    await new Promise((r) => setTimeout(r, 100));
  }
  await stop();
  throw new Error(`etcd on ${client} not healthy within ${opts.startTimeoutMs ?? 15_000} ms`);
}
