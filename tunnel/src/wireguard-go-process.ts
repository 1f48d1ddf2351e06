/**
 * wireguard-go in a gateway's network namespace: `ip netns exec <ns>
 * wireguard-go -f <iface>` (ip execs, so the pid we get is wireguard-go's),
 * foreground, so the process is ours and is stopped by its pid, never by
 * name. `ip netns exec` keeps the root mount namespace's /var/run, so the
 * UAPI socket is /var/run/wireguard/<iface>.sock for every namespace:
 * interface names must be unique on the host.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, open, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { GET_REQUEST } from './uapi-protocol.js';
import { uapiRequest, uapiSocketPath } from './uapi-client.js';

export class WireguardGoError extends Error {
  override name = 'WireguardGoError';
}

const IFACE = /^[A-Za-z0-9_.-]{1,15}$/;

export function checkIfaceName(iface: string): void {
  if (!IFACE.test(iface))
    throw new WireguardGoError(
      `interface name ${JSON.stringify(iface)}: 1-15 characters of letters, digits, '_', '.', '-'`,
    );
}

/** True when `pid` is a live wireguard-go for `iface` (a reused pid is not ours). */
export function isWireguardGo(pid: number, iface: string): boolean {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return argv.some((a) => a.endsWith('wireguard-go')) && argv.includes(iface);
  } catch {
    return false;
  }
}

async function answers(iface: string): Promise<boolean> {
  return uapiRequest(uapiSocketPath(iface), GET_REQUEST, 1000).then(
    () => true,
    () => false,
  );
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function startWireguardGo(
  netns: string,
  iface: string,
  logPath: string,
  timeoutMs = 5000,
): Promise<number> {
  checkIfaceName(iface);
  if (await answers(iface))
    throw new WireguardGoError(
      `${uapiSocketPath(iface)} already answers: another wireguard-go runs ${iface}`,
    );
  await mkdir(dirname(logPath), { recursive: true, mode: 0o700 });
  const log = await open(logPath, 'a', 0o600);
  const child = spawn('ip', ['netns', 'exec', netns, 'wireguard-go', '-f', iface], {
    detached: true,
    stdio: ['ignore', log.fd, log.fd],
    env: { ...process.env, WG_PROCESS_FOREGROUND: '1', LOG_LEVEL: 'error' },
  });
  await log.close();
  const pid = child.pid;
  if (pid === undefined) throw new WireguardGoError('could not spawn ip netns exec wireguard-go');
  let exitCode: number | null = null;
  child.once('exit', (c) => (exitCode = c ?? -1));
  child.unref();
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (exitCode !== null) {
      const tail = (await readFile(logPath, 'utf8').catch(() => ''))
        .trim()
        .split('\n')
        .slice(-3)
        .join(' | ');
      throw new WireguardGoError(
        `wireguard-go for ${iface} in netns ${netns} exited (code ${exitCode}): ${tail}`,
      );
    }
    if (await answers(iface)) return pid;
    await sleep(50);
  }
  await stopWireguardGo(pid, iface);
  throw new WireguardGoError(
    `wireguard-go for ${iface} did not open ${uapiSocketPath(iface)} within ${timeoutMs} ms`,
  );
}

/** SIGTERM, then SIGKILL after a bounded wait; only if the pid is still our wireguard-go. */
export async function stopWireguardGo(
  pid: number,
  iface: string,
  signal: NodeJS.Signals = 'SIGTERM',
): Promise<void> {
  if (!isWireguardGo(pid, iface)) return;
  process.kill(pid, signal);
  for (let i = 0; i < 60 && isWireguardGo(pid, iface); i++) await sleep(50);
  if (isWireguardGo(pid, iface)) {
    process.kill(pid, 'SIGKILL');
    for (let i = 0; i < 40 && isWireguardGo(pid, iface); i++) await sleep(50);
  }
}
