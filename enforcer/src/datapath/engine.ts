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
import type { EncodedTables, CompiledEndpoint } from '../../../policy-compiler/src/compiled.js';
import type {
  Decision,
  DirectionVerdict,
  Probe,
  ProbeVerdict,
  RuleRef,
  Verdict,
} from '../../../policy-compiler/src/engine.js';
import type { Endpoint, EndpointId } from '../../../policy-compiler/src/model/endpoint.js';
import { isIPv4, isIPv6 } from 'node:net';

import type { PalEvent } from '../flows/event-decode.js';
import { Datapath, type DatapathSizes } from './datapath.js';
import { frame } from './packets.js';
import { IPPROTO, SKB_MARK_TUNNELED, ctKey, endpointKey, endpointValue } from './structs.js';

const TEST_IFINDEX = 1;
const PROTO_NUMBER = { TCP: IPPROTO.TCP, UDP: IPPROTO.UDP, SCTP: IPPROTO.SCTP } as const;

/** What one hook decided, read from its event (cookie and staged fields). */
export interface HookResult {
  readonly verdict: Verdict;
  readonly cookie: number;
  readonly staged: 'NONE' | 'DENY' | 'ALLOW';
  readonly stagedCookie: number;
}

/** Maps a cookie and verdict to the engine contract's Decision. */
export type DecisionOf = (
  cookie: number,
  verdict: Verdict,
  cookies: ReadonlyMap<number, RuleRef>,
) => Decision;

/**
 * Default mapping: a cookie names its rule; cookie 0 is the default verdict
 * (which NetworkPolicies isolated the pod is not in the tables, so
 * isolatedBy stays empty unless the compiler's own mapping is supplied).
 */
export const defaultDecisionOf: DecisionOf = (cookie, verdict, cookies) => {
  const rule = cookie === 0 ? undefined : cookies.get(cookie);
  if (!rule) return { kind: 'default', verdict, isolatedBy: [] };
  const action = verdict === 'Deny' ? 'Deny' : rule.kind === 'NetworkPolicy' ? 'Allow' : 'Accept';
  return { kind: 'rule', rule, action };
};

export interface ProberOptions {
  readonly objectPath?: string;
  readonly sizes?: DatapathSizes;
  readonly decisionOf?: DecisionOf;
}

/** Loads compiled tables into private maps and runs the real programs per probe. */
export class DatapathProber {
  private readonly byId = new Map<EndpointId, CompiledEndpoint>();
  private readonly events: PalEvent[] = [];
  private sport = 32768;

  private constructor(
    private readonly dp: Datapath,
    private readonly encoded: EncodedTables,
    private readonly decisionOf: DecisionOf,
  ) {
    for (const ep of encoded.endpoints) this.byId.set(ep.endpoint, ep);
    dp.onEvent((e) => this.events.push(e));
  }

  static open(encoded: EncodedTables, opts: ProberOptions = {}): DatapathProber {
    const dp = Datapath.open({
      pinDir: null,
      objectPath: opts.objectPath,
      sizes: opts.sizes,
      denyEventsPerSec: 0, // every verdict must come with its event
      auditEvents: true,
    });
    try {
      dp.applyFull(encoded, () => undefined); // endpoints are written per probe
    } catch (e) {
      dp.close();
      throw e;
    }
    return new DatapathProber(dp, encoded, opts.decisionOf ?? defaultDecisionOf);
  }

  /** Raw result of one hook; null when the endpoint is not a pod with a datapath entry. */
  runHook(
    direction: 'egress' | 'ingress',
    endpoint: EndpointId,
    probe: Probe,
    fromIp: string,
    toIp: string,
  ): HookResult | null {
    const ep = this.byId.get(endpoint);
    if (!ep) return null;
    this.dp
      .map('endpoints')
      .update(
        endpointKey(TEST_IFINDEX),
        endpointValue({
          identity: ep.identity,
          egressTable: ep.egressTable,
          ingressTable: ep.ingressTable,
          flags: ep.flags,
        }),
      );
    const protocol = PROTO_NUMBER[probe.protocol];
    const sport = this.nextPort();
    const pkt = frame({ src: fromIp, dst: toIp, protocol, sport, dport: probe.port });
    this.dp.drainEvents();
    this.events.length = 0;
    // every probe is treated as arriving through the tunnel: encryption is
    // not part of a verdict (it is enforced on real traffic only)
    const r = this.dp.testRun(direction, pkt, { ifindex: TEST_IFINDEX, mark: SKB_MARK_TUNNELED });
    this.dp.drainEvents();
    // the connection must not leak into the next probe
    this.dp.map('conntrack').delete(ctKey(fromIp, toIp, sport, probe.port, protocol, direction));
    const ev = this.events.find(
      (e) =>
        (e.type === 'DENY' || e.type === 'NEW_ALLOWED') &&
        e.direction === (direction === 'egress' ? 'EGRESS' : 'INGRESS'),
    );
    if (!ev)
      throw new Error(`datapath engine: no event for ${direction} of ${probe.from} -> ${probe.to}`);
    const verdict: Verdict = r.allowed ? 'Allow' : 'Deny';
    if ((ev.type === 'NEW_ALLOWED') !== r.allowed) {
      throw new Error(`datapath engine: event ${ev.type} contradicts return code ${r.retval}`);
    }
    return { verdict, cookie: ev.cookie, staged: ev.stagedVerdict, stagedCookie: ev.stagedCookie };
  }

  /** One probe through from_pod of the source and to_pod of the destination. */
  probe(probe: Probe, fromIp: string, toIp: string): ProbeVerdict {
    const egress = this.direction(this.runHook('egress', probe.from, probe, fromIp, toIp));
    const ingress = this.direction(this.runHook('ingress', probe.to, probe, fromIp, toIp));
    return {
      probe,
      verdict: egress.verdict === 'Allow' && ingress.verdict === 'Allow' ? 'Allow' : 'Deny',
      egress,
      ingress,
    };
  }

  close(): void {
    this.dp.close();
  }

  private direction(h: HookResult | null): DirectionVerdict {
    if (!h) {
      // not a pod this datapath enforces (node, external): nothing applies
      return {
        verdict: 'Allow',
        decidedBy: { kind: 'default', verdict: 'Allow', isolatedBy: [] },
        staged: null,
      };
    }
    const cookies = this.encoded.cookies;
    const staged =
      h.staged === 'NONE'
        ? null
        : (() => {
            const v: Verdict = h.staged === 'ALLOW' ? 'Allow' : 'Deny';
            return { verdict: v, decidedBy: this.decisionOf(h.stagedCookie, v, cookies) };
          })();
    return { verdict: h.verdict, decidedBy: this.decisionOf(h.cookie, h.verdict, cookies), staged };
  }

  private nextPort(): number {
    this.sport = this.sport >= 60999 ? 32768 : this.sport + 1;
    return this.sport;
  }
}

/** First IPv4 and first IPv6 address of an endpoint. */
export function addressesOf(ep: Endpoint): { v4: string | null; v6: string | null } {
  const ips = ep.kind === 'pod' ? ep.pod.ips : ep.kind === 'node' ? ep.node.ips : [ep.ip];
  return { v4: ips.find((ip) => isIPv4(ip)) ?? null, v6: ips.find((ip) => isIPv6(ip)) ?? null };
}

/** The address pair a probe uses: IPv4 when both have one, else IPv6, else none. */
export function addressPair(from: Endpoint, to: Endpoint): [string, string] | null {
  const a = addressesOf(from);
  const b = addressesOf(to);
  if (a.v4 !== null && b.v4 !== null) return [a.v4, b.v4];
  if (a.v6 !== null && b.v6 !== null) return [a.v6, b.v6];
  return null;
}

export interface DatapathMatrixRequest {
  readonly encoded: EncodedTables;
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
  opts: ProberOptions = {},
): ProbeVerdict[] {
  const prober = DatapathProber.open(req.encoded, opts);
  try {
    const out: ProbeVerdict[] = [];
    for (const from of req.endpoints) {
      for (const to of req.endpoints) {
        if (from.id === to.id) continue;
        const pair = addressPair(from, to);
        if (!pair) continue;
        for (const { protocol, port } of req.ports) {
          out.push(prober.probe({ from: from.id, to: to.id, protocol, port }, pair[0], pair[1]));
        }
      }
    }
    return out;
  } finally {
    prober.close();
  }
}
