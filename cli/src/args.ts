/**
 * Parsers for flag values. Each throws a commander InvalidArgumentError with
 * what is allowed, so a bad value is a usage error (exit 2) that names the flag.
 */
import { InvalidArgumentError } from 'commander';
import { isIP } from 'node:net';
import { PROTOCOLS, type Protocol } from '../../policy-compiler/src/index.js';

export interface PortSpec {
  readonly protocol: Protocol;
  readonly port: number;
}

/** `tcp/80`, `UDP/53`, `sctp/9000`, or a bare `80` (TCP). */
export function parsePortSpec(text: string): PortSpec {
  const m = /^(?:([A-Za-z]+)\/)?(\d{1,5})$/.exec(text.trim());
  const allowed = 'allowed: PROTO/N with PROTO tcp|udp|sctp and N 1..65535, e.g. tcp/80';
  if (m === null) throw new InvalidArgumentError(`"${text}" is not a port (${allowed}).`);
  const protocol = (m[1] ?? 'TCP').toUpperCase();
  if (!(PROTOCOLS as readonly string[]).includes(protocol)) {
    throw new InvalidArgumentError(`unknown protocol "${m[1]}" (${allowed}).`);
  }
  const port = Number(m[2]);
  if (port < 1 || port > 65535) {
    throw new InvalidArgumentError(`port ${port} out of range (${allowed}).`);
  }
  return { protocol: protocol as Protocol, port };
}

export function collectPort(text: string, previous: PortSpec[] = []): PortSpec[] {
  return [...previous, parsePortSpec(text)];
}

/** An IP address for --external (with or without the `ip:` prefix). */
export function collectExternal(text: string, previous: string[] = []): string[] {
  const ip = text.startsWith('ip:') ? text.slice(3) : text;
  if (isIP(ip) === 0) {
    throw new InvalidArgumentError(`"${text}" is not an IPv4 or IPv6 address.`);
  }
  return [...previous, ip];
}

export const formatPort = (p: PortSpec): string => `${p.protocol}/${p.port}`;

/** Distinct ports in first-seen order. */
export function distinctPorts(ports: readonly PortSpec[]): PortSpec[] {
  const seen = new Set<string>();
  const out: PortSpec[] = [];
  for (const p of ports) {
    const key = formatPort(p);
    if (!seen.has(key)) {
      seen.add(key);
      out.push(p);
    }
  }
  return out;
}
