/**
 * Checks an OCSF Network Activity event against the class's required fields
 * and the id rules of schema 1.8.0 (FORMATS.md). Returns every problem found,
 * each as `field: what is wrong`; empty = valid.
 */
const ACTIVITY_IDS = new Set([0, 1, 2, 3, 4, 5, 6, 7, 99]);
const SEVERITY_IDS = new Set([0, 1, 2, 3, 4, 5, 6, 99]);
const ACTION_IDS = new Set([0, 1, 2, 3, 4, 99]);
const DIRECTION_IDS = new Set([0, 1, 2, 3, 4, 99]);
const BOUNDARY_IDS = new Set([0, 1, 2, 3, 4, 5, 6, 99]);

const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);
const isStr = (v: unknown): v is string => typeof v === 'string' && v.length > 0;

export function validateOcsfNetworkActivity(ev: unknown): string[] {
  const errs: string[] = [];
  if (!isObj(ev)) return ['<root>: not an object'];
  const need = (field: string, ok: boolean, what: string): void => {
    if (!ok) errs.push(`${field}: ${what}`);
  };
  need('class_uid', ev.class_uid === 4001, 'must be 4001');
  need('category_uid', ev.category_uid === 4, 'must be 4');
  need(
    'activity_id',
    isInt(ev.activity_id) && ACTIVITY_IDS.has(ev.activity_id),
    'required, one of 0-7, 99',
  );
  need(
    'type_uid',
    isInt(ev.type_uid) && isInt(ev.activity_id) && ev.type_uid === 4001 * 100 + ev.activity_id,
    'required, class_uid × 100 + activity_id',
  );
  need('time', isInt(ev.time) && ev.time > 0, 'required, ms since epoch');
  need(
    'severity_id',
    isInt(ev.severity_id) && SEVERITY_IDS.has(ev.severity_id),
    'required, one of 0-6, 99',
  );
  if (ev.action_id !== undefined)
    need('action_id', isInt(ev.action_id) && ACTION_IDS.has(ev.action_id), 'one of 0-4, 99');
  if (ev.disposition_id !== undefined) need('disposition_id', isInt(ev.disposition_id), 'integer');
  const md = ev.metadata;
  if (!isObj(md)) {
    errs.push('metadata: required object');
  } else {
    need('metadata.version', isStr(md.version), 'required string');
    const p = md.product;
    if (!isObj(p)) errs.push('metadata.product: required object');
    else {
      need('metadata.product.name', isStr(p.name), 'required string');
      need('metadata.product.vendor_name', isStr(p.vendor_name), 'required string');
      need('metadata.product.version', isStr(p.version), 'required string');
    }
    if (md.profiles !== undefined) {
      need(
        'metadata.profiles',
        Array.isArray(md.profiles) && md.profiles.every(isStr),
        'list of strings',
      );
    }
  }
  const src = ev.src_endpoint;
  const dst = ev.dst_endpoint;
  need('src_endpoint|dst_endpoint', isObj(src) || isObj(dst), 'at least one is required');
  for (const [name, e] of [
    ['src_endpoint', src],
    ['dst_endpoint', dst],
  ] as const) {
    if (e === undefined) continue;
    if (!isObj(e)) errs.push(`${name}: must be an object`);
    else if (e.port !== undefined)
      need(`${name}.port`, isInt(e.port) && e.port >= 0 && e.port <= 65535, '0-65535');
  }
  const ci = ev.connection_info;
  if (ci !== undefined) {
    if (!isObj(ci)) errs.push('connection_info: must be an object');
    else {
      need(
        'connection_info.direction_id',
        isInt(ci.direction_id) && DIRECTION_IDS.has(ci.direction_id),
        'required when connection_info is present',
      );
      if (ci.boundary_id !== undefined)
        need(
          'connection_info.boundary_id',
          isInt(ci.boundary_id) && BOUNDARY_IDS.has(ci.boundary_id),
          'one of 0-6, 99',
        );
      if (ci.protocol_name !== undefined)
        need(
          'connection_info.protocol_name',
          isStr(ci.protocol_name) && ci.protocol_name === ci.protocol_name.toLowerCase(),
          'lowercase string',
        );
    }
  }
  const obs = ev.observables;
  if (obs !== undefined) {
    if (!Array.isArray(obs)) errs.push('observables: must be a list');
    else
      obs.forEach((o, i) => {
        need(`observables[${i}].type_id`, isObj(o) && isInt(o.type_id), 'required integer');
        need(`observables[${i}].name`, isObj(o) && isStr(o.name), 'required string');
      });
  }
  const fr = ev.firewall_rule;
  if (fr !== undefined)
    need(
      'firewall_rule.uid|name',
      isObj(fr) && (isStr(fr.uid) || isStr(fr.name)),
      'uid or name required',
    );
  return errs;
}
