/**
 * Schema pieces shared by every kind: ObjectMeta (validated natively by the
 * API server for every kind, CRDs included) and metav1.LabelSelector.
 */
import { labelValue, qualifiedName } from './k8s-names.js';
import type { NativeCheck, NativeIssue, Schema } from './types.js';

const str: Schema = { type: 'string' };
const strList: Schema = { type: 'array', items: str };
const strMap: Schema = { type: 'object', additionalProperties: str };

/** ValidateLabels: keys are qualified names, values label values. */
const checkLabels: NativeCheck = (v) => {
  const out: NativeIssue[] = [];
  for (const [k, val] of Object.entries(v as Record<string, string>)) {
    for (const m of qualifiedName(k))
      out.push({
        path: [k],
        kind: 'format',
        message: `invalid label key: ${m} (got: ${JSON.stringify(k)})`,
        at: 'key',
      });
    for (const m of labelValue(val))
      out.push({
        path: [k],
        kind: 'format',
        message: `invalid label value: ${m} (got: ${JSON.stringify(val)})`,
      });
  }
  return out;
};

const TOTAL_ANNOTATION_SIZE = 256 * 1024;
/** ValidateAnnotations: keys are qualified names (lowercased), total size ≤ 256 KiB. */
const checkAnnotations: NativeCheck = (v) => {
  const out: NativeIssue[] = [];
  let size = 0;
  for (const [k, val] of Object.entries(v as Record<string, string>)) {
    size += k.length + val.length;
    for (const m of qualifiedName(k.toLowerCase()))
      out.push({
        path: [k],
        kind: 'format',
        message: `invalid annotation key: ${m} (got: ${JSON.stringify(k)})`,
        at: 'key',
      });
  }
  if (size > TOTAL_ANNOTATION_SIZE) {
    out.push({
      path: [],
      kind: 'rule',
      message: `annotations too long (allowed: at most ${TOTAL_ANNOTATION_SIZE} bytes, got: ${size})`,
    });
  }
  return out;
};

export const LABELS: Schema = { ...strMap, 'x-palisade-check': checkLabels };

/** ObjectMeta as the API server decodes it (strict: unknown fields are errors). */
export function objectMeta(
  nameFormat: 'dns1123-subdomain' | 'dns1123-label',
  namespaced: boolean,
): Schema {
  return {
    type: 'object',
    required: ['name'],
    properties: {
      name: { type: 'string', 'x-palisade-format': nameFormat },
      generateName: str,
      namespace: namespaced ? { type: 'string', 'x-palisade-format': 'dns1123-label' } : str,
      selfLink: str,
      uid: str,
      resourceVersion: str,
      generation: { type: 'integer', format: 'int64' },
      creationTimestamp: { 'x-kubernetes-preserve-unknown-fields': true },
      deletionTimestamp: { 'x-kubernetes-preserve-unknown-fields': true },
      deletionGracePeriodSeconds: { type: 'integer', format: 'int64' },
      labels: LABELS,
      annotations: { ...strMap, 'x-palisade-check': checkAnnotations },
      ownerReferences: {
        type: 'array',
        items: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
      },
      finalizers: strList,
      managedFields: {
        type: 'array',
        items: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
      },
    },
  };
}

const OPERATORS = ['In', 'NotIn', 'Exists', 'DoesNotExist'];

/**
 * metav1 ValidateLabelSelector. The API server runs it for built-in kinds; for
 * CRD kinds it does not, but every implementation fails converting such a
 * selector (metav1.LabelSelectorAsSelector), so the loader checks it for all
 * kinds (docs/validation.md).
 */
export const checkSelector: NativeCheck = (v) => {
  const out: NativeIssue[] = [];
  const sel = v as {
    matchLabels?: Record<string, string>;
    matchExpressions?: Array<{ key: string; operator: string; values?: string[] }>;
  };
  for (const [k, val] of Object.entries(sel.matchLabels ?? {})) {
    for (const m of qualifiedName(k))
      out.push({
        path: ['matchLabels', k],
        kind: 'format',
        message: `invalid label key: ${m} (got: ${JSON.stringify(k)})`,
        at: 'key',
      });
    for (const m of labelValue(val))
      out.push({
        path: ['matchLabels', k],
        kind: 'format',
        message: `invalid label value: ${m} (got: ${JSON.stringify(val)})`,
      });
  }
  (sel.matchExpressions ?? []).forEach((e, i) => {
    const p = ['matchExpressions', i];
    const n = e.values?.length ?? 0;
    switch (e.operator) {
      case 'In':
      case 'NotIn':
        if (n === 0)
          out.push({
            path: [...p, 'values'],
            kind: 'required',
            message: "must be specified when `operator` is 'In' or 'NotIn'",
          });
        break;
      case 'Exists':
      case 'DoesNotExist':
        if (n > 0)
          out.push({
            path: [...p, 'values'],
            kind: 'rule',
            message: "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
          });
        break;
      default:
        out.push({
          path: [...p, 'operator'],
          kind: 'rule',
          message: `not a valid selector operator (allowed: ${OPERATORS.map((o) => JSON.stringify(o)).join(', ')}, got: ${JSON.stringify(e.operator)})`,
        });
    }
    for (const m of qualifiedName(e.key))
      out.push({
        path: [...p, 'key'],
        kind: 'format',
        message: `${m} (got: ${JSON.stringify(e.key)})`,
      });
    (e.values ?? []).forEach((val, j) => {
      for (const m of labelValue(val))
        out.push({
          path: [...p, 'values', j],
          kind: 'format',
          message: `${m} (got: ${JSON.stringify(val)})`,
        });
    });
  });
  return out;
};

/** metav1.LabelSelector, structurally as in the upstream CRDs, plus its native check. */
export const LABEL_SELECTOR: Schema = {
  type: 'object',
  'x-kubernetes-map-type': 'atomic',
  properties: {
    matchExpressions: {
      type: 'array',
      'x-kubernetes-list-type': 'atomic',
      items: {
        type: 'object',
        required: ['key', 'operator'],
        properties: {
          key: str,
          operator: str,
          values: { type: 'array', items: str, 'x-kubernetes-list-type': 'atomic' },
        },
      },
    },
    matchLabels: strMap,
  },
  'x-palisade-check': checkSelector,
};

/** Top level of every object: apiVersion, kind, metadata, then the kind's own fields. */
export function topLevel(
  meta: Schema,
  fields: Record<string, Schema>,
  required: string[] = [],
): Schema {
  return {
    type: 'object',
    required: ['metadata', ...required],
    properties: { apiVersion: str, kind: str, metadata: meta, ...fields },
  };
}
