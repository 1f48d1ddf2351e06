/**
 * NDJSON text of flow records, equal byte for byte to JSON.stringify(record)
 * (test/enforcer/flow-serialize.test.ts checks it on a pinned corpus and on
 * random events), but several times cheaper for records built by
 * toFlowRecord: the constant parts of a record — endpoint blocks, policy
 * lists, rules, TCP flags, the node name — are shared objects there, so their
 * JSON is computed once per object and spliced; only the per-event fields
 * (time, uuid, addresses, ports, sizes) are formatted per record.
 * Any other object (a record read back from a file, a test's literal, a loss
 * record) goes through JSON.stringify. Strings spliced without escaping are
 * ours by construction (time, uuid, enum values); addresses and everything
 * that comes from the World are escaped by JSON.stringify.
 */
import { NativeFlowRecord, type AnyFlowRecord, type Flow, type FlowL4 } from './record.js';

/** JSON of shared (frozen) sub-objects, computed once per object. */
const fragmentJson = new WeakMap<object, string>();
function cached(o: object): string {
  let s = fragmentJson.get(o);
  if (s === undefined) {
    s = JSON.stringify(o);
    // only frozen objects are shared by construction; a mutable one may change
    if (Object.isFrozen(o)) fragmentJson.set(o, s);
  }
  return s;
}

/** JSON of short strings that repeat (node names): one entry per distinct value, bounded. */
const stringJson = new Map<string, string>();
function str(s: string): string {
  let j = stringJson.get(s);
  if (j === undefined) {
    j = JSON.stringify(s);
    if (stringJson.size > 256) stringJson.clear();
    stringJson.set(s, j);
  }
  return j;
}

function l4Json(l4: FlowL4): string {
  if ('TCP' in l4) {
    const t = l4.TCP;
    return `{"TCP":{"source_port":${t.source_port},"destination_port":${t.destination_port},"flags":${cached(t.flags)}}}`;
  }
  if ('UDP' in l4)
    return `{"UDP":{"source_port":${l4.UDP.source_port},"destination_port":${l4.UDP.destination_port}}}`;
  return JSON.stringify(l4);
}

function flowJson(f: Flow): string {
  let out = `{"time":"${f.time}","uuid":"${f.uuid}","verdict":"${f.verdict}"`;
  if (f.drop_reason_desc !== undefined) out += `,"drop_reason_desc":"${f.drop_reason_desc}"`;
  const ip = f.IP;
  out +=
    `,"event_type":"${f.event_type}","IP":{"source":${JSON.stringify(ip.source)},` +
    `"destination":${JSON.stringify(ip.destination)},"ipVersion":"${ip.ipVersion}",` +
    `"encrypted":${ip.encrypted}},"l4":${l4Json(f.l4)},"source":${cached(f.source)},` +
    `"destination":${cached(f.destination)},"traffic_direction":"${f.traffic_direction}",` +
    `"is_reply":${f.is_reply},"Type":"${f.Type}","node_name":${str(f.node_name)}`;
  // toFlowRecord sets at most one of these, in this position
  if (f.egress_allowed_by !== undefined)
    out += `,"egress_allowed_by":${cached(f.egress_allowed_by)}`;
  if (f.ingress_allowed_by !== undefined)
    out += `,"ingress_allowed_by":${cached(f.ingress_allowed_by)}`;
  if (f.egress_denied_by !== undefined) out += `,"egress_denied_by":${cached(f.egress_denied_by)}`;
  if (f.ingress_denied_by !== undefined)
    out += `,"ingress_denied_by":${cached(f.ingress_denied_by)}`;
  out += `,"rule":${cached(f.rule)}`;
  if (f.staged !== undefined)
    out += `,"staged":{"verdict":"${f.staged.verdict}","rule":${cached(f.staged.rule)}}`;
  out += `,"traffic":{"packets":${f.traffic.packets},"bytes":${f.traffic.bytes}},"datapath_revision":${f.datapath_revision}`;
  if (f.suppressed_before !== undefined) out += `,"suppressed_before":${f.suppressed_before}`;
  return `${out}}`;
}

/** Where writeRecordJson puts UTF-8 bytes (LineBatch in sinks.ts). */
export interface JsonByteWriter {
  /** Appends a string's UTF-8 bytes. */
  text(s: string): void;
  /** Appends bytes as they are. */
  bytes(b: Uint8Array): void;
}

/** UTF-8 bytes of shared (frozen) sub-objects' JSON, encoded once per object. */
const fragmentBytes = new WeakMap<object, Buffer>();

/**
 * Writes `pending` and then o's JSON; returns what is still pending. The
 * large shared parts (endpoint blocks with their labels, policy lists, rules)
 * are copied as bytes encoded once, so the per-record text to flatten and
 * encode is only the per-event fields.
 */
function splice(w: JsonByteWriter, pending: string, o: object): string {
  if (!Object.isFrozen(o)) return pending + JSON.stringify(o);
  let b = fragmentBytes.get(o);
  if (b === undefined) fragmentBytes.set(o, (b = Buffer.from(cached(o))));
  w.text(pending);
  w.bytes(b);
  return '';
}

/**
 * The UTF-8 bytes of recordJson(r), written to w: the same bytes as
 * Buffer.from(JSON.stringify(r)) (test/enforcer/flow-serialize.test.ts).
 */
export function writeRecordJson(r: AnyFlowRecord, w: JsonByteWriter): void {
  if (!(r instanceof NativeFlowRecord)) {
    w.text(JSON.stringify(r));
    return;
  }
  const f = r.flow;
  let out = `{"flow":{"time":"${f.time}","uuid":"${f.uuid}","verdict":"${f.verdict}"`;
  if (f.drop_reason_desc !== undefined) out += `,"drop_reason_desc":"${f.drop_reason_desc}"`;
  const ip = f.IP;
  out +=
    `,"event_type":"${f.event_type}","IP":{"source":${JSON.stringify(ip.source)},` +
    `"destination":${JSON.stringify(ip.destination)},"ipVersion":"${ip.ipVersion}",` +
    `"encrypted":${ip.encrypted}},"l4":${l4Json(f.l4)},"source":`;
  out = splice(w, out, f.source);
  out = splice(w, `${out},"destination":`, f.destination);
  out +=
    `,"traffic_direction":"${f.traffic_direction}",` +
    `"is_reply":${f.is_reply},"Type":"${f.Type}","node_name":${str(f.node_name)}`;
  // toFlowRecord sets at most one of these, in this position (as flowJson)
  if (f.egress_allowed_by !== undefined)
    out = splice(w, `${out},"egress_allowed_by":`, f.egress_allowed_by);
  if (f.ingress_allowed_by !== undefined)
    out = splice(w, `${out},"ingress_allowed_by":`, f.ingress_allowed_by);
  if (f.egress_denied_by !== undefined)
    out = splice(w, `${out},"egress_denied_by":`, f.egress_denied_by);
  if (f.ingress_denied_by !== undefined)
    out = splice(w, `${out},"ingress_denied_by":`, f.ingress_denied_by);
  out = splice(w, `${out},"rule":`, f.rule);
  if (f.staged !== undefined)
    out += `,"staged":{"verdict":"${f.staged.verdict}","rule":${cached(f.staged.rule)}}`;
  out += `,"traffic":{"packets":${f.traffic.packets},"bytes":${f.traffic.bytes}},"datapath_revision":${f.datapath_revision}`;
  if (f.suppressed_before !== undefined) out += `,"suppressed_before":${f.suppressed_before}`;
  w.text(`${out}},"node_name":${str(r.node_name)},"time":"${r.time}"}`);
}

/** One record's JSON text (no newline): what JSON.stringify(record) gives. */
export function recordJson(r: AnyFlowRecord): string {
  if (r instanceof NativeFlowRecord)
    return `{"flow":${flowJson(r.flow)},"node_name":${str(r.node_name)},"time":"${r.time}"}`;
  return JSON.stringify(r);
}
