/**
 * WireGuard keys: x25519 made with node:crypto, in the exact text form of
 * `wg genkey` / `wg pubkey` (standard base64 of 32 bytes, private keys
 * clamped as wg clamps them). Private and preshared keys only ever travel
 * inside a Secret; key files are 0600 and a looser file is refused.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  hkdfSync,
  randomBytes,
  type KeyObject,
} from 'node:crypto';
import { chmod, mkdir, open, rename, stat, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Secret } from './secret.js';

export const KEY_BYTES = 32;

/** Public key text (`wg pubkey` output); not secret. */
export type PublicKey = string;

export interface KeyPair {
  readonly privateKey: Secret<string>;
  readonly publicKey: PublicKey;
}

export class KeyError extends Error {
  override name = 'KeyError';
}

// DER wrappers of a raw X25519 key (RFC 8410): PKCS#8 for private, SPKI for public.
const PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');

const BASE64_KEY = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;

/** Decodes a key's base64 text; `what` names it in the error (never its value). */
export function decodeKey(text: string, what: string): Buffer {
  const t = text.trim();
  if (!BASE64_KEY.test(t)) {
    throw new KeyError(
      `${what}: not a WireGuard key (expected 44 characters of base64 encoding 32 bytes, as \`wg genkey\` prints)`,
    );
  }
  return Buffer.from(t, 'base64');
}

/** Validates a public key and returns it in canonical form. */
export function parsePublicKey(text: string, what = 'public key'): PublicKey {
  return decodeKey(text, what).toString('base64');
}

function clamp(raw: Buffer): Buffer {
  const k = Buffer.from(raw);
  k[0] = (k[0] as number) & 248;
  k[31] = ((k[31] as number) & 127) | 64;
  return k;
}

function privateKeyObject(raw: Buffer): KeyObject {
  return createPrivateKey({
    key: Buffer.concat([PKCS8_PREFIX, raw]),
    format: 'der',
    type: 'pkcs8',
  });
}

function publicKeyObject(raw: Buffer): KeyObject {
  return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
}

/** `wg pubkey`: the public key of a private key. */
export function publicKeyOf(privateKey: Secret<string>): PublicKey {
  const raw = decodeKey(privateKey.reveal(), 'private key');
  const spki = createPublicKey(privateKeyObject(raw)).export({ format: 'der', type: 'spki' });
  return spki.subarray(spki.length - KEY_BYTES).toString('base64');
}

/** `wg genkey` + `wg pubkey`. */
export function generateKeyPair(): KeyPair {
  const privateKey = new Secret(clamp(randomBytes(KEY_BYTES)).toString('base64'));
  return { privateKey, publicKey: publicKeyOf(privateKey) };
}

/** `wg genpsk`. */
export function generatePresharedKey(): Secret<string> {
  return new Secret(randomBytes(KEY_BYTES).toString('base64'));
}

/**
 * The preshared key of one pair of gateways, derived from the static x25519
 * exchange of the two current keys: both ends compute the same value with no
 * secret crossing the mesh store, every pair gets its own, and it changes
 * whenever either key rotates. (It adds per-pair separation, not post-quantum
 * strength: see docs/tunnel.md.)
 */
export function pairPresharedKey(
  ownPrivate: Secret<string>,
  peerPublic: PublicKey,
): Secret<string> {
  const priv = privateKeyObject(decodeKey(ownPrivate.reveal(), 'private key'));
  const peerRaw = decodeKey(peerPublic, 'peer public key');
  const shared = diffieHellman({ privateKey: priv, publicKey: publicKeyObject(peerRaw) });
  const own = Buffer.from(publicKeyOf(ownPrivate), 'base64');
  const [a, b] = Buffer.compare(own, peerRaw) <= 0 ? [own, peerRaw] : [peerRaw, own];
  const salt = createHash('sha256').update(a).update(b).digest();
  const psk = Buffer.from(
    hkdfSync('sha256', shared, salt, 'palisade wireguard pair psk v1', KEY_BYTES),
  );
  return new Secret(psk.toString('base64'));
}

/** Base64 key → the lowercase hex the UAPI protocol uses. */
export function keyToHex(base64: string, what = 'key'): string {
  return decodeKey(base64, what).toString('hex');
}

/** UAPI hex → base64. */
export function hexToKey(hex: string, what = 'key'): string {
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new KeyError(`${what}: expected 64 lowercase hex digits`);
  return Buffer.from(hex, 'hex').toString('base64');
}

/** Writes a private key file, 0600, atomically (temp file + rename). */
export async function writePrivateKeyFile(path: string, key: Secret<string>): Promise<void> {
  decodeKey(key.reveal(), 'private key');
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.tmp-${process.pid}`;
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.chmod(0o600);
    await fh.writeFile(`${key.reveal()}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
  await chmod(path, 0o600);
}

/** Reads a private key file; refuses one readable or writable by group or others. */
export async function readPrivateKeyFile(path: string): Promise<Secret<string>> {
  let mode: number;
  try {
    mode = (await stat(path)).mode & 0o777;
  } catch (e) {
    throw new KeyError(`key file ${path}: ${(e as NodeJS.ErrnoException).code ?? 'unreadable'}`);
  }
  if ((mode & 0o077) !== 0) {
    throw new KeyError(
      `key file ${path} has mode ${mode.toString(8).padStart(4, '0')}; a private key must be 0600 (chmod 600 ${path})`,
    );
  }
  const text = await readFile(path, 'utf8');
  decodeKey(text, `key file ${path}`);
  return new Secret(text.trim());
}
