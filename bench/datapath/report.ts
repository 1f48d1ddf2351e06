/** Result rows of bench/datapath and their text table. */

/** null: the measurement did not complete within its time limit. */
export interface Measure {
  readonly udpPps: number | null;
  readonly tcpGbps: number | null;
  readonly rrP50Us: number | null;
  readonly rrP99Us: number | null;
}

export interface Row extends Measure {
  readonly config: 'none' | 'iptables' | 'nftables' | 'palisade' | 'palisade-ref';
  readonly n: number;
  readonly loadMs: number;
  /** this row / the median of its interleaved no-filter rounds */
  readonly ratio?: Record<keyof Measure, number | null>;
  /**
   * UDP packets/s of each round over the no-filter round just before it
   * (sorted): the spread, and a median that follows the machine's load
   * round by round instead of across the whole run
   */
  readonly udpPairRatios?: readonly number[];
  readonly udpPairRatioMedian?: number | null;
}

const cell = (v: number | null | undefined, r?: number | null): string =>
  v == null ? 'n/a' : r == null ? String(v) : `${v} (${r.toFixed(2)}x)`;

const pairs = (xs: readonly number[] | undefined): string =>
  !xs || xs.length === 0
    ? '-'
    : [xs[0]!, xs[Math.floor((xs.length - 1) / 2)]!, xs[xs.length - 1]!]
        .map((x) => x.toFixed(2))
        .join('/');

/** One line per row; ratios against the same run's no-filter rounds in parentheses. */
export function formatTable(rows: readonly Row[]): string {
  const head = [
    'config',
    'N',
    'load ms',
    'UDP 64B pps',
    'UDP pairs min/med/max',
    'TCP Gbit/s',
    'rr p50 µs',
    'rr p99 µs',
  ];
  const body = rows.map((r) => [
    r.config,
    String(r.n),
    String(r.loadMs),
    cell(r.udpPps, r.ratio?.udpPps),
    pairs(r.udpPairRatios),
    cell(r.tcpGbps, r.ratio?.tcpGbps),
    cell(r.rrP50Us, r.ratio?.rrP50Us),
    cell(r.rrP99Us, r.ratio?.rrP99Us),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cols: readonly string[]): string =>
    cols.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}
