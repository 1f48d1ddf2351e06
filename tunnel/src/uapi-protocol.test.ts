import { describe, expect, it } from 'vitest';
import { generateKeyPair, keyToHex } from './keys.js';
import { checkErrno, encodeSet, parseGet, UapiError } from './uapi-protocol.js';
import { parseWgDump } from './control.js';

const a = generateKeyPair();
const b = generateKeyPair();

describe('UAPI protocol', () => {
  it('encodes set requests with hex keys, flags and a terminating blank line', () => {
    const text = encodeSet({
      privateKey: a.privateKey,
      listenPort: 51820,
      peers: [
        {
          publicKey: b.publicKey,
          updateOnly: true,
          endpoint: '10.0.0.2:51820',
          persistentKeepalive: 2,
          replaceAllowedIPs: true,
          allowedIPs: ['10.2.0.0/16', 'fd00:2::/64'],
        },
        { publicKey: a.publicKey, remove: true },
      ],
    });
    expect(text).toBe(
      [
        'set=1',
        `private_key=${keyToHex(a.privateKey.reveal())}`,
        'listen_port=51820',
        `public_key=${keyToHex(b.publicKey)}`,
        'update_only=true',
        'endpoint=10.0.0.2:51820',
        'persistent_keepalive_interval=2',
        'replace_allowed_ips=true',
        'allowed_ip=10.2.0.0/16',
        'allowed_ip=fd00:2::/64',
        `public_key=${keyToHex(a.publicKey)}`,
        'remove=true',
        '',
        '',
      ].join('\n'),
    );
  });

  it('rejects bad input before anything is sent', () => {
    expect(() => encodeSet({ peers: [{ publicKey: 'nope' }] })).toThrow(
      /peer public key: not a WireGuard key/,
    );
    expect(() => encodeSet({ peers: [{ publicKey: b.publicKey, endpoint: 'host:1' }] })).toThrow(
      /not address:port/,
    );
    expect(() =>
      encodeSet({ peers: [{ publicKey: b.publicKey, allowedIPs: ['10.0.0.1/8'] }] }),
    ).toThrow(/host bits set/);
    expect(() => encodeSet({ listenPort: 70000 })).toThrow(/not a port/);
  });

  it('parses get answers: device fields, peers, allowed IPs, counters', () => {
    const answer = [
      `private_key=${keyToHex(a.privateKey.reveal())}`,
      'listen_port=51820',
      `public_key=${keyToHex(b.publicKey)}`,
      `preshared_key=${'0'.repeat(64)}`,
      'protocol_version=1',
      'endpoint=10.0.0.2:51820',
      'last_handshake_time_sec=1700000000',
      'last_handshake_time_nsec=5',
      'tx_bytes=148',
      'rx_bytes=92',
      'persistent_keepalive_interval=2',
      'allowed_ip=10.2.0.0/16',
      'allowed_ip=fd00:2::/64',
      'errno=0',
      '',
      '',
    ].join('\n');
    const s = parseGet(answer);
    expect(s.listenPort).toBe(51820);
    expect(s.privateKey?.reveal()).toBe(a.privateKey.reveal());
    expect(s.peers).toEqual([
      {
        publicKey: b.publicKey,
        hasPresharedKey: false,
        endpoint: '10.0.0.2:51820',
        lastHandshakeSec: 1700000000,
        txBytes: 148,
        rxBytes: 92,
        persistentKeepalive: 2,
        allowedIPs: ['10.2.0.0/16', 'fd00:2::/64'],
      },
    ]);
    expect(JSON.stringify(s)).not.toContain(a.privateKey.reveal());
  });

  it('errno answers become UapiError with the number', () => {
    expect(() => checkErrno('errno=0\n\n', 'set')).not.toThrow();
    const e = (() => {
      try {
        checkErrno('errno=-22\n\n', 'set wg0');
      } catch (x) {
        return x as UapiError;
      }
      return null;
    })();
    expect(e).toBeInstanceOf(UapiError);
    expect(e?.errno).toBe(-22);
    expect(() => checkErrno('garbage', 'get')).toThrow(/no errno line/);
    expect(() => parseGet('oops\nerrno=0\n\n')).toThrow(/malformed UAPI line/);
  });

  it('parses `wg show dump` for the kernel backend', () => {
    const dump = `${a.privateKey.reveal()}\t${a.publicKey}\t51820\toff\n${b.publicKey}\t(none)\t10.0.0.2:51820\t10.2.0.0/16,fd00:2::/64\t1700000000\t92\t148\t2\n`;
    const s = parseWgDump(dump);
    expect(s.peers[0]).toEqual({
      publicKey: b.publicKey,
      hasPresharedKey: false,
      endpoint: '10.0.0.2:51820',
      lastHandshakeSec: 1700000000,
      rxBytes: 92,
      txBytes: 148,
      persistentKeepalive: 2,
      allowedIPs: ['10.2.0.0/16', 'fd00:2::/64'],
    });
  });
});
