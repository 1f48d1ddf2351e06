/** The schema validator on its own: keywords the kind schemas use, one by one. */
import { describe, expect, it } from 'vitest';
import type { Schema } from './schema/types.js';
import { validateAgainstSchema } from './validate.js';

const v = (value: unknown, schema: Schema) =>
  validateAgainstSchema(value, schema).map((i) => `${i.code} ${i.path.join('.')}: ${i.message}`);

describe('validateAgainstSchema', () => {
  it('CEL messageExpression and fieldPath', () => {
    const s: Schema = {
      type: 'object',
      properties: { a: { type: 'integer' }, b: { type: 'integer' } },
      'x-kubernetes-validations': [
        {
          rule: 'self.a < self.b',
          messageExpression: "'a (' + string(self.a) + ') must be below b'",
          fieldPath: '.b',
        },
      ],
    };
    expect(v({ a: 5, b: 3 }, s)).toEqual([
      'PAL027 b: a (5) must be below b (rule: self.a < self.b)',
    ]);
    expect(v({ a: 1, b: 3 }, s)).toEqual([]);
  });
  it('defaults are visible to CEL rules and satisfy required', () => {
    const s: Schema = {
      type: 'object',
      required: ['mode'],
      properties: { mode: { type: 'string', default: 'Enforce' } },
      'x-kubernetes-validations': [
        { rule: "self.mode == 'Enforce'", message: 'mode must be Enforce' },
      ],
    };
    expect(v({}, s)).toEqual([]);
    expect(v({ mode: 'Audit' }, s)).toEqual([
      "PAL027 : mode must be Enforce (rule: self.mode == 'Enforce')",
    ]);
  });
  it('rules that fail to evaluate are reported, not thrown', () => {
    const s: Schema = {
      type: 'object',
      'x-kubernetes-preserve-unknown-fields': true,
      'x-kubernetes-validations': [{ rule: 'self.missing == 1', message: 'm' }],
    };
    expect(v({}, s)[0]).toMatch(
      /^PAL027 : rule could not be evaluated: .* \(rule: self\.missing == 1\)$/,
    );
  });
  it('int-or-string, nullable, exclusive bounds, int32', () => {
    expect(v(true, { 'x-kubernetes-int-or-string': true })).toEqual([
      'PAL021 : wrong type (allowed: integer or string, got: boolean true)',
    ]);
    expect(v(null, { type: 'string', nullable: true })).toEqual([]);
    expect(v(0, { type: 'number', minimum: 0, exclusiveMinimum: true })).toEqual([
      'PAL024 : must be greater than 0 (allowed: > 0, got: 0)',
    ]);
    expect(v(2 ** 31, { type: 'integer', format: 'int32' })).toEqual([
      'PAL024 : does not fit in int32 (allowed: -2147483648..2147483647, got: 2147483648)',
    ]);
  });
  it('list-type map: duplicate keys', () => {
    const s: Schema = {
      type: 'array',
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['port', 'protocol'],
      items: {
        type: 'object',
        properties: { port: { type: 'integer' }, protocol: { type: 'string', default: 'TCP' } },
      },
    };
    expect(v([{ port: 1 }, { port: 1, protocol: 'UDP' }, { port: 1, protocol: 'TCP' }], s)).toEqual(
      ['PAL028 2: duplicate item (allowed: unique items, got: same as [0])'],
    );
  });
  it('additionalProperties: schema for map values, false for none', () => {
    expect(v({ a: 1 }, { type: 'object', additionalProperties: { type: 'string' } })).toEqual([
      'PAL021 a: wrong type (allowed: string, got: integer 1)',
    ]);
    expect(v({ a: 1 }, { type: 'object', additionalProperties: false })).toEqual([
      'PAL020 a: unknown field (allowed: none)',
    ]);
  });
  it('cross-field rules wait for type errors below them, not for enum errors', () => {
    const s: Schema = {
      type: 'object',
      properties: { n: { type: 'integer' }, e: { type: 'string', enum: ['x'] } },
      'x-kubernetes-validations': [{ rule: 'false', message: 'always' }],
    };
    expect(v({ n: 'a' }, s)).toEqual(['PAL021 n: wrong type (allowed: integer, got: string "a")']);
    expect(v({ e: 'y' }, s)).toEqual([
      'PAL023 e: unsupported value (allowed: "x", got: "y")',
      'PAL027 : always (rule: false)',
    ]);
  });
});
