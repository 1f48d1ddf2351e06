/**
 * The schema dialect the validator understands: the structural subset of
 * OpenAPI v3 that CRDs use (apiextensions.k8s.io/v1 JSONSchemaProps), plus
 * two Palisade-only keys for built-in kinds, whose rules live in Go code of the
 * API server rather than in a schema. Those two keys never appear in crds/.
 */
import type { FieldPath } from '../located.js';

export interface CelRule {
  readonly rule: string;
  readonly message?: string;
  readonly messageExpression?: string;
  readonly fieldPath?: string;
  readonly reason?: string;
}

/** Native string syntax checks of the API server (k8s.io/apimachinery/pkg/util/validation). */
export type NativeFormat =
  | 'label-key'
  | 'label-value'
  | 'qualified-name'
  | 'dns1123-subdomain'
  | 'dns1123-label'
  | 'port-name'
  | 'cidr'
  | 'ip';

export interface NativeIssue {
  /** Relative to the node the check is attached to. */
  readonly path: FieldPath;
  readonly kind: 'required' | 'format' | 'rule' | 'range';
  readonly message: string;
  /** Point at the key of the entry (map keys such as label keys). */
  readonly at?: 'key';
}

/** A Go-side validation function of a built-in kind, given the (type-checked) value. */
export type NativeCheck = (value: unknown) => readonly NativeIssue[];

export interface Schema {
  readonly type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  readonly description?: string;
  readonly properties?: Readonly<Record<string, Schema>>;
  readonly additionalProperties?: Schema | boolean;
  readonly required?: readonly string[];
  readonly items?: Schema;
  readonly enum?: readonly unknown[];
  readonly minimum?: number;
  readonly maximum?: number;
  readonly exclusiveMinimum?: boolean;
  readonly exclusiveMaximum?: boolean;
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly pattern?: string;
  readonly format?: string;
  readonly minItems?: number;
  readonly maxItems?: number;
  readonly minProperties?: number;
  readonly maxProperties?: number;
  readonly nullable?: boolean;
  readonly default?: unknown;
  readonly 'x-kubernetes-int-or-string'?: boolean;
  readonly 'x-kubernetes-preserve-unknown-fields'?: boolean;
  readonly 'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  readonly 'x-kubernetes-list-map-keys'?: readonly string[];
  readonly 'x-kubernetes-map-type'?: 'atomic' | 'granular';
  readonly 'x-kubernetes-validations'?: readonly CelRule[];
  /** Palisade only (built-in kinds): a native syntax check of a string. */
  readonly 'x-palisade-format'?: NativeFormat;
  /** Palisade only (built-in kinds): Go validation code of the API server. */
  readonly 'x-palisade-check'?: NativeCheck;
}
