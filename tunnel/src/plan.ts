/**
 * The desired state of one gateway, computed from the mesh (pure: no I/O,
 * no clock). Members in, devices/peers/AllowedIPs/routes/MTU out; gateway.ts
 * only reconciles the host to it, and diff.ts says which UAPI and route
 * changes get there.
 *
 * Devices are per key epoch: the mesh rotates keys together (docs/tunnel.md,
 * "Rotation"), and during a handover a gateway runs the old epoch's device
 * and the new one side by side, each with its own listen port, so every
 * packet in flight is still accepted while routes move one peer at a time.
 */
import { isIPv6 } from 'node:net';
import { admitClusters, type Admission, type ClusterRanges } from './cidr-conflicts.js';
import { pairPresharedKey, type PublicKey } from './keys.js';
import type { Secret } from './secret.js';

export interface GatewayKey {
  readonly epoch: number;
  readonly publicKey: PublicKey;
  readonly port: number;
}

/** What one cluster publishes in the mesh store. */
export interface Member extends ClusterRanges {
  readonly labels: Readonly<Record<string, string>>;
  /** Underlay address of the gateway (host part of Cluster.gateway.endpoint). */
  readonly endpointHost: string;
  /** Keys (one per live device), newest last. */
  readonly keys: readonly GatewayKey[];
  /** The epoch every route of this gateway uses (it no longer sends on older devices). */
  readonly routesEpoch: number;
  /** Join order (etcd create revision of its record). */
  readonly joinRevision: number;
}

export interface OwnKey {
  readonly epoch: number;
  readonly privateKey: Secret<string>;
  readonly publicKey: PublicKey;
}

export interface PlanOptions {
  readonly ifaceBase: string;
  readonly basePort: number;
  readonly keepaliveSec: number;
  readonly underlayMtu: number;
  /** Overrides the computed MTU. */
  readonly mtu?: number;
  /** Addresses put on the devices (optional, CIDR). */
  readonly addresses?: readonly string[];
}

export interface PlanInput {
  readonly local: string;
  readonly localEndpointHost: string;
  readonly meshEpoch: number;
  readonly members: readonly Member[];
  readonly ownKeys: readonly OwnKey[];
  /** Observed: per epoch, peer clusters whose device of that epoch has completed a handshake with us. */
  readonly handshaken: ReadonlyMap<number, ReadonlySet<string>>;
  readonly options: PlanOptions;
}

export interface PeerPlan {
  readonly cluster: string;
  readonly publicKey: PublicKey;
  readonly presharedKey: Secret<string>;
  readonly endpoint: string;
  readonly allowedIPs: readonly string[];
  readonly keepaliveSec: number;
}

export interface DevicePlan {
  readonly epoch: number;
  readonly iface: string;
  readonly listenPort: number;
  readonly mtu: number;
  readonly privateKey: Secret<string>;
  readonly publicKey: PublicKey;
  readonly addresses: readonly string[];
  readonly peers: readonly PeerPlan[];
}

export interface RoutePlan {
  readonly dst: string;
  readonly iface: string;
  readonly cluster: string;
}

export interface GatewayPlan {
  readonly devices: readonly DevicePlan[];
  readonly routes: readonly RoutePlan[];
  readonly admission: Admission;
  /** False when this cluster itself is refused (its ranges overlap an earlier member). */
  readonly selfAdmitted: boolean;
  /** What to publish as our routesEpoch. */
  readonly routesEpoch: number;
}

/** Device name and port of an epoch: two alternating slots. */
export function epochSlot(
  o: Pick<PlanOptions, 'ifaceBase' | 'basePort'>,
  epoch: number,
): { iface: string; port: number } {
  const odd = epoch % 2 === 1;
  return { iface: `${o.ifaceBase}${odd ? 'b' : 'a'}`, port: o.basePort + (odd ? 1 : 0) };
}

/** Underlay MTU minus WireGuard's overhead: 60 bytes over IPv4, 80 over IPv6. */
export function tunnelMtu(underlayMtu: number, underlayHost: string): number {
  return underlayMtu - (isIPv6(underlayHost.replace(/^\[|\]$/g, '')) ? 80 : 60);
}

export function endpointOf(host: string, port: number): string {
  return isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Pod and service ranges are routed through the tunnel; node ranges are not (the underlay reaches them). */
export function routedCIDRs(m: ClusterRanges): string[] {
  return [...m.podCIDRs, ...m.serviceCIDRs];
}

export function planGateway(input: PlanInput): GatewayPlan {
  const { local, meshEpoch, options } = input;
  const ordered = [...input.members].sort(
    (a, b) => a.joinRevision - b.joinRevision || a.name.localeCompare(b.name),
  );
  const admission = admitClusters(ordered);
  const admitted = new Set(admission.admitted);
  const selfAdmitted = admitted.has(local);
  const peers = selfAdmitted
    ? ordered
        .filter((m) => m.name !== local && admitted.has(m.name))
        .sort((a, b) => a.name.localeCompare(b.name))
    : [];
  const mtu = options.mtu ?? tunnelMtu(options.underlayMtu, input.localEndpointHost);

  // Live epochs: the mesh's, and the previous one while anybody still needs it.
  const ownByEpoch = new Map(input.ownKeys.map((k) => [k.epoch, k]));
  const current = ownByEpoch.get(meshEpoch);
  const previous = ownByEpoch.get(meshEpoch - 1);
  const keyOf = (m: Member, epoch: number): GatewayKey | undefined =>
    m.keys.find((k) => k.epoch === epoch);
  const hs = (epoch: number, cluster: string): boolean =>
    input.handshaken.get(epoch)?.has(cluster) ?? false;

  const routeEpoch = new Map<string, number>();
  for (const m of peers) {
    if (
      current &&
      keyOf(m, meshEpoch) &&
      (hs(meshEpoch, m.name) || !previous || !keyOf(m, meshEpoch - 1))
    ) {
      routeEpoch.set(m.name, meshEpoch);
    } else if (previous && keyOf(m, meshEpoch - 1)) {
      routeEpoch.set(m.name, meshEpoch - 1);
    } else if (current && keyOf(m, meshEpoch)) {
      routeEpoch.set(m.name, meshEpoch);
    }
  }
  const usesPrevious = [...routeEpoch.values()].some((e) => e === meshEpoch - 1);
  const previousNeeded =
    previous !== undefined &&
    (usesPrevious ||
      peers.some((m) => keyOf(m, meshEpoch - 1) !== undefined && m.routesEpoch < meshEpoch));

  const device = (own: OwnKey): DevicePlan => {
    const slot = epochSlot(options, own.epoch);
    return {
      epoch: own.epoch,
      iface: slot.iface,
      listenPort: slot.port,
      mtu,
      privateKey: own.privateKey,
      publicKey: own.publicKey,
      addresses: options.addresses ?? [],
      peers: peers.flatMap((m): PeerPlan[] => {
        const k = keyOf(m, own.epoch);
        if (!k) return [];
        return [
          {
            cluster: m.name,
            publicKey: k.publicKey,
            presharedKey: pairPresharedKey(own.privateKey, k.publicKey),
            endpoint: endpointOf(m.endpointHost, k.port),
            allowedIPs: routedCIDRs(m),
            keepaliveSec: options.keepaliveSec,
          },
        ];
      }),
    };
  };
  const devices: DevicePlan[] = [];
  if (previousNeeded && previous) devices.push(device(previous));
  if (current) devices.push(device(current));

  const routes: RoutePlan[] = peers.flatMap((m) => {
    const e = routeEpoch.get(m.name);
    if (e === undefined) return [];
    const iface = epochSlot(options, e).iface;
    return routedCIDRs(m).map((dst) => ({ dst, iface, cluster: m.name }));
  });
  const routesEpoch = usesPrevious ? meshEpoch - 1 : meshEpoch;
  return { devices, routes, admission, selfAdmitted, routesEpoch };
}
