/**
 * The compiled engine: answers probes the way the datapath would for the
 * first packet of a connection (no conntrack), from the encoded tables only.
 * Per direction: endpoint → table; ipcache longest-prefix match of the peer
 * address → (identity, namespace identity, CIDR identity, node number; WORLD
 * and zeros when none); the table looked up for (identity), (namespace if
 * != 0), (CIDR if != 0) and (ANY), each with (proto, port), longest prefix;
 * per tier the lowest non-zero rank wins; then `resolveTiers` (as the BPF
 * program's resolve_tiers).
 * Decisions are rebuilt from the cookie registry and, for cookie 0, from the
 * table's side metadata (which NetworkPolicies isolate it). It never calls
 * the reference evaluator.
 */
import type { CompiledEndpoint, EncodedTables } from '../compiled.js';
import type { Decision, DirectionVerdict, Probe, ProbeVerdict, Verdict } from '../engine.js';
import { parseEndpointId } from '../model/endpoint.js';
import { PROTOCOLS } from '../model/world.js';
import {
  decodePolicyKey,
  decodePolicyValue,
  type PolicyValue,
  type TierMatch,
} from '../encode/codec.js';
import { IPPROTO, PAL } from '../encode/layout.js';
import { parseAddress } from '../compile/addr.js';
import type { CompiledMeta } from '../compile/compile.js';
import { IpcacheLpm } from '../compile/ipcache.js';

export class SimulationError extends Error {
  override name = 'SimulationError';
}

/** One inner LPM table: identity → (prefixlen, masked proto/port bits) → value. */
class PolicyLpm {
  private readonly byIdentity = new Map<number, Map<number, PolicyValue>>();
  private readonly lens: number[];
  constructor(entries: EncodedTables['tables'][number]['entries']) {
    const lens = new Set<number>();
    for (const e of entries) {
      const k = decodePolicyKey(e.key);
      if (k.prefixlen < 32 || k.prefixlen > PAL.POLICY_KEY_FULL_PREFIX) {
        throw new SimulationError(
          `policy key with prefixlen ${k.prefixlen} (the compiler emits 32..56)`,
        );
      }
      let m = this.byIdentity.get(k.identity);
      if (m === undefined) this.byIdentity.set(k.identity, (m = new Map()));
      m.set(PolicyLpm.slot(k.prefixlen, (k.protocol << 16) | k.port), decodePolicyValue(e.value));
      lens.add(k.prefixlen);
    }
    this.lens = [...lens].sort((a, b) => b - a);
  }
  private static slot(prefixlen: number, bits24: number): number {
    const keep = prefixlen - 32; // bits of (protocol, port) that count
    const masked = keep === 0 ? 0 : bits24 & ((0xffffff << (24 - keep)) & 0xffffff);
    return prefixlen * 0x1000000 + masked;
  }
  lookup(identity: number, protocol: number, port: number): PolicyValue | null {
    const m = this.byIdentity.get(identity);
    if (m === undefined) return null;
    const bits = (protocol << 16) | port;
    for (const len of this.lens) {
      const v = m.get(PolicyLpm.slot(len, bits));
      if (v !== undefined) return v;
    }
    return null;
  }
}

type Resolved =
  | {
      readonly kind: 'subject';
      readonly id: string;
      readonly ep: CompiledEndpoint;
      readonly v4: string | null;
      readonly v6: string | null;
    }
  | {
      readonly kind: 'other';
      readonly id: string;
      readonly v4: string | null;
      readonly v6: string | null;
    };

const DEFAULT_ALLOW: DirectionVerdict = Object.freeze({
  verdict: 'Allow',
  decidedBy: Object.freeze({ kind: 'default', verdict: 'Allow', isolatedBy: Object.freeze([]) }),
  staged: null,
}) as DirectionVerdict;

export type CompiledEngine = (probe: Probe) => ProbeVerdict;

export function compiledEngine(encoded: EncodedTables, meta: CompiledMeta): CompiledEngine {
  const ipcache = IpcacheLpm.fromEntries(encoded.ipcache);
  const tables = new Map(encoded.tables.map((t) => [t.table, new PolicyLpm(t.entries)]));
  const endpoints = new Map(encoded.endpoints.map((e) => [e.endpoint, e]));

  const resolve = (id: string): Resolved => {
    const parsed = parseEndpointId(id);
    if ('error' in parsed) throw new SimulationError(parsed.error);
    if (parsed.kind === 'external') {
      const fam = parseAddress(parsed.ip).family;
      return {
        kind: 'other',
        id,
        v4: fam === 4 ? parsed.ip : null,
        v6: fam === 6 ? parsed.ip : null,
      };
    }
    const addr = meta.endpoints.get(id);
    if (addr === undefined)
      throw new SimulationError(
        `unknown ${parsed.kind} "${id}": no such ${parsed.kind} in the compiled world`,
      );
    const ep = endpoints.get(id);
    return ep === undefined
      ? { kind: 'other', id, v4: addr.v4, v6: addr.v6 }
      : { kind: 'subject', id, ep, v4: addr.v4, v6: addr.v6 };
  };

  const decision = (verdict: Verdict, cookie: number, table: number): Decision => {
    if (cookie === 0)
      return { kind: 'default', verdict, isolatedBy: meta.tables.get(table)?.isolatedBy ?? [] };
    const rule = encoded.cookies.get(cookie);
    if (rule === undefined)
      throw new SimulationError(`cookie ${cookie} is not in the cookie registry`);
    const action =
      rule.kind === 'NetworkPolicy' ? 'Allow' : verdict === 'Allow' ? 'Accept' : 'Deny';
    return { kind: 'rule', rule, action };
  };

  const direction = (
    subject: Resolved,
    table: 'egressTable' | 'ingressTable',
    peerAddr: string,
    proto: number,
    port: number,
  ): DirectionVerdict => {
    if (subject.kind !== 'subject') return DEFAULT_ALLOW;
    const ep = subject.ep;
    const t = ep[table];
    const lpm = tables.get(t);
    if ((ep.flags & PAL.EP_F_POLICY_READY) === 0 || lpm === undefined) {
      return {
        verdict: 'Deny',
        decidedBy: { kind: 'default', verdict: 'Deny', isolatedBy: [] },
        staged: null,
      };
    }
    const rec = ipcache.lookup(parseAddress(peerAddr).n);
    const found: PolicyValue[] = [];
    const look = (identity: number): void => {
      const v = lpm.lookup(identity, proto, port);
      if (v !== null) found.push(v);
    };
    look(rec?.identity ?? PAL.ID_WORLD);
    if (rec !== null && rec.nsIdentity !== 0) look(rec.nsIdentity);
    if (rec !== null && rec.cidrIdentity !== 0) look(rec.cidrIdentity);
    look(PAL.ID_ANY);
    const egress = table === 'egressTable';
    const isolated =
      (ep.flags & (egress ? PAL.EP_F_EGRESS_ISOLATED : PAL.EP_F_INGRESS_ISOLATED)) !== 0;
    const audit = (ep.flags & (egress ? PAL.EP_F_EGRESS_AUDIT : PAL.EP_F_INGRESS_AUDIT)) !== 0;
    const sameNode = rec !== null && rec.nodeId !== 0 && rec.nodeId === ep.nodeId;
    const e = resolveTiers(bestPerTier(found, 'enforced'), isolated, sameNode);
    const verdict: Verdict = e.allow ? 'Allow' : 'Deny';
    const staged = !audit
      ? null
      : (() => {
          const sr = resolveTiers(bestPerTier(found, 'staged'), isolated, sameNode);
          const sv: Verdict = sr.allow ? 'Allow' : 'Deny';
          return { verdict: sv, decidedBy: decision(sv, sr.cookie, t) };
        })();
    return { verdict, decidedBy: decision(verdict, e.cookie, t), staged };
  };

  return (probe) => {
    if (!PROTOCOLS.includes(probe.protocol))
      throw new SimulationError(
        `bad protocol "${String(probe.protocol)}" (allowed: ${PROTOCOLS.join(', ')})`,
      );
    if (!Number.isInteger(probe.port) || probe.port < 1 || probe.port > 65535)
      throw new SimulationError(`bad port ${String(probe.port)} (allowed: 1..65535)`);
    const from = resolve(probe.from);
    const to = resolve(probe.to);
    if (from.id === to.id)
      throw new SimulationError(`--from and --to are the same endpoint "${from.id}"`);
    let pair: [string, string] | null = null;
    if (from.v4 !== null && to.v4 !== null) pair = [from.v4, to.v4];
    else if (from.v6 !== null && to.v6 !== null) pair = [from.v6, to.v6];
    if (pair === null) throw new SimulationError(`"${from.id}" and "${to.id}" share no IP family`);
    const proto = IPPROTO[probe.protocol];
    const egress = direction(from, 'egressTable', pair[1], proto, probe.port);
    const ingress = direction(to, 'ingressTable', pair[0], proto, probe.port);
    return {
      probe: { from: probe.from, to: probe.to, protocol: probe.protocol, port: probe.port },
      verdict: egress.verdict === 'Allow' && ingress.verdict === 'Allow' ? 'Allow' : 'Deny',
      egress,
      ingress,
    };
  };
}

/** Per tier, the match with the lowest non-zero rank among the lookups' values. */
export function bestPerTier(
  values: readonly PolicyValue[],
  which: 'enforced' | 'staged',
): readonly TierMatch[] {
  const out: TierMatch[] = [];
  for (let tier = 0; tier < PAL.TIERS; tier++) {
    let best: TierMatch | null = null;
    for (const v of values) {
      const m = v[which][tier] as TierMatch;
      if (m.rank !== 0 && (best === null || m.rank < best.rank)) best = m;
    }
    out.push(best ?? { rank: 0, cookie: 0, action: PAL.ACTION_NONE, flags: 0 });
  }
  return out;
}

export interface Resolution {
  readonly allow: boolean;
  readonly cookie: number;
  readonly flags: number;
}

/**
 * The tier resolution of the datapath (bpf/src/palisade.bpf.c resolve_tiers):
 * an Admin match other than Pass decides; else, when the endpoint is isolated
 * in this direction, a NetworkPolicy match allows, the own node is allowed
 * (cookie 0) and everything else denied (cookie 0); when not isolated, a
 * Baseline match decides, else default allow (cookie 0).
 */
export function resolveTiers(
  tiers: readonly TierMatch[],
  isolated: boolean,
  sameNode: boolean,
): Resolution {
  const rule = (m: TierMatch): Resolution => ({
    allow: m.action !== PAL.ACTION_DENY,
    cookie: m.cookie,
    flags: m.flags,
  });
  const admin = tiers[PAL.TIER_ADMIN] as TierMatch;
  if (admin.rank !== 0 && admin.action !== PAL.ACTION_PASS) return rule(admin);
  if (isolated) {
    const np = tiers[PAL.TIER_NETWORK_POLICY] as TierMatch;
    if (np.rank !== 0) return rule(np);
    return { allow: sameNode, cookie: 0, flags: 0 };
  }
  const baseline = tiers[PAL.TIER_BASELINE] as TierMatch;
  if (baseline.rank !== 0) return rule(baseline);
  return { allow: true, cookie: 0, flags: 0 };
}
