/**
 * The `datapath` engine: answers probes by running the real BPF programs on
 * crafted packets with BPF_PROG_TEST_RUN. The compiled tables are loaded
 * into a private (unpinned) copy of the maps; for each probe the source
 * pod's endpoint entry is written under the test device's ifindex and
 * from_pod runs, then the destination pod's entry and to_pod runs, on the
 * same first packet of the connection.
 *
 * The test device is loopback (ifindex 1), which exists in every network
 * namespace: test_run needs a real device for the ctx ifindex, and the
 * program only uses the ifindex as the endpoints key, so rewriting that one
 * entry per probe is equivalent to one device per pod without creating any
 * interface (docs/datapath.md, "test_run").
 */
import { isIPv4, isIPv6 } from 'node:net';

import type { CompiledMeta } from '../../../policy-compiler/src/compile/compile.js';
import type { CompiledEndpoint, EncodedTables } from '../../../policy-compiler/src/compiled.js';
import type {
  Decision,
  DirectionVerdict,
  Probe,
  ProbeVerdict,
  Verdict,
} from '../../../policy-compiler/src/engine.js';
import {
  parseEndpointId,
  type Endpoint,
  type EndpointId,
} from '../../../policy-compiler/src/model/endpoint.js';
import type { PalEvent } from '../flows/event-decode.js';
import { Datapath, type DatapathSizes } from './datapath.js';
import { frame } from './packets.js';
import {
  EP_F_POLICY_READY,
  IPPROTO,
  SKB_MARK_TUNNELED,
  ctKey,
  endpointKey,
  endpointValue,
} from './structs.js';

const TEST_IFINDEX = 1;
const PROTO_NUMBER = { TCP: IPPROTO.TCP, UDP: IPPROTO.UDP, SCTP: IPPROTO.SCTP } as const;

/** Small maps: the engine holds one world at a time and tracks one probe at a time. */
const ENGINE_SIZES: DatapathSizes = { conntrack: 1024, endpoints: 16 };

export class DatapathEngineError extends Error {
  override readonly name = 'DatapathEngineError';
}

/** What one hook decided, read from its event (cookie and staged fields). */
export interface HookResult {
  readonly verdict: Verdict;
  readonly cookie: number;
  readonly staged: 'NONE' | 'DENY' | 'ALLOW';
  readonly stagedCookie: number;
  readonly dropReason: string;
}

export interface EndpointAddrs {
  readonly v4: string | null;
  readonly v6: string | null;
}

/** Loads compiled tables into private maps and runs the real programs per probe. */
export class DatapathProber {
  private byId = new Map<EndpointId, CompiledEndpoint>();
  private encoded: EncodedTables | undefined;
  private meta: CompiledMeta | undefined;
  private tableSet = new Set<number>();
  private readonly events: PalEvent[] = [];
  private sport = 32768;

  private constructor(private readonly dp: Datapath) {
    dp.onEvent((e) => this.events.push(e));
  }

  /** Opens private maps (nothing pinned, nothing attached). */
  static open(opts: { objectPath?: string; sizes?: DatapathSizes } = {}): DatapathProber {
    const dp = Datapath.open({
      pinDir: null,
      objectPath: opts.objectPath,
      sizes: { ...ENGINE_SIZES, ...(opts.sizes ?? {}) },
      denyEventsPerSec: 0, // every verdict must come with its event
      auditEvents: true,
      inPlaceTables: true, // no traffic here: skip the RCU wait of table swaps
    });
    return new DatapathProber(dp);
  }

  /**
   * Loads one compiled world (replacing the previous one). `meta` gives
   * endpoint addresses and the NetworkPolicies named by default decisions;
   * without it addresses come from the Endpoint objects passed to probe().
   */
  load(encoded: EncodedTables, meta?: CompiledMeta): void {
    this.dp.applyFull(encoded, () => undefined); // endpoints are written per probe
    this.encoded = encoded;
    this.meta = meta;
    this.byId = new Map(encoded.endpoints.map((e) => [e.endpoint, e]));
    this.tableSet = new Set(encoded.tables.map((t) => t.table));
  }

  /** Addresses of an endpoint id: the compiled world's (hostNetwork pods use their node's) or the external IP. */
  addressesOf(id: EndpointId): EndpointAddrs {
    const parsed = parseEndpointId(id);
    if ('error' in parsed) throw new DatapathEngineError(parsed.error);
    if (parsed.kind === 'external') {
      return { v4: isIPv4(parsed.ip) ? parsed.ip : null, v6: isIPv6(parsed.ip) ? parsed.ip : null };
    }
    const a = this.meta?.endpoints.get(id);
    if (!a)
      throw new DatapathEngineError(`unknown ${parsed.kind} "${id}": not in the compiled world`);
    return { v4: a.v4, v6: a.v6 };
  }

  /** One probe; addresses from the compiled metadata (load with meta) unless given. */
  probe(probe: Probe, addrs?: { from: EndpointAddrs; to: EndpointAddrs }): ProbeVerdict {
    if (!PROTO_NUMBER[probe.protocol])
      throw new DatapathEngineError(`bad protocol "${String(probe.protocol)}"`);
    if (!Number.isInteger(probe.port) || probe.port < 1 || probe.port > 65535) {
      throw new DatapathEngineError(`bad port ${String(probe.port)} (allowed: 1..65535)`);
    }
    if (probe.from === probe.to)
      throw new DatapathEngineError(`from and to are the same endpoint "${probe.from}"`);
    const a = addrs?.from ?? this.addressesOf(probe.from);
    const b = addrs?.to ?? this.addressesOf(probe.to);
    const pair =
      a.v4 !== null && b.v4 !== null
        ? [a.v4, b.v4]
        : a.v6 !== null && b.v6 !== null
          ? [a.v6, b.v6]
          : null;
    if (!pair)
      throw new DatapathEngineError(`"${probe.from}" and "${probe.to}" share no IP family`);
    const [fromIp, toIp] = pair as [string, string];
    const egress = this.direction('egress', probe.from, probe, fromIp, toIp);
    const ingress = this.direction('ingress', probe.to, probe, fromIp, toIp);
    return {
      probe: { from: probe.from, to: probe.to, protocol: probe.protocol, port: probe.port },
      verdict: egress.verdict === 'Allow' && ingress.verdict === 'Allow' ? 'Allow' : 'Deny',
      egress,
      ingress,
    };
  }

  /** Runs one hook of one endpoint on the probe's first packet; null when the endpoint has no datapath entry. */
  runHook(
    direction: 'egress' | 'ingress',
    ep: CompiledEndpoint,
    probe: Probe,
    fromIp: string,
    toIp: string,
  ): HookResult {
    this.dp.map('endpoints').update(
      endpointKey(TEST_IFINDEX),
      endpointValue({
        identity: ep.identity,
        egressTable: ep.egressTable,
        ingressTable: ep.ingressTable,
        flags: ep.flags,
        nodeId: ep.nodeId,
      }),
    );
    const protocol = PROTO_NUMBER[probe.protocol];
    const sport = this.nextPort();
    const pkt = frame({ src: fromIp, dst: toIp, protocol, sport, dport: probe.port });
    this.dp.drainEvents();
    this.events.length = 0;
    // probes count as arriving through the tunnel: encryption is enforced
    // on real traffic, it is not part of a verdict
    const r = this.dp.testRun(direction, pkt, { ifindex: TEST_IFINDEX, mark: SKB_MARK_TUNNELED });
    this.dp.drainEvents();
    // the connection must not leak into the next probe
    this.dp.map('conntrack').delete(ctKey(fromIp, toIp, sport, probe.port, protocol, direction));
    const dirName = direction === 'egress' ? 'EGRESS' : 'INGRESS';
    const ev = this.events.find(
      (e) => (e.type === 'DENY' || e.type === 'NEW_ALLOWED') && e.direction === dirName,
    );
    if (!ev)
      throw new DatapathEngineError(`no event for ${direction} of ${probe.from} -> ${probe.to}`);
    if ((ev.type === 'NEW_ALLOWED') !== r.allowed) {
      throw new DatapathEngineError(`event ${ev.type} contradicts return code ${r.retval}`);
    }
    return {
      verdict: r.allowed ? 'Allow' : 'Deny',
      cookie: ev.cookie,
      staged: ev.stagedVerdict,
      stagedCookie: ev.stagedCookie,
      dropReason: ev.dropReason,
    };
  }

  close(): void {
    this.dp.close();
  }

  private direction(
    direction: 'egress' | 'ingress',
    id: EndpointId,
    probe: Probe,
    fromIp: string,
    toIp: string,
  ): DirectionVerdict {
    const ep = this.byId.get(id);
    if (!ep) {
      // not a pod this datapath enforces (node, external, other cluster): nothing applies
      return {
        verdict: 'Allow',
        decidedBy: { kind: 'default', verdict: 'Allow', isolatedBy: [] },
        staged: null,
      };
    }
    const h = this.runHook(direction, ep, probe, fromIp, toIp);
    const table = direction === 'egress' ? ep.egressTable : ep.ingressTable;
    // fail closed (endpoint not ready, table absent) names no isolating policy
    const failClosed = (ep.flags & EP_F_POLICY_READY) === 0 || !this.tableSet.has(table);
    const decide = (cookie: number, verdict: Verdict): Decision =>
      this.decision(cookie, verdict, failClosed ? -1 : table);
    const staged =
      h.staged === 'NONE'
        ? null
        : (() => {
            const v: Verdict = h.staged === 'ALLOW' ? 'Allow' : 'Deny';
            return { verdict: v, decidedBy: decide(h.stagedCookie, v) };
          })();
    return { verdict: h.verdict, decidedBy: decide(h.cookie, h.verdict), staged };
  }

  /** A cookie names its rule; cookie 0 is the table's default (naming the NetworkPolicies that isolate it). */
  private decision(cookie: number, verdict: Verdict, table: number): Decision {
    if (cookie === 0) {
      return {
        kind: 'default',
        verdict,
        isolatedBy: this.meta?.tables.get(table)?.isolatedBy ?? [],
      };
    }
    const rule = this.encoded?.cookies.get(cookie);
    if (!rule) throw new DatapathEngineError(`cookie ${cookie} is not in the cookie registry`);
    const action =
      rule.kind === 'NetworkPolicy' ? 'Allow' : verdict === 'Allow' ? 'Accept' : 'Deny';
    return { kind: 'rule', rule, action };
  }

  private nextPort(): number {
    this.sport = this.sport >= 60999 ? 32768 : this.sport + 1;
    return this.sport;
  }
}

/** First IPv4 and first IPv6 address of an endpoint object. */
export function addressesOf(ep: Endpoint): EndpointAddrs {
  const ips = ep.kind === 'pod' ? ep.pod.ips : ep.kind === 'node' ? ep.node.ips : [ep.ip];
  return { v4: ips.find((ip) => isIPv4(ip)) ?? null, v6: ips.find((ip) => isIPv6(ip)) ?? null };
}

export interface DatapathMatrixRequest {
  readonly encoded: EncodedTables;
  readonly meta?: CompiledMeta;
  /** matrix endpoints in output order (pods, nodes, externals) */
  readonly endpoints: readonly Endpoint[];
  readonly ports: readonly { readonly protocol: Probe['protocol']; readonly port: number }[];
}

/**
 * Every ordered pair (from != to) sharing an IP family × every port, in the
 * order of `endpoints` and `ports` (the reference engine's order).
 */
export function datapathMatrix(
  req: DatapathMatrixRequest,
  prober?: DatapathProber,
): ProbeVerdict[] {
  const own = prober === undefined;
  const p = prober ?? DatapathProber.open();
  try {
    p.load(req.encoded, req.meta);
    const addrs = new Map(
      req.endpoints.map((e) => [
        e.id,
        req.meta && e.kind !== 'external' ? p.addressesOf(e.id) : addressesOf(e),
      ]),
    );
    const out: ProbeVerdict[] = [];
    for (const from of req.endpoints) {
      for (const to of req.endpoints) {
        if (from.id === to.id) continue;
        const a = addrs.get(from.id)!;
        const b = addrs.get(to.id)!;
        if (!((a.v4 !== null && b.v4 !== null) || (a.v6 !== null && b.v6 !== null))) continue;
        for (const { protocol, port } of req.ports) {
          out.push(p.probe({ from: from.id, to: to.id, protocol, port }, { from: a, to: b }));
        }
      }
    }
    return out;
  } finally {
    if (own) p.close();
  }
}
