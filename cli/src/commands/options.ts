/** Flags several commands share, spelled the kubectl way. */
import { Option } from 'commander';
import type { World } from '../../../policy-compiler/src/index.js';
import { collectExternal, collectPort, distinctPorts, type PortSpec } from '../args.js';

export const filenameOption = (what = 'world'): Option =>
  new Option(
    '-f, --filename <paths...>',
    `${what} files or directories of YAML (repeatable; '-' reads standard input)`,
  ).makeOptionMandatory(true);

export const portOption = (): Option =>
  new Option(
    '--port <proto/n>',
    'port to probe, e.g. tcp/80, udp/53, sctp/9000 (repeatable; default: every container port in the world)',
  ).argParser(collectPort);

export const externalOption = (): Option =>
  new Option('--external <ip>', 'also probe this IP as endpoint ip:<addr> (repeatable)').argParser(
    collectExternal,
  );

export const outputOption = (choices: readonly string[], fallback: string): Option =>
  new Option('-o, --output <format>', 'output format').choices(choices).default(fallback);

const PROTOCOL_ORDER = { TCP: 0, UDP: 1, SCTP: 2 } as const;

/** The distinct container ports of the world's pods, by protocol then number. */
export function defaultPorts(...worlds: readonly World[]): PortSpec[] {
  const all = worlds.flatMap((w) =>
    w.pods.flatMap((p) => p.ports.map((c) => ({ protocol: c.protocol, port: c.containerPort }))),
  );
  return distinctPorts(all).sort(
    (a, b) => PROTOCOL_ORDER[a.protocol] - PROTOCOL_ORDER[b.protocol] || a.port - b.port,
  );
}

/** Ports given with --port, else the world's container ports. */
export function portsOrDefault(
  given: readonly PortSpec[] | undefined,
  ...worlds: World[]
): PortSpec[] {
  return given !== undefined && given.length > 0 ? distinctPorts(given) : defaultPorts(...worlds);
}
