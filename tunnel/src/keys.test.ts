import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, chmodSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import {
  decodeKey,
  generateKeyPair,
  generatePresharedKey,
  hexToKey,
  keyToHex,
  pairPresharedKey,
  publicKeyOf,
  readPrivateKeyFile,
  writePrivateKeyFile,
} from './keys.js';
import { Secret } from './secret.js';

const dir = mkdtempSync(join(tmpdir(), 'palisade-keys-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('keys', () => {
  it('public keys are byte-identical to `wg pubkey` of our private key', () => {
    for (let i = 0; i < 5; i++) {
      const kp = generateKeyPair();
      const wg = execFileSync('wg', ['pubkey'], { input: `${kp.privateKey.reveal()}\n` })
        .toString()
        .trim();
      expect(kp.publicKey).toBe(wg);
    }
  });

  it('private keys are clamped exactly as `wg genkey` makes them', () => {
    const raw = Buffer.from(generateKeyPair().privateKey.reveal(), 'base64');
    expect(raw.length).toBe(32);
    expect((raw[0] as number) & 7).toBe(0);
    expect((raw[31] as number) & 0xc0).toBe(0x40);
  });

  it('publicKeyOf agrees with `wg pubkey` for a key made by `wg genkey`', () => {
    const priv = execFileSync('wg', ['genkey']).toString().trim();
    const pub = execFileSync('wg', ['pubkey'], { input: `${priv}\n` })
      .toString()
      .trim();
    expect(publicKeyOf(new Secret(priv))).toBe(pub);
  });

  it('pair preshared keys are symmetric, per pair, and change when a key rotates', () => {
    const a = generateKeyPair();
    const b = generateKeyPair();
    const c = generateKeyPair();
    const ab = pairPresharedKey(a.privateKey, b.publicKey).reveal();
    expect(pairPresharedKey(b.privateKey, a.publicKey).reveal()).toBe(ab);
    expect(pairPresharedKey(a.privateKey, c.publicKey).reveal()).not.toBe(ab);
    const a2 = generateKeyPair();
    expect(pairPresharedKey(a2.privateKey, b.publicKey).reveal()).not.toBe(ab);
    expect(decodeKey(ab, 'psk').length).toBe(32);
  });

  it('secrets never print', () => {
    const s = generatePresharedKey();
    const v = s.reveal();
    for (const text of [String(s), `${s}`, JSON.stringify({ s }), inspect({ s }), inspect(s)]) {
      expect(text).not.toContain(v);
      expect(text).toContain('redacted');
    }
  });

  it('hex round trip and malformed keys name the field, not the value', () => {
    const kp = generateKeyPair();
    expect(hexToKey(keyToHex(kp.publicKey))).toBe(kp.publicKey);
    expect(() => decodeKey('abc', 'peer B public key')).toThrow(
      /peer B public key: not a WireGuard key/,
    );
    expect(() => decodeKey(`${kp.publicKey.slice(0, 42)}B=`, 'k')).toThrow(/not a WireGuard key/);
    expect(() => hexToKey('zz')).toThrow(/64 lowercase hex/);
  });

  it('key files are written 0600 and looser files are refused without printing the key', async () => {
    const kp = generateKeyPair();
    const p = join(dir, 'sub', 'a.key');
    await writePrivateKeyFile(p, kp.privateKey);
    expect(statSync(p).mode & 0o777).toBe(0o600);
    expect((await readPrivateKeyFile(p)).reveal()).toBe(kp.privateKey.reveal());
    chmodSync(p, 0o644);
    const err = await readPrivateKeyFile(p).catch((e: Error) => e);
    expect(String(err)).toMatch(/mode 0644; a private key must be 0600/);
    expect(String(err)).not.toContain(kp.privateKey.reveal());
    const bad = join(dir, 'bad.key');
    writeFileSync(bad, 'not a key\n', { mode: 0o600 });
    await expect(readPrivateKeyFile(bad)).rejects.toThrow(/bad.key: not a WireGuard key/);
    await expect(readPrivateKeyFile(join(dir, 'missing.key'))).rejects.toThrow(/ENOENT/);
  });
});
