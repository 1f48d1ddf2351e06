/**
 * CIDR conflicts between clusters (pure). Pod, service and node ranges of
 * different clusters must not overlap, IPv4 and IPv6 alike: a route to one
 * would capture the other. Admission is first come, first served: clusters
 * are taken in join order and one that overlaps an admitted cluster is
 * refused, so every gateway, reading the same store, refuses the same one.
 */
import { CidrError, parsePrefix, prefixOverlap, type Prefix } from './cidr.js';

export type RangeKind = 'pod' | 'service' | 'node';

export interface ClusterRanges {
  readonly name: string;
  readonly podCIDRs: readonly string[];
  readonly serviceCIDRs: readonly string[];
  readonly nodeCIDRs: readonly string[];
}

export interface RangeRef {
  readonly cluster: string;
  readonly kind: RangeKind;
  readonly cidr: string;
}

export interface CidrConflict {
  readonly a: RangeRef;
  readonly b: RangeRef;
  /** The overlapping range (the smaller of the two, since prefixes nest). */
  readonly overlap: string;
}

export interface InvalidRange extends RangeRef {
  readonly error: string;
}

export interface ConflictReport {
  readonly conflicts: readonly CidrConflict[];
  readonly invalid: readonly InvalidRange[];
}

interface Parsed extends RangeRef {
  readonly prefix: Prefix;
}

function ranges(c: ClusterRanges, invalid: InvalidRange[]): Parsed[] {
  const out: Parsed[] = [];
  const add = (kind: RangeKind, list: readonly string[]): void => {
    for (const cidr of list) {
      try {
        out.push({ cluster: c.name, kind, cidr, prefix: parsePrefix(cidr) });
      } catch (e) {
        invalid.push({
          cluster: c.name,
          kind,
          cidr,
          error: e instanceof CidrError ? e.message : String(e),
        });
      }
    }
  };
  add('pod', c.podCIDRs);
  add('service', c.serviceCIDRs);
  add('node', c.nodeCIDRs);
  return out;
}

function overlaps(xs: readonly Parsed[], ys: readonly Parsed[]): CidrConflict[] {
  const out: CidrConflict[] = [];
  for (const x of xs) {
    for (const y of ys) {
      const o = prefixOverlap(x.prefix, y.prefix);
      if (o) {
        out.push({
          a: { cluster: x.cluster, kind: x.kind, cidr: x.cidr },
          b: { cluster: y.cluster, kind: y.kind, cidr: y.cidr },
          overlap: o.text,
        });
      }
    }
  }
  return out;
}

/** Every overlap between two different clusters, in input order. */
export function findConflicts(clusters: readonly ClusterRanges[]): ConflictReport {
  const invalid: InvalidRange[] = [];
  const parsed = clusters.map((c) => ranges(c, invalid));
  const conflicts: CidrConflict[] = [];
  for (let i = 0; i < clusters.length; i++) {
    for (let j = i + 1; j < clusters.length; j++)
      conflicts.push(...overlaps(parsed[i] as Parsed[], parsed[j] as Parsed[]));
  }
  return { conflicts, invalid };
}

export interface Admission {
  readonly admitted: readonly string[];
  /** Refused clusters with the conflicts that refused them (against admitted clusters). */
  readonly refused: ReadonlyArray<{
    readonly cluster: string;
    readonly conflicts: readonly CidrConflict[];
    readonly invalid: readonly InvalidRange[];
  }>;
}

/** First come, first served admission; `clusters` in join order. */
export function admitClusters(clusters: readonly ClusterRanges[]): Admission {
  const admitted: { name: string; ranges: Parsed[] }[] = [];
  const refused: Admission['refused'][number][] = [];
  for (const c of clusters) {
    const invalid: InvalidRange[] = [];
    const own = ranges(c, invalid);
    const conflicts = admitted.flatMap((a) => overlaps(a.ranges, own));
    if (conflicts.length > 0 || invalid.length > 0)
      refused.push({ cluster: c.name, conflicts, invalid });
    else admitted.push({ name: c.name, ranges: own });
  }
  return { admitted: admitted.map((a) => a.name), refused };
}

/** The human report, one line per finding; empty when clean. */
export function formatConflicts(report: ConflictReport): string[] {
  const ref = (r: RangeRef): string => `cluster ${r.cluster} ${r.kind} CIDR ${r.cidr}`;
  return [
    ...report.invalid.map((i) => `invalid: ${ref(i)}: ${i.error}`),
    ...report.conflicts.map(
      (c) => `conflict: ${ref(c.a)} overlaps ${ref(c.b)} (overlap ${c.overlap})`,
    ),
  ];
}
