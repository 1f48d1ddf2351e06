/**
 * Peer health from what the device reports. Handshake age alone cannot say
 * "down within 3 keepalives": a healthy session rekeys only every 120 s. So
 * state comes from two clocks: when the peer was last heard from (rx_bytes
 * grew; a live peer with persistent keepalive K sends at least every K s) and
 * the latest handshake (a session older than 180 s is dead in WireGuard).
 *   up:    heard within 1.5 K and a handshake within 180 s
 *   stale: heard within 2.5 K
 *   down:  otherwise, or no handshake ever
 * A peer that never completes a handshake although we keep sending
 * initiations is flagged `handshakeFailing`: its key does not match the one
 * we have (or it is unreachable; the store's liveness tells the two apart).
 */
import type { PeerState } from './uapi-protocol.js';

export type PeerHealthState = 'up' | 'stale' | 'down';

export const REJECT_AFTER_TIME_SEC = 180;

export interface PeerObservation {
  /** ms clock of when we first saw this peer configured. */
  readonly firstSeenMs: number;
  /** ms clock of the latest rx_bytes increase (null: never). */
  readonly lastRxChangeMs: number | null;
  readonly rxBytes: number;
  readonly txBytes: number;
  readonly lastHandshakeSec: number;
}

export interface PeerHealth {
  readonly state: PeerHealthState;
  readonly handshakeFailing: boolean;
  readonly handshakeAgeSec: number | null;
  readonly silentForSec: number | null;
}

export function observe(
  prev: PeerObservation | undefined,
  p: PeerState,
  nowMs: number,
): PeerObservation {
  const grew =
    prev === undefined ? p.rxBytes > 0 && p.lastHandshakeSec > 0 : p.rxBytes > prev.rxBytes;
  return {
    firstSeenMs: prev?.firstSeenMs ?? nowMs,
    lastRxChangeMs: grew ? nowMs : (prev?.lastRxChangeMs ?? null),
    rxBytes: p.rxBytes,
    txBytes: p.txBytes,
    lastHandshakeSec: p.lastHandshakeSec,
  };
}

export function classify(o: PeerObservation, keepaliveSec: number, nowMs: number): PeerHealth {
  const k = Math.max(keepaliveSec, 1) * 1000;
  const handshakeAgeSec =
    o.lastHandshakeSec > 0 ? Math.max(0, nowMs / 1000 - o.lastHandshakeSec) : null;
  const silentMs = o.lastRxChangeMs === null ? null : nowMs - o.lastRxChangeMs;
  // Initiations are retried every 5 s (REKEY_TIMEOUT): after two retries and 3 K, it is not a blip.
  const handshakeFailing =
    o.lastHandshakeSec === 0 && o.txBytes > 0 && nowMs - o.firstSeenMs > Math.max(3 * k, 10_000);
  let state: PeerHealthState;
  if (handshakeAgeSec === null || handshakeAgeSec > REJECT_AFTER_TIME_SEC || silentMs === null)
    state = 'down';
  else if (silentMs <= 1.5 * k) state = 'up';
  else if (silentMs <= 2.5 * k) state = 'stale';
  else state = 'down';
  return {
    state,
    handshakeFailing,
    handshakeAgeSec,
    silentForSec: silentMs === null ? null : silentMs / 1000,
  };
}
