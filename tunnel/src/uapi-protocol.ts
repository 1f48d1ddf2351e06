/**
 * The WireGuard cross-platform UAPI text protocol (wireguard.com/xplatform):
 * `get=1` / `set=1` requests of key=value lines, keys in lowercase hex,
 * answered by `errno=N`. Pure: builds request text and parses answers, so
 * it is tested without a socket; uapi-client.ts does the I/O.
 */
import { hexToKey, keyToHex, type PublicKey } from './keys.js';
import { parsePrefix } from './cidr.js';
import { Secret } from './secret.js';

export interface PeerState {
  readonly publicKey: PublicKey;
  readonly hasPresharedKey: boolean;
  readonly endpoint: string | null;
  /** Unix seconds of the latest completed handshake; 0 = never. */
  readonly lastHandshakeSec: number;
  readonly txBytes: number;
  readonly rxBytes: number;
  readonly persistentKeepalive: number;
  readonly allowedIPs: readonly string[];
}

export interface DeviceState {
  /** Present when the device has a private key; a Secret, never printed. */
  readonly privateKey: Secret<string> | null;
  readonly listenPort: number;
  readonly fwmark: number;
  readonly peers: readonly PeerState[];
}

export interface PeerConfig {
  readonly publicKey: PublicKey;
  /** Remove this peer (nothing else is applied to it). */
  readonly remove?: boolean;
  /** Only change an existing peer, never create one (a typo'd key fails instead of adding a stranger). */
  readonly updateOnly?: boolean;
  /** undefined = leave as is; null = clear. */
  readonly presharedKey?: Secret<string> | null;
  readonly endpoint?: string;
  readonly persistentKeepalive?: number;
  /** With allowedIPs: the list replaces the peer's (in one atomic step). */
  readonly replaceAllowedIPs?: boolean;
  readonly allowedIPs?: readonly string[];
}

export interface DeviceConfig {
  readonly privateKey?: Secret<string>;
  readonly listenPort?: number;
  readonly replacePeers?: boolean;
  readonly peers?: readonly PeerConfig[];
}

export class UapiError extends Error {
  override name = 'UapiError';
  constructor(
    message: string,
    readonly errno: number | null = null,
  ) {
    super(message);
  }
}

const ZERO_KEY_HEX = '0'.repeat(64);

function checkPort(n: number, what: string): void {
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new UapiError(`${what}: ${n} is not a port (0-65535)`);
}

/** Validates `host:port` / `[v6]:port`. */
export function checkEndpoint(ep: string, what = 'endpoint'): void {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|(\d+\.\d+\.\d+\.\d+)):(\d{1,5})$/.exec(ep);
  if (!m)
    throw new UapiError(`${what}: ${JSON.stringify(ep)} is not address:port (IPv6 as [addr]:port)`);
  try {
    parsePrefix((m[1] ?? m[2]) as string);
  } catch {
    throw new UapiError(`${what}: ${JSON.stringify(ep)} has no valid IP address`);
  }
  checkPort(Number(m[3]), `${what} port`);
}

/** The text of one `set=1` request, terminated by the blank line. */
export function encodeSet(cfg: DeviceConfig): string {
  const lines = ['set=1'];
  if (cfg.privateKey) lines.push(`private_key=${keyToHex(cfg.privateKey.reveal(), 'private key')}`);
  if (cfg.listenPort !== undefined) {
    checkPort(cfg.listenPort, 'listen port');
    lines.push(`listen_port=${cfg.listenPort}`);
  }
  if (cfg.replacePeers) lines.push('replace_peers=true');
  for (const p of cfg.peers ?? []) {
    const what = `peer ${p.publicKey}`;
    lines.push(`public_key=${keyToHex(p.publicKey, 'peer public key')}`);
    if (p.remove) {
      lines.push('remove=true');
      continue;
    }
    if (p.updateOnly) lines.push('update_only=true');
    if (p.presharedKey !== undefined) {
      lines.push(
        `preshared_key=${p.presharedKey === null ? ZERO_KEY_HEX : keyToHex(p.presharedKey.reveal(), 'preshared key')}`,
      );
    }
    if (p.endpoint !== undefined) {
      checkEndpoint(p.endpoint, `${what} endpoint`);
      lines.push(`endpoint=${p.endpoint}`);
    }
    if (p.persistentKeepalive !== undefined) {
      checkPort(p.persistentKeepalive, `${what} persistent keepalive`);
      lines.push(`persistent_keepalive_interval=${p.persistentKeepalive}`);
    }
    if (p.replaceAllowedIPs) lines.push('replace_allowed_ips=true');
    for (const a of p.allowedIPs ?? []) {
      let text: string;
      try {
        text = parsePrefix(a).text;
      } catch (e) {
        throw new UapiError(`${what} allowed IP: ${(e as Error).message}`);
      }
      lines.push(`allowed_ip=${text}`);
    }
  }
  return `${lines.join('\n')}\n\n`;
}

export const GET_REQUEST = 'get=1\n\n';

/** Reads the errno line of an answer; throws UapiError for errno != 0. */
export function checkErrno(answer: string, op: string): void {
  const m = /(?:^|\n)errno=(-?\d+)\n/.exec(answer);
  if (!m) throw new UapiError(`${op}: malformed UAPI answer (no errno line)`);
  const errno = Number(m[1]);
  if (errno !== 0)
    throw new UapiError(
      `${op}: wireguard refused the request (errno=${errno}${errnoHint(errno)})`,
      errno,
    );
}

function errnoHint(errno: number): string {
  // wireguard-go's ipc error codes (ipc/uapi.go).
  switch (errno) {
    case 1:
      return ': I/O error';
    case 2:
      return ': protocol error, a malformed or unknown key';
    case 3:
      return ': invalid value';
    case 4:
      return ': port in use';
    default:
      return '';
  }
}

/** Parses a `get=1` answer. */
export function parseGet(answer: string): DeviceState {
  checkErrno(answer, 'get');
  let privateKey: Secret<string> | null = null;
  let listenPort = 0;
  let fwmark = 0;
  const peers: PeerState[] = [];
  let cur: { -readonly [K in keyof PeerState]: PeerState[K] } | null = null;
  let allowed: string[] = [];
  const flush = (): void => {
    if (cur) peers.push({ ...cur, allowedIPs: allowed });
    cur = null;
    allowed = [];
  };
  for (const line of answer.split('\n')) {
    if (line === '') continue;
    const eq = line.indexOf('=');
    if (eq < 0)
      throw new UapiError(
        `get: malformed UAPI line (no '='): ${JSON.stringify(line.slice(0, 40))}`,
      );
    const k = line.slice(0, eq);
    const v = line.slice(eq + 1);
    const num = (): number => {
      if (!/^\d+$/.test(v)) throw new UapiError(`get: ${k} is not a number`);
      return Number(v);
    };
    if (k === 'public_key') {
      flush();
      cur = {
        publicKey: hexToKey(v, 'peer public key'),
        hasPresharedKey: false,
        endpoint: null,
        lastHandshakeSec: 0,
        txBytes: 0,
        rxBytes: 0,
        persistentKeepalive: 0,
        allowedIPs: [],
      };
      continue;
    }
    if (cur === null) {
      if (k === 'private_key')
        privateKey = v === ZERO_KEY_HEX ? null : new Secret(hexToKey(v, 'private key'));
      else if (k === 'listen_port') listenPort = num();
      else if (k === 'fwmark') fwmark = num();
      continue; // errno and fields from newer versions
    }
    const c = cur as { -readonly [K in keyof PeerState]: PeerState[K] };
    switch (k) {
      case 'preshared_key':
        c.hasPresharedKey = v !== ZERO_KEY_HEX;
        break;
      case 'endpoint':
        c.endpoint = v;
        break;
      case 'last_handshake_time_sec':
        c.lastHandshakeSec = num();
        break;
      case 'tx_bytes':
        c.txBytes = num();
        break;
      case 'rx_bytes':
        c.rxBytes = num();
        break;
      case 'persistent_keepalive_interval':
        c.persistentKeepalive = num();
        break;
      case 'allowed_ip':
        allowed.push(v);
        break;
      default:
        break; // protocol_version, last_handshake_time_nsec, errno
    }
  }
  flush();
  return { privateKey, listenPort, fwmark, peers };
}
