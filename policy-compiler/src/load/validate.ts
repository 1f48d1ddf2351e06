/**
 * Structural schema validation (OpenAPI v3 subset of CRDs) plus CEL
 * x-kubernetes-validations, reporting every problem with its field path.
 * Messages follow the API server's wording, rewritten into our
 * `what is wrong (allowed: …, got: …)` form.
 */
import { compile, toCelValue, type CelProgram } from '../cel/index.js';
import type { DiagnosticCode } from './diagnostics.js';
import type { FieldPath, PathSegment } from './located.js';
import { checkFormat } from './schema/k8s-names.js';
import type { CelRule, Schema } from './schema/types.js';

export interface SchemaIssue {
  readonly code: DiagnosticCode;
  readonly path: FieldPath;
  readonly message: string;
  /**
   * What to point at: the value, the key of the entry (unknown fields, label
   * keys) or, for missing fields, the key of the parent object.
   */
  readonly at: 'key' | 'value' | 'parent';
}

const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;
const MAX_SHOWN = 60;

/** Short, bounded rendering of a value for messages. */
export function show(v: unknown): string {
  let s: string;
  if (typeof v === 'string') s = JSON.stringify(v);
  else if (Array.isArray(v)) s = `list of ${v.length}`;
  else if (v !== null && typeof v === 'object') s = 'object';
  else s = String(v);
  return s.length > MAX_SHOWN ? `${s.slice(0, MAX_SHOWN)}…` : s;
}

export function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function describe(v: unknown): string {
  const t = typeName(v);
  return t === 'array' || t === 'object' || t === 'null' ? t : `${t} ${show(v)}`;
}

/** A schema property by name: own properties only (a field called `constructor` is not Object's). */
function own(props: Readonly<Record<string, Schema>> | undefined, k: string): Schema | undefined {
  return props !== undefined && Object.hasOwn(props, k) ? props[k] : undefined;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function range(s: Schema): string {
  const lo = s.minimum;
  const hi = s.maximum;
  if (lo !== undefined && hi !== undefined && !s.exclusiveMinimum && !s.exclusiveMaximum)
    return `${lo}..${hi}`;
  const parts: string[] = [];
  if (lo !== undefined) parts.push(`${s.exclusiveMinimum ? '>' : '>='} ${lo}`);
  if (hi !== undefined) parts.push(`${s.exclusiveMaximum ? '<' : '<='} ${hi}`);
  return parts.join(' and ');
}

const programs = new Map<string, CelProgram | string>();
const patterns = new Map<string, RegExp>();

/** Schema patterns are ours or upstream's (never user input); compiled once. */
function patternOf(p: string): RegExp {
  let re = patterns.get(p);
  if (!re) {
    re = new RegExp(p, 'u');
    patterns.set(p, re);
  }
  return re;
}

/** Compiles (once) a rule; a string is the compile error. */
export function celProgram(rule: string): CelProgram | string {
  let p = programs.get(rule);
  if (p === undefined) {
    const r = compile(rule, ['self']);
    p = r.ok ? r.program : r.issues.map((i) => i.message).join('; ');
    programs.set(rule, p);
  }
  return p;
}

/** JSON value → CEL value following the schema (integers as BigInt, defaults filled in). */
function celValue(v: unknown, s: Schema | undefined): unknown {
  if (!s) return toCelValue(v);
  if (typeof v === 'number') {
    return s.type === 'number' ? v : Number.isInteger(v) ? BigInt(v) : v;
  }
  if (Array.isArray(v)) return v.map((x) => celValue(x, s.items));
  if (isPlainObject(v)) {
    const m = new Map<string, unknown>();
    for (const [k, x] of Object.entries(v)) {
      const sub =
        own(s.properties, k) ??
        (typeof s.additionalProperties === 'object' ? s.additionalProperties : undefined);
      m.set(k, celValue(x, sub));
    }
    for (const [k, sub] of Object.entries(s.properties ?? {})) {
      if (!m.has(k) && sub.default !== undefined) m.set(k, celValue(sub.default, sub));
    }
    return m;
  }
  return v;
}

function fieldPathSegments(fp: string): PathSegment[] {
  // `.spec.foo[0]` / `.spec['a.b']` → segments
  const out: PathSegment[] = [];
  const re = /\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\['([^']*)'\]/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(fp)) !== null) {
    if (m[1] !== undefined) out.push(m[1]);
    else if (m[2] !== undefined) out.push(Number(m[2]));
    else if (m[3] !== undefined) out.push(m[3]);
  }
  return out;
}

class Validator {
  readonly issues: SchemaIssue[] = [];
  /** Type errors and missing required fields so far: cross-field rules above them cannot run. */
  structural = 0;

  add(
    code: DiagnosticCode,
    path: FieldPath,
    message: string,
    at: SchemaIssue['at'] = 'value',
  ): void {
    if (code === 'PAL021' || code === 'PAL022') this.structural++;
    this.issues.push({ code, path, message, at });
  }

  node(v: unknown, s: Schema, path: PathSegment[]): void {
    const before = this.structural;
    if (!this.typeOk(v, s, path)) return;

    if (typeof v === 'string') this.string(v, s, path);
    else if (typeof v === 'number') this.number(v, s, path);
    if (s.enum && !s.enum.some((e) => e === v)) {
      this.add(
        'PAL023',
        path,
        `unsupported value (allowed: ${s.enum.map((e) => JSON.stringify(e)).join(', ')}, got: ${show(v)})`,
      );
    }
    if (Array.isArray(v)) this.array(v, s, path);
    else if (isPlainObject(v)) this.object(v, s, path);

    // Cross-field rules run on subtrees without type errors or missing
    // required fields, as they would fail on those rather than on what they check.
    if (this.structural === before) {
      const native = s['x-palisade-check'];
      if (native) {
        for (const i of native(v)) {
          const code: DiagnosticCode =
            i.kind === 'required'
              ? 'PAL022'
              : i.kind === 'format'
                ? 'PAL026'
                : i.kind === 'range'
                  ? 'PAL024'
                  : 'PAL027';
          this.add(code, [...path, ...i.path], i.message, i.at ?? 'value');
        }
      }
      for (const rule of s['x-kubernetes-validations'] ?? []) this.cel(v, s, rule, path);
    }
  }

  typeOk(v: unknown, s: Schema, path: FieldPath): boolean {
    if (s['x-kubernetes-int-or-string']) {
      if ((typeof v === 'number' && Number.isInteger(v)) || typeof v === 'string') return true;
      this.add('PAL021', path, `wrong type (allowed: integer or string, got: ${describe(v)})`);
      return false;
    }
    const t = s.type;
    if (t === undefined) return true;
    const ok =
      (t === 'object' && isPlainObject(v)) ||
      (t === 'array' && Array.isArray(v)) ||
      (t === 'string' && typeof v === 'string') ||
      (t === 'integer' && typeof v === 'number' && Number.isInteger(v)) ||
      (t === 'number' && typeof v === 'number') ||
      (t === 'boolean' && typeof v === 'boolean') ||
      (v === null && s.nullable === true);
    if (!ok) this.add('PAL021', path, `wrong type (allowed: ${t}, got: ${describe(v)})`);
    return ok;
  }

  string(v: string, s: Schema, path: FieldPath): void {
    if (s.maxLength !== undefined && [...v].length > s.maxLength) {
      this.add(
        'PAL025',
        path,
        `too long (allowed: at most ${s.maxLength} characters, got: ${[...v].length})`,
      );
    }
    if (s.minLength !== undefined && [...v].length < s.minLength) {
      this.add(
        'PAL025',
        path,
        `too short (allowed: at least ${s.minLength} characters, got: ${[...v].length})`,
      );
    }
    if (s.pattern !== undefined && !patternOf(s.pattern).test(v)) {
      this.add(
        'PAL026',
        path,
        `does not match the required pattern (allowed: ${s.pattern}, got: ${show(v)})`,
      );
    }
    const f = s['x-palisade-format'];
    if (f) for (const m of checkFormat(f, v)) this.add('PAL026', path, `${m} (got: ${show(v)})`);
  }

  number(v: number, s: Schema, path: FieldPath): void {
    if (s.format === 'int32' && (v < INT32_MIN || v > INT32_MAX)) {
      this.add(
        'PAL024',
        path,
        `does not fit in int32 (allowed: ${INT32_MIN}..${INT32_MAX}, got: ${v})`,
      );
      return;
    }
    if (s.maximum !== undefined && (s.exclusiveMaximum ? v >= s.maximum : v > s.maximum)) {
      const rel = s.exclusiveMaximum ? 'less than' : 'less than or equal to';
      this.add('PAL024', path, `must be ${rel} ${s.maximum} (allowed: ${range(s)}, got: ${v})`);
    }
    if (s.minimum !== undefined && (s.exclusiveMinimum ? v <= s.minimum : v < s.minimum)) {
      const rel = s.exclusiveMinimum ? 'greater than' : 'greater than or equal to';
      this.add('PAL024', path, `must be ${rel} ${s.minimum} (allowed: ${range(s)}, got: ${v})`);
    }
  }

  array(v: unknown[], s: Schema, path: PathSegment[]): void {
    if (s.maxItems !== undefined && v.length > s.maxItems) {
      this.add('PAL025', path, `too many items (allowed: at most ${s.maxItems}, got: ${v.length})`);
    }
    if (s.minItems !== undefined && v.length < s.minItems) {
      this.add('PAL025', path, `too few items (allowed: at least ${s.minItems}, got: ${v.length})`);
    }
    // Bound the work on oversized lists: items past a generous cap are refused, not inspected.
    const cap = Math.max((s.maxItems ?? 10_000) * 4, 1_000);
    if (v.length > cap && s.maxItems === undefined) {
      this.add(
        'PAL025',
        path,
        `too many items to check (allowed: at most ${cap}, got: ${v.length})`,
      );
    }
    const items = s.items;
    v.slice(0, cap).forEach((x, i) => {
      if (items) this.node(x, items, [...path, i]);
    });
    const lt = s['x-kubernetes-list-type'];
    if (lt === 'set' || lt === 'map') {
      const seen = new Map<string, number>();
      v.slice(0, cap).forEach((x, i) => {
        const keyOf =
          lt === 'map' && isPlainObject(x)
            ? JSON.stringify(
                (s['x-kubernetes-list-map-keys'] ?? []).map(
                  (k) =>
                    (Object.hasOwn(x, k) ? x[k] : own(s.items?.properties, k)?.default) ?? null,
                ),
              )
            : JSON.stringify(x);
        const first = seen.get(keyOf);
        if (first !== undefined) {
          this.add(
            'PAL028',
            [...path, i],
            `duplicate item (allowed: unique items, got: same as [${first}])`,
          );
        } else seen.set(keyOf, i);
      });
    }
  }

  object(v: Record<string, unknown>, s: Schema, path: PathSegment[]): void {
    const props = s.properties ?? {};
    const declared = Object.keys(props);
    const extra = s.additionalProperties;
    const keys = Object.keys(v);
    for (const k of keys) {
      const sub = own(props, k);
      if (sub) this.node(v[k], sub, [...path, k]);
      else if (typeof extra === 'object') this.node(v[k], extra, [...path, k]);
      else if (extra === true || s['x-kubernetes-preserve-unknown-fields']) continue;
      else if (s.properties !== undefined || extra === false) {
        const allowed = declared.length > 0 ? declared.slice().sort().join(', ') : 'none';
        this.add('PAL020', [...path, k], `unknown field (allowed: ${allowed})`, 'key');
      }
    }
    for (const r of s.required ?? []) {
      if (!Object.hasOwn(v, r) && own(props, r)?.default === undefined) {
        this.add('PAL022', [...path, r], 'required field is missing', 'parent');
      }
    }
    const n = keys.length;
    const min = s.minProperties;
    const max = s.maxProperties;
    if (min === 1 && max === 1 && n !== 1) {
      const set = keys.length > 0 ? keys.join(', ') : 'none';
      this.add(
        'PAL025',
        path,
        `exactly one field must be set (allowed: one of ${declared.join(', ')}, got: ${set})`,
      );
    } else {
      if (max !== undefined && n > max) {
        this.add(
          'PAL025',
          path,
          `too many fields (allowed: at most ${max}, got: ${n}: ${keys.join(', ')})`,
        );
      }
      if (min !== undefined && n < min) {
        this.add(
          'PAL025',
          path,
          `too few fields (allowed: at least ${min} of ${declared.join(', ')}, got: ${n})`,
        );
      }
    }
  }

  cel(v: unknown, s: Schema, rule: CelRule, path: PathSegment[]): void {
    const p = celProgram(rule.rule);
    const where = rule.fieldPath ? [...path, ...fieldPathSegments(rule.fieldPath)] : path;
    if (typeof p === 'string') {
      this.add('PAL027', where, `rule does not compile: ${p} (rule: ${rule.rule})`);
      return;
    }
    const self = celValue(v, s);
    const r = p.eval({ self });
    if (!r.ok) {
      this.add('PAL027', where, `rule could not be evaluated: ${r.error} (rule: ${rule.rule})`);
      return;
    }
    if (r.value === true) return;
    let message = rule.message ?? `failed rule: ${rule.rule}`;
    if (rule.messageExpression) {
      const mp = celProgram(rule.messageExpression);
      if (typeof mp !== 'string') {
        const mr = mp.eval({ self });
        if (mr.ok && typeof mr.value === 'string' && mr.value !== '') message = mr.value;
      }
    }
    const got = typeof v === 'string' || typeof v === 'number' ? `, got: ${show(v)}` : '';
    this.add('PAL027', where, `${message} (rule: ${rule.rule}${got})`);
  }
}

/** Validates `value` against `schema`; every problem is returned, none thrown. */
export function validateAgainstSchema(
  value: unknown,
  schema: Schema,
  base: FieldPath = [],
): SchemaIssue[] {
  const v = new Validator();
  v.node(value, schema, [...base]);
  return v.issues;
}
