/**
 * Text forms of a matrix.
 *
 * `table`: one grid per port, a row per source and a column per destination,
 * both numbered in one list (so 20 endpoints stay under ~110 columns). Cells:
 * `.` allowed, `X` denied, `!` allowed but an Audit-mode policy would deny,
 * `+` denied but Audit-mode policies would allow.
 *
 * `wide`: one row per probe with the rule that decided each direction.
 */
import type { ProbeVerdict } from '../../../policy-compiler/src/index.js';
import { decisionShort } from './names.js';
import { probeKey, stagedVerdict } from './probes.js';
import { renderTable } from './table.js';

export const CELL_LEGEND =
  '. allowed   X denied   ! allowed, Audit policy would deny   + denied, Audit policies would allow';

function cell(v: ProbeVerdict | undefined): string {
  if (v === undefined) return ' ';
  const staged = stagedVerdict(v);
  if (v.verdict === 'Allow') return staged === 'Allow' ? '.' : '!';
  return staged === 'Deny' ? 'X' : '+';
}

export function renderMatrixGrid(verdicts: readonly ProbeVerdict[]): string {
  const endpoints: string[] = [];
  const index = new Map<string, number>();
  const sources = new Set<string>();
  const ports: string[] = [];
  const byKey = new Map<string, ProbeVerdict>();
  const add = (id: string): void => {
    if (!index.has(id)) {
      index.set(id, endpoints.length + 1);
      endpoints.push(id);
    }
  };
  for (const v of verdicts) {
    add(v.probe.from);
    add(v.probe.to);
    sources.add(v.probe.from);
    const port = `${v.probe.protocol}/${v.probe.port}`;
    if (!ports.includes(port)) ports.push(port);
    byKey.set(probeKey(v.probe), v);
  }
  if (verdicts.length === 0) return 'no probes\n';
  const numWidth = String(endpoints.length).length;
  const idWidth = Math.max(4, ...endpoints.map((e) => e.length));
  const cols = endpoints;
  const blocks: string[] = [];
  for (const port of ports) {
    const [protocol, num] = port.split('/') as [string, string];
    const header =
      `${'#'.padStart(numWidth)}  ${'FROM \\ TO'.padEnd(idWidth)}  ` +
      cols.map((_, i) => String(i + 1).padStart(numWidth)).join(' ');
    const rows = endpoints
      .filter((e) => sources.has(e))
      .map((from) => {
        const cells = cols.map((to) =>
          cell(byKey.get(probeKey({ from, to, protocol, port: Number(num) }))).padStart(numWidth),
        );
        return `${String(index.get(from)).padStart(numWidth)}  ${from.padEnd(idWidth)}  ${cells.join(' ')}`;
      });
    blocks.push([`PORT ${port}`, header.trimEnd(), ...rows.map((r) => r.trimEnd())].join('\n'));
  }
  return `${blocks.join('\n\n')}\n\n${CELL_LEGEND}\n`;
}

export function renderMatrixWide(verdicts: readonly ProbeVerdict[]): string {
  return renderTable(
    ['from', 'to', 'port', 'verdict', 'egress', 'ingress', 'staged'],
    verdicts.map((v) => [
      v.probe.from,
      v.probe.to,
      `${v.probe.protocol}/${v.probe.port}`,
      v.verdict,
      `${v.egress.verdict} ${decisionShort(v.egress.decidedBy)}`,
      `${v.ingress.verdict} ${decisionShort(v.ingress.decidedBy)}`,
      v.egress.staged === null && v.ingress.staged === null ? '-' : stagedVerdict(v),
    ]),
  );
}
