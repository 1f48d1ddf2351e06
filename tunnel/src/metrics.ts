/** Per-peer tunnel metrics (FORMATS.md): labelled by peer cluster, never by key (keys rotate). */
import { Counter, Gauge, Registry } from 'prom-client';

export interface PeerSample {
  readonly cluster: string;
  readonly txBytes: number;
  readonly rxBytes: number;
  readonly lastHandshakeSec: number;
  readonly up: boolean;
}

export class TunnelMetrics {
  readonly registry: Registry;
  private readonly sent: Counter<'peer_cluster'>;
  private readonly received: Counter<'peer_cluster'>;
  private readonly handshake: Gauge<'peer_cluster'>;
  private readonly up: Gauge<'peer_cluster'>;
  /** Counters are cumulative across device restarts and epochs: we add deltas. */
  private readonly last = new Map<string, { tx: number; rx: number }>();

  constructor(registry = new Registry()) {
    this.registry = registry;
    const registers = [registry];
    this.sent = new Counter({
      name: 'wireguard_sent_bytes_total',
      help: 'Bytes sent to the peer cluster gateway.',
      labelNames: ['peer_cluster'],
      registers,
    });
    this.received = new Counter({
      name: 'wireguard_received_bytes_total',
      help: 'Bytes received from the peer cluster gateway.',
      labelNames: ['peer_cluster'],
      registers,
    });
    this.handshake = new Gauge({
      name: 'wireguard_latest_handshake_seconds',
      help: 'Unix time of the latest handshake with the peer cluster (0 = never).',
      labelNames: ['peer_cluster'],
      registers,
    });
    this.up = new Gauge({
      name: 'palisade_tunnel_peer_up',
      help: '1 when the tunnel to the peer cluster is up.',
      labelNames: ['peer_cluster'],
      registers,
    });
  }

  /** `deviceKey` identifies the counter source (iface + peer key) so a reset counter is not a negative delta. */
  record(deviceKey: string, s: PeerSample): void {
    const prev = this.last.get(deviceKey);
    const dtx = prev && s.txBytes >= prev.tx ? s.txBytes - prev.tx : s.txBytes;
    const drx = prev && s.rxBytes >= prev.rx ? s.rxBytes - prev.rx : s.rxBytes;
    this.last.set(deviceKey, { tx: s.txBytes, rx: s.rxBytes });
    const l = { peer_cluster: s.cluster };
    if (dtx > 0) this.sent.inc(l, dtx);
    if (drx > 0) this.received.inc(l, drx);
    this.handshake.set(l, s.lastHandshakeSec);
    this.up.set(l, s.up ? 1 : 0);
  }

  forget(cluster: string): void {
    const l = { peer_cluster: cluster };
    this.handshake.remove(l);
    this.up.remove(l);
  }
}
