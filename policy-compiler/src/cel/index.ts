/**
 * The CEL wrapper used for CRD `x-kubernetes-validations`: one small
 * interface (`compile(source, decls) → program | issues`, `program.eval(vars)`)
 * over @bufbuild/cel, plus the parts of the Kubernetes CEL library the rules
 * use (net: isIP, ip(), isCIDR, cidr() and their methods). See
 * /work/shared/design/CEL.md for why this library and the traps handled here.
 */
import {
  CelScalar,
  celEnv,
  celError,
  celFunc,
  celMethod,
  isCelError,
  isCelList,
  isCelMap,
  mapType,
  parse,
  plan,
  type CelEnv,
  type CelFunc,
  type CelMap,
} from '@bufbuild/cel';
import { strings } from '@bufbuild/cel/ext';
import {
  cidrContainsCidr,
  cidrContainsIp,
  formatCidr,
  formatIp,
  maskCidr,
  parseCidr,
  parseIp,
  type CidrPrefix,
  type IpAddr,
} from './net.js';

export * from './net.js';

export interface CelIssue {
  readonly message: string;
  /** 1-based position inside the expression, when the parser reports one. */
  readonly line: number | null;
  readonly col: number | null;
}

export type CelEvalResult =
  { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly error: string };

export interface CelProgram {
  readonly source: string;
  /** Never throws: evaluation errors come back as `{ ok: false }`. */
  eval(vars: Readonly<Record<string, unknown>>): CelEvalResult;
}

export type CelCompileResult =
  | { readonly ok: true; readonly program: CelProgram }
  | { readonly ok: false; readonly issues: readonly CelIssue[] };

// ------------------------------------------------ Kubernetes net library

const TAG = '__palisade_net';
const MAP = mapType(CelScalar.STRING, CelScalar.DYN);

function ipValue(ip: IpAddr): Map<string, string> {
  return new Map([
    [TAG, 'ip'],
    ['text', formatIp(ip)],
  ]);
}
function cidrValue(c: CidrPrefix): Map<string, string> {
  return new Map([
    [TAG, 'cidr'],
    ['text', formatCidr(c)],
  ]);
}
function asIp(v: unknown): IpAddr {
  const s = typeof v === 'string' ? v : isCelMap(v) && v.get(TAG) === 'ip' ? v.get('text') : null;
  const ip = typeof s === 'string' ? parseIp(s) : null;
  if (!ip)
    throw new Error(`IP Address ${JSON.stringify(s)} parse error during conversion from string`);
  return ip;
}
function asCidr(v: unknown): CidrPrefix {
  const s = typeof v === 'string' ? v : isCelMap(v) && v.get(TAG) === 'cidr' ? v.get('text') : null;
  const c = typeof s === 'string' ? parseCidr(s) : null;
  if (!c) throw new Error(`network address parse error during conversion from string`);
  return c;
}
/** Kubernetes' ip()/isIP() refuse IPv4-mapped IPv6 addresses. */
function k8sIp(s: string): IpAddr | null {
  const ip = parseIp(s);
  return ip && !ip.mapped ? ip : null;
}
function k8sCidr(s: string): CidrPrefix | null {
  const c = parseCidr(s);
  return c && !c.ip.mapped ? c : null;
}

function tagged(kind: 'ip' | 'cidr', self: CelMap): boolean {
  return self.get(TAG) === kind;
}

export const KUBERNETES_NET_FUNCS: readonly CelFunc[] = [
  celFunc('isIP', [CelScalar.STRING], CelScalar.BOOL, (s) => k8sIp(s) !== null),
  celFunc('isCIDR', [CelScalar.STRING], CelScalar.BOOL, (s) => k8sCidr(s) !== null),
  celFunc('ip', [CelScalar.STRING], MAP, (s) => {
    const ip = k8sIp(s);
    if (!ip) throw new Error(`IP Address "${s}" parse error during conversion from string`);
    return ipValue(ip);
  }),
  celFunc('cidr', [CelScalar.STRING], MAP, (s) => {
    const c = k8sCidr(s);
    if (!c) throw new Error(`network address "${s}" parse error during conversion from string`);
    return cidrValue(c);
  }),
  celMethod('family', MAP, [], CelScalar.INT, function () {
    if (!tagged('ip', this)) throw new Error('family() needs an IP');
    return BigInt(asIp(this).family);
  }),
  celMethod('isUnspecified', MAP, [], CelScalar.BOOL, function () {
    return asIp(this).bytes.every((b) => b === 0);
  }),
  celMethod('isLoopback', MAP, [], CelScalar.BOOL, function () {
    const ip = asIp(this);
    return ip.family === 4
      ? ip.bytes[0] === 127
      : ip.bytes.slice(0, 15).every((b) => b === 0) && ip.bytes[15] === 1;
  }),
  celMethod('ip', MAP, [], MAP, function () {
    if (!tagged('cidr', this)) throw new Error('ip() needs a CIDR');
    return ipValue(asCidr(this).ip);
  }),
  celMethod('prefixLength', MAP, [], CelScalar.INT, function () {
    return BigInt(asCidr(this).prefixLength);
  }),
  celMethod('masked', MAP, [], MAP, function () {
    return cidrValue(maskCidr(asCidr(this)));
  }),
  celMethod('containsIP', MAP, [CelScalar.DYN], CelScalar.BOOL, function (other) {
    return cidrContainsIp(asCidr(this), asIp(other));
  }),
  celMethod('containsCIDR', MAP, [CelScalar.DYN], CelScalar.BOOL, function (other) {
    return cidrContainsCidr(asCidr(this), asCidr(other));
  }),
];

// ------------------------------------------------------------- wrapper

let sharedEnv: CelEnv | null = null;
function env(): CelEnv {
  sharedEnv ??= celEnv({ funcs: [...strings, ...KUBERNETES_NET_FUNCS] });
  return sharedEnv;
}

function issueFrom(e: unknown): CelIssue {
  const msg = e instanceof Error ? e.message : String(e);
  const m = /<input>:(\d+):(\d+):\s*(.*)/s.exec(msg);
  if (m)
    return { message: (m[3] ?? msg).split('\n')[0] ?? msg, line: Number(m[1]), col: Number(m[2]) };
  return { message: msg.split('\n')[0] ?? msg, line: null, col: null };
}

/**
 * Compiles a CEL expression over the named variables (`decls`, e.g. ['self']).
 * Values are bound at eval time; maps may be plain objects or Maps, integers
 * must be BigInt (see toCelValue).
 */
export function compile(source: string, decls: readonly string[]): CelCompileResult {
  let parsed;
  try {
    parsed = parse(source);
  } catch (e) {
    return { ok: false, issues: [issueFrom(e)] };
  }
  let run: (ctx?: Record<string, unknown>) => unknown;
  try {
    run = plan(env(), parsed) as unknown as (ctx?: Record<string, unknown>) => unknown;
  } catch (e) {
    return { ok: false, issues: [issueFrom(e)] };
  }
  const names = new Set(decls);
  const program: CelProgram = {
    source,
    eval(vars) {
      const ctx: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(vars)) {
        if (!names.has(k)) return { ok: false, error: `undeclared variable ${k}` };
        ctx[k] = v;
      }
      try {
        const r = run(ctx);
        if (isCelError(r)) return { ok: false, error: r.message };
        return { ok: true, value: fromCel(r) };
      } catch (e) {
        return { ok: false, error: e instanceof Error ? e.message : String(e) };
      }
    },
  };
  return { ok: true, program };
}

/**
 * JSON value → CEL input. Integers become BigInt where `isInteger(path)` says
 * the schema declares an integer (JSON numbers are otherwise CEL doubles).
 */
export function toCelValue(
  value: unknown,
  isInteger: (v: number) => boolean = Number.isInteger,
): unknown {
  if (typeof value === 'number') return isInteger(value) ? BigInt(value) : value;
  if (Array.isArray(value)) return value.map((v) => toCelValue(v, isInteger));
  if (value !== null && typeof value === 'object') {
    const m = new Map<string, unknown>();
    for (const [k, v] of Object.entries(value)) m.set(k, toCelValue(v, isInteger));
    return m;
  }
  return value;
}

function fromCel(v: unknown): unknown {
  if (typeof v === 'bigint') return Number(v);
  if (isCelList(v)) return [...v].map(fromCel);
  if (isCelMap(v)) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of v) out[String(k)] = fromCel(x);
    return out;
  }
  return v;
}

export { celError };
