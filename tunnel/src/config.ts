/**
 * The gateway config file (YAML or JSON) read by `palisade tunnel up|down|
 * status|rotate --config FILE`. Format (docs/tunnel.md):
 *   cluster:        the Cluster: name, labels, podCIDRs, serviceCIDRs, nodeCIDRs, gateway.endpoint
 *   netns:          network namespace the gateway runs in
 *   ifaceBase:      device name prefix (<= 14 chars; devices are <ifaceBase>a / <ifaceBase>b)
 *   etcd:           list of etcd endpoints (http://host:port)
 *   keyDir, stateDir
 *   underlayMtu (1500), mtu (computed), keepaliveSec (25), leaseTtlSec (30),
 *   rotateEverySec (0 = on demand only), addresses ([])
 * Errors name the file and the field path and say what is allowed.
 */
import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';
import { parsePrefix } from './cidr.js';
import type { GatewayConfig } from './gateway.js';
import { checkClusterName } from './cluster-name.js';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Obj = Record<string, unknown>;

const KNOWN = new Set([
  'cluster',
  'netns',
  'ifaceBase',
  'etcd',
  'keyDir',
  'stateDir',
  'underlayMtu',
  'mtu',
  'keepaliveSec',
  'leaseTtlSec',
  'rotateEverySec',
  'addresses',
  'callTimeoutMs',
]);
const CLUSTER_KNOWN = new Set([
  'name',
  'labels',
  'podCIDRs',
  'serviceCIDRs',
  'nodeCIDRs',
  'gateway',
]);

export function parseGatewayConfig(text: string, file: string): GatewayConfig {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (e) {
    throw new ConfigError(`${file}: not valid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  const fail = (path: string, what: string): never => {
    throw new ConfigError(`${file}: ${path}: ${what}`);
  };
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    fail('(root)', 'must be a mapping');
  const d = doc as Obj;
  for (const k of Object.keys(d))
    if (!KNOWN.has(k)) fail(k, `unknown field (allowed: ${[...KNOWN].join(', ')})`);
  const str = (o: Obj, k: string, path: string): string => {
    const v = o[k];
    if (typeof v !== 'string' || v === '') fail(path, 'required, a non-empty string');
    return v as string;
  };
  const int = (
    o: Obj,
    k: string,
    path: string,
    dflt: number | undefined,
    min: number,
    max: number,
  ): number | undefined => {
    const v = o[k];
    if (v === undefined) return dflt;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
      fail(path, `an integer from ${min} to ${max}`);
    return v as number;
  };
  const cidrs = (o: Obj, k: string, path: string): string[] => {
    const v = o[k] ?? [];
    if (!Array.isArray(v)) fail(path, 'a list of CIDRs');
    return (v as unknown[]).map((x, i) => {
      if (typeof x !== 'string') fail(`${path}[${i}]`, 'a CIDR string');
      try {
        return parsePrefix(x as string).text;
      } catch (e) {
        return fail(`${path}[${i}]`, (e as Error).message);
      }
    });
  };
  const c = d['cluster'];
  if (typeof c !== 'object' || c === null || Array.isArray(c))
    fail(
      'cluster',
      'required, a mapping (name, podCIDRs, serviceCIDRs, nodeCIDRs, gateway.endpoint)',
    );
  const co = c as Obj;
  for (const k of Object.keys(co))
    if (!CLUSTER_KNOWN.has(k))
      fail(`cluster.${k}`, `unknown field (allowed: ${[...CLUSTER_KNOWN].join(', ')})`);
  const name = str(co, 'name', 'cluster.name');
  try {
    checkClusterName(name);
  } catch (e) {
    fail('cluster.name', (e as Error).message);
  }
  const labels = (co['labels'] ?? {}) as Obj;
  if (
    typeof labels !== 'object' ||
    Array.isArray(labels) ||
    Object.values(labels).some((v) => typeof v !== 'string')
  )
    fail('cluster.labels', 'a mapping of strings');
  const gw = co['gateway'] as Obj | undefined;
  if (typeof gw !== 'object' || gw === null)
    fail('cluster.gateway', 'required: {endpoint: address:port}');
  const endpoint = str(gw as Obj, 'endpoint', 'cluster.gateway.endpoint');
  if (!/^(?:\[[0-9a-fA-F:.]+\]|\d+\.\d+\.\d+\.\d+):\d{1,5}$/.test(endpoint))
    fail('cluster.gateway.endpoint', 'address:port (IPv6 as [addr]:port)');
  const etcd = d['etcd'];
  if (
    !Array.isArray(etcd) ||
    etcd.length === 0 ||
    etcd.some((e) => typeof e !== 'string' || !/^https?:\/\/[^/]+$/.test(e))
  )
    fail('etcd', 'required, a list of endpoints like http://127.0.0.1:2379');
  const addresses = d['addresses'] === undefined ? [] : (d['addresses'] as unknown[]);
  if (!Array.isArray(addresses)) fail('addresses', 'a list of address/len');
  const addrs = addresses.map((a, i) => {
    if (typeof a !== 'string') fail(`addresses[${i}]`, 'address/len');
    try {
      parsePrefix(a as string, true);
    } catch (e) {
      fail(`addresses[${i}]`, (e as Error).message);
    }
    return a as string;
  });
  const ifaceBase = str(d, 'ifaceBase', 'ifaceBase');
  if (!/^[A-Za-z0-9_.-]{1,14}$/.test(ifaceBase))
    fail('ifaceBase', '1-14 characters of letters, digits, _ . -');
  const mtu = int(d, 'mtu', 'mtu', undefined, 1280, 65535);
  const rotateEverySec = int(
    d,
    'rotateEverySec',
    'rotateEverySec',
    0,
    0,
    10 * 365 * 86400,
  ) as number;
  const callTimeoutMs = int(d, 'callTimeoutMs', 'callTimeoutMs', undefined, 100, 60_000);
  return {
    cluster: {
      name,
      labels: labels as Record<string, string>,
      podCIDRs: cidrs(co, 'podCIDRs', 'cluster.podCIDRs'),
      serviceCIDRs: cidrs(co, 'serviceCIDRs', 'cluster.serviceCIDRs'),
      nodeCIDRs: cidrs(co, 'nodeCIDRs', 'cluster.nodeCIDRs'),
      gateway: { endpoint },
    },
    netns: str(d, 'netns', 'netns'),
    ifaceBase,
    etcdEndpoints: etcd as string[],
    keyDir: str(d, 'keyDir', 'keyDir'),
    stateDir: str(d, 'stateDir', 'stateDir'),
    underlayMtu: int(d, 'underlayMtu', 'underlayMtu', 1500, 1280, 65535) as number,
    ...(mtu !== undefined ? { mtu } : {}),
    keepaliveSec: int(d, 'keepaliveSec', 'keepaliveSec', 25, 1, 65535) as number,
    leaseTtlSec: int(d, 'leaseTtlSec', 'leaseTtlSec', 30, 2, 3600) as number,
    rotateEverySec,
    addresses: addrs,
    ...(callTimeoutMs !== undefined ? { callTimeoutMs } : {}),
  };
}

export async function loadGatewayConfig(file: string): Promise<GatewayConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  return parseGatewayConfig(text, file);
}
