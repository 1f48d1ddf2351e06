import { describe, expect, it } from 'vitest';
import { classify, observe } from './health.js';
import type { PeerState } from './uapi-protocol.js';

const peer = (rx: number, tx: number, hs: number): PeerState => ({
  publicKey: 'k',
  hasPresharedKey: true,
  endpoint: null,
  lastHandshakeSec: hs,
  rxBytes: rx,
  txBytes: tx,
  persistentKeepalive: 2,
  allowedIPs: [],
});
const T0 = 1_700_000_000_000;

describe('peer health', () => {
  it('up while the peer is heard every keepalive, stale after 1.5 K of silence, down after 2.5 K', () => {
    let o = observe(undefined, peer(100, 100, T0 / 1000), T0);
    expect(classify(o, 2, T0).state).toBe('up');
    o = observe(o, peer(100, 200, T0 / 1000), T0 + 2000);
    expect(classify(o, 2, T0 + 2000).state).toBe('up');
    expect(classify(o, 2, T0 + 3500).state).toBe('stale');
    expect(classify(o, 2, T0 + 5100).state).toBe('down');
    o = observe(o, peer(150, 200, T0 / 1000), T0 + 5200);
    expect(classify(o, 2, T0 + 5200).state).toBe('up');
  });

  it('a session older than 180 s is down even if bytes arrive', () => {
    const o = observe(undefined, peer(100, 100, T0 / 1000 - 200), T0);
    expect(classify(o, 2, T0).state).toBe('down');
  });

  it('never a handshake despite initiations: down and handshakeFailing, but only after the retries', () => {
    let o = observe(undefined, peer(0, 148, 0), T0);
    expect(classify(o, 1, T0 + 5000)).toMatchObject({ state: 'down', handshakeFailing: false });
    o = observe(o, peer(0, 444, 0), T0 + 11_000);
    expect(classify(o, 1, T0 + 11_000)).toMatchObject({
      state: 'down',
      handshakeFailing: true,
      handshakeAgeSec: null,
    });
    const idle = observe(undefined, peer(0, 0, 0), T0);
    expect(classify(idle, 1, T0 + 60_000).handshakeFailing).toBe(false);
  });
});
