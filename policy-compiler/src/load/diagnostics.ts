/**
 * Diagnostics of the loader: one shape for every problem, a stable code per
 * class (the CLI turns DIAGNOSTIC_CODES into SARIF rules) and one text form,
 * `file:line:col: field.path: what is wrong (allowed: …, got: …)`.
 */

export type Severity = 'error' | 'warning';

export interface Diagnostic {
  readonly severity: Severity;
  /** Stable code, e.g. PAL020; see DIAGNOSTIC_CODES. */
  readonly code: DiagnosticCode;
  readonly file: string;
  /** 1-based start and end of the offending node (end is exclusive). */
  readonly line: number;
  readonly col: number;
  readonly endLine: number;
  readonly endCol: number;
  /** Field path like `spec.ingress[0].from[1].namespaces`; '' for the whole document. */
  readonly path: string;
  /** What is wrong, ending in `(allowed: …, got: …)` where those are known. */
  readonly message: string;
}

export interface DiagnosticCodeInfo {
  readonly name: string;
  readonly shortDescription: string;
  readonly fullDescription: string;
  readonly help: string;
  readonly severity: Severity;
}

export const DIAGNOSTIC_CODES = {
  PAL001: {
    name: 'yaml-syntax',
    shortDescription: 'YAML syntax error',
    fullDescription: 'The document is not well-formed YAML (YAML 1.2 core schema).',
    help: 'Fix the YAML syntax at the reported position; `---` separates documents.',
    severity: 'error',
  },
  PAL002: {
    name: 'unreadable-input',
    shortDescription: 'Input is not readable UTF-8 text',
    fullDescription:
      'The input could not be read, or is not UTF-8 text (UTF-16/UTF-32 byte order marks, NUL bytes or invalid UTF-8 sequences).',
    help: 'Save the file as UTF-8 (a UTF-8 byte order mark is accepted).',
    severity: 'error',
  },
  PAL003: {
    name: 'resource-limit',
    shortDescription: 'Input exceeds a loader limit',
    fullDescription:
      'The input is larger, deeper or expands to more nodes (through aliases) than the loader accepts; see docs/validation.md for the limits.',
    help: 'Split the input or remove the excessive nesting or alias expansion.',
    severity: 'error',
  },
  PAL004: {
    name: 'not-an-object',
    shortDescription: 'Document is not a Kubernetes object',
    fullDescription: 'A document must be a mapping with apiVersion, kind and metadata.',
    help: 'Each YAML document must be one object (a mapping), or a List with items.',
    severity: 'error',
  },
  PAL005: {
    name: 'duplicate-key',
    shortDescription: 'Duplicate mapping key',
    fullDescription: 'A mapping has the same key twice; the API server rejects such input.',
    help: 'Remove one of the duplicate keys.',
    severity: 'error',
  },
  PAL010: {
    name: 'unknown-kind',
    shortDescription: 'Unknown or missing kind',
    fullDescription: 'The kind is missing or not one the loader knows.',
    help: 'Use one of the supported kinds listed in the message (docs/validation.md).',
    severity: 'error',
  },
  PAL011: {
    name: 'wrong-api-version',
    shortDescription: 'Wrong or missing apiVersion for the kind',
    fullDescription: 'The apiVersion is missing or does not serve this kind.',
    help: 'Use the apiVersion named in the message for this kind.',
    severity: 'error',
  },
  PAL020: {
    name: 'unknown-field',
    shortDescription: 'Unknown field',
    fullDescription:
      'The field is not declared in the schema of the kind (strict decoding, as `kubectl apply --validate=strict`).',
    help: 'Remove the field or fix its spelling; the message lists the allowed fields.',
    severity: 'error',
  },
  PAL021: {
    name: 'wrong-type',
    shortDescription: 'Value has the wrong type',
    fullDescription: 'The value does not have the type the schema declares.',
    help: 'Use a value of the type named in the message (quote strings that look like numbers or booleans).',
    severity: 'error',
  },
  PAL022: {
    name: 'required-field',
    shortDescription: 'Required field is missing',
    fullDescription: 'A field the schema requires is missing.',
    help: 'Add the field named in the message.',
    severity: 'error',
  },
  PAL023: {
    name: 'unsupported-value',
    shortDescription: 'Value is not one of the allowed values',
    fullDescription: 'The value is not in the enumeration the schema allows.',
    help: 'Use one of the allowed values listed in the message (values are case-sensitive).',
    severity: 'error',
  },
  PAL024: {
    name: 'out-of-range',
    shortDescription: 'Number out of range',
    fullDescription: 'A number is below the minimum or above the maximum the schema allows.',
    help: 'Use a number inside the allowed range.',
    severity: 'error',
  },
  PAL025: {
    name: 'size-limit',
    shortDescription: 'Too many or too few items, properties or characters',
    fullDescription:
      'A list, object or string has more or fewer entries than the schema allows (maxItems, minItems, maxProperties, minProperties, maxLength, minLength).',
    help: 'Respect the limit named in the message; exactly-one-of objects need exactly one field.',
    severity: 'error',
  },
  PAL026: {
    name: 'invalid-format',
    shortDescription: 'Value does not have the required format',
    fullDescription:
      'A string does not match the required syntax: pattern, CIDR, IP address, label key or value, DNS name, port name.',
    help: 'Fix the value to the syntax described in the message.',
    severity: 'error',
  },
  PAL027: {
    name: 'validation-rule',
    shortDescription: 'Validation rule failed',
    fullDescription:
      'A cross-field rule failed: a CEL x-kubernetes-validations rule of the CRD, or a rule of the API server for built-in kinds.',
    help: 'Fix the object so the rule named in the message holds.',
    severity: 'error',
  },
  PAL028: {
    name: 'duplicate-item',
    shortDescription: 'Duplicate item in a set or map list',
    fullDescription: 'A list declared as a set (x-kubernetes-list-type) holds the same item twice.',
    help: 'Remove the duplicate item.',
    severity: 'error',
  },
  PAL030: {
    name: 'duplicate-object',
    shortDescription: 'Object defined twice',
    fullDescription: 'Two documents define the same kind, cluster, namespace and name.',
    help: 'Remove or rename one of the two objects.',
    severity: 'error',
  },
  PAL040: {
    name: 'ignored-field',
    shortDescription: 'Field has no effect',
    fullDescription:
      'The field is accepted but has no effect, e.g. metadata.namespace on a cluster-scoped kind.',
    help: 'Remove the field.',
    severity: 'warning',
  },
} as const satisfies Record<string, DiagnosticCodeInfo>;

export type DiagnosticCode = keyof typeof DIAGNOSTIC_CODES;

/** `file:line:col: field.path: message` (the path part is left out for whole-document problems). */
export function formatDiagnostic(d: Diagnostic): string {
  const where = `${d.file}:${d.line}:${d.col}`;
  return d.path === '' ? `${where}: ${d.message}` : `${where}: ${d.path}: ${d.message}`;
}

export function hasErrors(ds: readonly Diagnostic[]): boolean {
  return ds.some((d) => d.severity === 'error');
}

/** Orders by file, then position, then code, so output is stable across runs. */
export function compareDiagnostics(a: Diagnostic, b: Diagnostic): number {
  if (a.file !== b.file) return a.file < b.file ? -1 : 1;
  if (a.line !== b.line) return a.line - b.line;
  if (a.col !== b.col) return a.col - b.col;
  if (a.path !== b.path) return a.path < b.path ? -1 : 1;
  return a.code < b.code ? -1 : a.code > b.code ? 1 : 0;
}
