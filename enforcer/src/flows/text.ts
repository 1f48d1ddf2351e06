/**
 * One-line text form of a record for terminals (`palisade flows -o table`).
 * Fixed column widths so a followed stream stays aligned without buffering.
 */
import { filterView } from './filter.js';
import { isFlowRecord, type AnyFlowRecord } from './record.js';

const COLUMNS = [
  ['TIME', 30],
  ['VERDICT', 9],
  ['DIR', 7],
  ['SOURCE', 34],
  ['DESTINATION', 34],
  ['PROTO', 10],
  ['DECIDED BY', 0],
] as const;

const row = (cells: readonly string[]): string =>
  cells
    .map((c, i) => {
      const w = COLUMNS[i]?.[1] ?? 0;
      return w > 0 ? c.padEnd(w) : c;
    })
    .join(' ')
    .trimEnd();

export const FLOW_TABLE_HEADER = row(COLUMNS.map((c) => c[0]));

export function flowTableRow(r: AnyFlowRecord): string {
  if (!isFlowRecord(r)) {
    const l = r.lost_events;
    return row([
      r.time,
      'LOST',
      '',
      `${l.num_events_lost} records`,
      `source ${l.source}`,
      '',
      `${l.first} .. ${l.last}`,
    ]);
  }
  const v = filterView(r);
  const port =
    v.protocol === 'ICMPv4' || v.protocol === 'ICMPv6'
      ? `${v.icmp.type}/${v.icmp.code}`
      : String(v.dst.port);
  const p = v.policy;
  const decided = p.kind
    ? `${p.kind} ${p.namespace ? `${p.namespace}/` : ''}${p.name}${v.rule.index >= 0n ? `[${v.rule.index}]` : ''}${v.rule.name ? ` ${v.rule.name}` : ''}`
    : v.rule.name;
  const reason = v.drop_reason ? ` (${v.drop_reason})` : '';
  const staged = v.staged.verdict ? ` staged:${v.staged.verdict}` : '';
  return row([
    v.time,
    v.verdict,
    v.direction,
    v.src.id,
    v.dst.id,
    `${v.protocol}/${port}`,
    `${decided}${reason}${staged}`,
  ]);
}
