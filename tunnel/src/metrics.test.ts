import { describe, expect, it } from 'vitest';
import { TunnelMetrics } from './metrics.js';

describe('tunnel metrics', () => {
  it('counters add deltas per source, survive a counter reset, and are labelled by cluster only', async () => {
    const m = new TunnelMetrics();
    m.record('wga/KEY0', {
      cluster: 'west',
      txBytes: 100,
      rxBytes: 50,
      lastHandshakeSec: 1700000000,
      up: true,
    });
    m.record('wga/KEY0', {
      cluster: 'west',
      txBytes: 160,
      rxBytes: 80,
      lastHandshakeSec: 1700000005,
      up: true,
    });
    // New epoch device: a fresh counter source starting from zero.
    m.record('wgb/KEY1', {
      cluster: 'west',
      txBytes: 40,
      rxBytes: 20,
      lastHandshakeSec: 1700000010,
      up: false,
    });
    const text = await m.registry.metrics();
    expect(text).toMatch(/^wireguard_sent_bytes_total\{peer_cluster="west"\} 200$/m);
    expect(text).toMatch(/^wireguard_received_bytes_total\{peer_cluster="west"\} 100$/m);
    expect(text).toMatch(/^wireguard_latest_handshake_seconds\{peer_cluster="west"\} 1700000010$/m);
    expect(text).toMatch(/^palisade_tunnel_peer_up\{peer_cluster="west"\} 0$/m);
    expect(text).not.toContain('KEY');
  });
});
