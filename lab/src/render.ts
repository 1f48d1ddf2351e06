/** Text forms of the lab's status and demo report (kubectl-style tables, side-by-side grids). */
import { FLOW_TABLE_HEADER, flowTableRow } from '../../enforcer/src/flows/text.js';
import type { ComparedProbe, DemoReport } from './demo.js';
import type { GatewayView, LabStatus } from './status.js';

export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(headers.map((h) => h.toUpperCase())), ...rows.map(line)].join('\n') + '\n';
}

export function renderGateways(gateways: readonly GatewayView[]): string {
  const rows = gateways.flatMap((g) =>
    g.peers.map((p) => [
      g.cluster,
      g.devices.map((d) => `${d.iface}:${d.listenPort} mtu ${d.mtu}`).join(' '),
      p.cluster,
      p.state,
      p.endpoint ?? '-',
      p.handshakeAgeSec === null ? 'never' : `${Math.round(p.handshakeAgeSec)}s`,
      String(p.rxBytes),
      String(p.txBytes),
    ]),
  );
  return table(
    ['gateway', 'device', 'peer', 'state', 'endpoint', 'handshake', 'rx bytes', 'tx bytes'],
    rows,
  );
}

export function renderStatus(st: LabStatus): string {
  if (st.phase === 'absent') return 'no lab (run: palisade lab up)\n';
  const o = st.options;
  let out = `lab ${st.runId}  ${st.up ? 'up' : `NOT HEALTHY (phase ${st.phase})`}  ${o ? `${o.clusters} clusters × ${o.nodes} nodes × ${o.pods} pods` : ''}  etcd ${st.etcd ?? '-'}\n`;
  out += `world ${st.world}\n`;
  if (st.lastError) out += `last error: ${st.lastError}\n`;
  const missing = st.namespaces.filter((n) => !n.exists);
  out += `namespaces: ${st.namespaces.length}${missing.length ? ` (missing: ${missing.map((n) => n.name).join(', ')})` : ''}\n\n`;
  out += table(
    ['role', 'of', 'pid', 'state'],
    st.processes.map((p) => [p.role, p.of, String(p.pid), p.alive ? 'running' : 'DEAD']),
  );
  out += '\n' + renderGateways(st.gateways);
  out += '\n' + renderEnforcers(st);
  return out;
}

export function renderEnforcers(st: Pick<LabStatus, 'enforcers'>): string {
  return table(
    ['node', 'revision', 'pods attached', 'deny events', 'new allowed', 'policy drops', 'error'],
    st.enforcers.map((e) => [
      e.node,
      String(e.revision),
      `${e.attached.filter((a) => a.attached).length}/${e.attached.length}`,
      String(e.events['denied'] ?? 0),
      String(e.events['allowed'] ?? 0),
      String(Object.values(e.drops).reduce((a, b) => a + b, 0)),
      e.lastError ?? '-',
    ]),
  );
}

const cell = (v: 'Allow' | 'Deny'): string => (v === 'Allow' ? '.' : 'X');

/** Per port: the observed grid beside the predicted one; mismatching cells marked '?'. */
export function renderComparison(probes: readonly ComparedProbe[]): string {
  const pods = [...new Set(probes.flatMap((p) => [p.from, p.to]))].sort();
  const idx = new Map(pods.map((p, i) => [p, i + 1]));
  const ports = [...new Set(probes.map((p) => `${p.protocol}/${p.port}`))];
  const w = Math.max(...pods.map((p) => p.length));
  const nums = pods.map((_, i) => String(i + 1).padStart(2)).join(' ');
  let out = '';
  for (const port of ports) {
    const at = new Map(
      probes.filter((p) => `${p.protocol}/${p.port}` === port).map((p) => [`${p.from} ${p.to}`, p]),
    );
    out += `PORT ${port}\n${' #'}  ${'FROM \\ TO'.padEnd(w)}  OBSERVED${' '.repeat(Math.max(0, nums.length - 8))}   PREDICTED (palisade matrix)\n`;
    out += `    ${''.padEnd(w)}  ${nums}   ${nums}\n`;
    for (const from of pods) {
      const obs: string[] = [];
      const pred: string[] = [];
      for (const to of pods) {
        const p = at.get(`${from} ${to}`);
        if (!p) {
          obs.push('  ');
          pred.push('  ');
          continue;
        }
        obs.push(` ${p.observed === p.predicted ? cell(p.observed) : '?'}`);
        pred.push(` ${cell(p.predicted)}`);
      }
      out += `${String(idx.get(from)).padStart(2)}  ${from.padEnd(w)}  ${obs.join(' ')}   ${pred.join(' ')}\n`;
    }
    out += '\n';
  }
  return out + '. allowed   X denied   ? observed differs from the prediction\n';
}

export function renderDemo(r: DemoReport): string {
  let out = `lab ${r.runId}: ${r.options.clusters} clusters × ${r.options.nodes} nodes × ${r.options.pods} pods; world ${r.world}\n\n`;
  out += renderComparison(r.probes);
  const allowed = r.probes.filter((p) => p.observed === 'Allow').length;
  if (r.mismatches.length === 0) {
    out += `\nobserved == predicted: all ${r.probes.length} probes agree (${allowed} allowed, ${r.probes.length - allowed} denied)\n`;
  } else {
    out += `\n!!! MISMATCH: ${r.mismatches.length} of ${r.probes.length} probes differ from the prediction !!!\n`;
    out += table(
      ['from', 'to', 'port', 'predicted', 'observed', 'detail'],
      r.mismatches.map((m) => [
        m.from,
        m.to,
        `${m.protocol}/${m.port}`,
        m.predicted,
        m.observed,
        m.detail,
      ]),
    );
  }
  out += `\nDENY FLOW RECORDS (a few, attributed)\n${FLOW_TABLE_HEADER}\n`;
  out += r.denyFlows.map((f) => flowTableRow(f)).join('\n') + '\n';
  out += `\nENFORCERS (datapath counters)\n${renderEnforcers({ enforcers: r.enforcers })}`;
  out += `\nMETRICS (palisade_* counters, all nodes)\n${table(
    ['metric', 'value'],
    Object.entries(r.metrics).map(([k, v]) => [k, String(v)]),
  )}`;
  out += `\nTUNNEL\n${renderGateways(r.tunnel)}`;
  out += `\nLIVE POLICY CHANGE\n${r.change.description}\n`;
  if (r.change.probes.length === 0) out += 'no lab pod pair is affected by it\n';
  else {
    // every mismatch, and a few of each kind of flip
    const shown = [
      ...r.change.probes.filter((p) => p.observed !== p.predicted),
      ...r.change.probes
        .filter((p) => p.observed === p.predicted && p.predicted === 'Allow')
        .slice(0, 6),
      ...r.change.probes
        .filter((p) => p.observed === p.predicted && p.predicted === 'Deny')
        .slice(0, 6),
    ];
    out += table(
      ['from', 'to', 'port', 'before', 'predicted now', 'observed now'],
      shown.map((p) => [
        p.from,
        p.to,
        `${p.protocol}/${p.port}`,
        p.before,
        p.predicted,
        p.observed === p.predicted ? p.observed : `${p.observed}  <-- MISMATCH`,
      ]),
    );
    const opened = r.change.probes.filter((p) => p.predicted === 'Allow').length;
    if (shown.length < r.change.probes.length)
      out += `… ${r.change.probes.length - shown.length} more (-o json lists all)\n`;
    out += `${r.change.probes.length} probes change verdict: ${opened} now allowed, ${r.change.probes.length - opened} now denied\n`;
    out +=
      r.change.mismatches.length === 0
        ? `the change took effect on all ${r.change.probes.length} affected probes (then reverted)\n`
        : `!!! ${r.change.mismatches.length} affected probes do not match !!!\n`;
  }
  out += `\nThe lab stays up: palisade lab status | palisade flows -f ${r.world.replace(/\/world$/, '')}/nodes/<node>/flows.ndjson | palisade lab down\n`;
  return out;
}
