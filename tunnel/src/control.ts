/**
 * WireGuardControl: get and set one device's configuration, whichever
 * implementation runs it. Two backends: wireguard-go's UAPI socket
 * (userspace) and `wg` through execFile (kernel module). Every call is bounded.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hexToKey, keyToHex } from './keys.js';
import { Secret } from './secret.js';
import {
  GET_REQUEST,
  UapiError,
  checkErrno,
  encodeSet,
  parseGet,
  type DeviceConfig,
  type DeviceState,
  type PeerConfig,
  type PeerState,
} from './uapi-protocol.js';
import { uapiRequest, uapiSocketPath } from './uapi-client.js';

export interface WireGuardControl {
  readonly backend: 'userspace' | 'kernel';
  readonly iface: string;
  get(): Promise<DeviceState>;
  set(cfg: DeviceConfig): Promise<void>;
}

export const DEFAULT_CALL_TIMEOUT_MS = 3_000;

export class UapiControl implements WireGuardControl {
  readonly backend = 'userspace' as const;
  constructor(
    readonly iface: string,
    private readonly timeoutMs = DEFAULT_CALL_TIMEOUT_MS,
    private readonly socketPath = uapiSocketPath(iface),
  ) {}

  async get(): Promise<DeviceState> {
    return parseGet(await uapiRequest(this.socketPath, GET_REQUEST, this.timeoutMs));
  }

  async set(cfg: DeviceConfig): Promise<void> {
    const request = encodeSet(cfg); // validates before anything is sent
    checkErrno(await uapiRequest(this.socketPath, request, this.timeoutMs), `set ${this.iface}`);
  }
}

function run(cmd: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 8 << 20 }, (err, stdout, stderr) => {
      if (err) {
        const why = (err as NodeJS.ErrnoException & { killed?: boolean }).killed
          ? `no answer within ${timeoutMs} ms`
          : String(stderr).trim() || err.message;
        reject(new UapiError(`${cmd} ${args.slice(0, 3).join(' ')}: ${why}`));
      } else resolve(String(stdout));
    });
  });
}

/** Parses `wg show <iface> dump` (tab-separated; first line is the device). */
export function parseWgDump(text: string): DeviceState {
  const lines = text.split('\n').filter((l) => l !== '');
  const dev = (lines[0] ?? '').split('\t');
  if (dev.length < 4) throw new UapiError('wg show dump: malformed device line');
  const peers: PeerState[] = lines.slice(1).map((l) => {
    const f = l.split('\t');
    if (f.length < 8) throw new UapiError('wg show dump: malformed peer line');
    const [pub, psk, endpoint, allowed, hs, rx, tx, ka] = f as [
      string,
      string,
      string,
      string,
      string,
      string,
      string,
      string,
    ];
    return {
      publicKey: hexToKey(keyToHex(pub, 'peer public key'), 'peer public key'),
      hasPresharedKey: psk !== '(none)',
      endpoint: endpoint === '(none)' ? null : endpoint,
      lastHandshakeSec: Number(hs),
      rxBytes: Number(rx),
      txBytes: Number(tx),
      persistentKeepalive: ka === 'off' ? 0 : Number(ka),
      allowedIPs: allowed === '(none)' ? [] : allowed.split(','),
    };
  });
  return {
    privateKey: dev[0] === '(none)' ? null : new Secret(dev[0] as string),
    listenPort: Number(dev[2]),
    fwmark: dev[3] === 'off' ? 0 : Number(dev[3]),
    peers,
  };
}

/**
 * The kernel module through `wg` (wireguard-tools). Secrets go through 0600
 * files in a private temp dir (wg reads keys from files), removed right after.
 */
export class WgToolControl implements WireGuardControl {
  readonly backend = 'kernel' as const;
  constructor(
    readonly iface: string,
    private readonly netns: string | null,
    private readonly timeoutMs = DEFAULT_CALL_TIMEOUT_MS,
  ) {}

  private wg(args: string[]): Promise<string> {
    return this.netns
      ? run('ip', ['netns', 'exec', this.netns, 'wg', ...args], this.timeoutMs)
      : run('wg', args, this.timeoutMs);
  }

  async get(): Promise<DeviceState> {
    return parseWgDump(await this.wg(['show', this.iface, 'dump']));
  }

  async set(cfg: DeviceConfig): Promise<void> {
    encodeSet(cfg); // same validation as the UAPI path
    const dir = await mkdtemp(join(tmpdir(), 'palisade-wg-'));
    try {
      const secretFile = async (name: string, s: Secret<string>): Promise<string> => {
        const p = join(dir, name);
        await writeFile(p, `${s.reveal()}\n`, { mode: 0o600 });
        return p;
      };
      const args = ['set', this.iface];
      if (cfg.privateKey) args.push('private-key', await secretFile('private', cfg.privateKey));
      if (cfg.listenPort !== undefined) args.push('listen-port', String(cfg.listenPort));
      if (cfg.replacePeers) {
        const cur = await this.get();
        const keep = new Set((cfg.peers ?? []).map((p) => p.publicKey));
        for (const p of cur.peers)
          if (!keep.has(p.publicKey)) args.push('peer', p.publicKey, 'remove');
      }
      let i = 0;
      for (const p of cfg.peers ?? []) {
        args.push('peer', p.publicKey);
        if (p.remove) {
          args.push('remove');
          continue;
        }
        if (p.presharedKey !== undefined) {
          args.push(
            'preshared-key',
            p.presharedKey === null ? '/dev/null' : await secretFile(`psk${i++}`, p.presharedKey),
          );
        }
        if (p.endpoint !== undefined) args.push('endpoint', p.endpoint);
        if (p.persistentKeepalive !== undefined)
          args.push('persistent-keepalive', String(p.persistentKeepalive || 'off'));
        if (p.allowedIPs !== undefined) {
          // `wg set ... allowed-ips` always replaces the list; merge when asked to add.
          let list = [...p.allowedIPs];
          if (!p.replaceAllowedIPs) {
            const cur = (await this.get()).peers.find((q) => q.publicKey === p.publicKey);
            list = [...new Set([...(cur?.allowedIPs ?? []), ...list])];
          }
          args.push('allowed-ips', list.join(','));
        }
      }
      await this.wg(args);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
}

export interface BackendDetection {
  readonly backend: 'userspace' | 'kernel' | 'none';
  readonly reason: string;
}

function onPath(cmd: string): boolean {
  const dirs = (process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':');
  return dirs.some((d) => d !== '' && existsSync(join(d, cmd)));
}

/** Which backend this host can run, and why. The kernel module wins when loaded. */
export function detectBackend(): BackendDetection {
  const kernel = existsSync('/sys/module/wireguard');
  if (kernel && onPath('wg'))
    return { backend: 'kernel', reason: 'kernel module wireguard is loaded and wg is on PATH' };
  if (onPath('wireguard-go')) {
    return {
      backend: 'userspace',
      reason: kernel
        ? 'kernel module loaded but wg (wireguard-tools) is missing; using wireguard-go'
        : 'kernel module wireguard is not loaded (/sys/module/wireguard absent); using wireguard-go',
    };
  }
  return {
    backend: 'none',
    reason: 'neither the wireguard kernel module (with wg) nor wireguard-go is available',
  };
}

/**
 * Changes an existing peer and refuses an unknown one with a clear error
 * (UAPI's update_only silently ignores unknown keys; an operator's typo
 * should not pass for success).
 */
export async function updatePeer(
  control: WireGuardControl,
  peer: Omit<PeerConfig, 'updateOnly' | 'remove'>,
): Promise<void> {
  encodeSet({ peers: [peer] });
  const cur = await control.get();
  if (!cur.peers.some((p) => p.publicKey === peer.publicKey)) {
    throw new UapiError(
      `peer ${peer.publicKey} is not configured on ${control.iface} (known: ${cur.peers.length} peers); nothing changed`,
    );
  }
  await control.set({ peers: [{ ...peer, updateOnly: true }] });
}
