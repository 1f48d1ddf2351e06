/**
 * crds/ is the single source of truth of our kinds: the generated module the
 * loader bundles must equal what the YAML says, and the CRDs must be the kind
 * of objects the API server accepts (structural, compiling CEL rules).
 */
import { describe, expect, it } from 'vitest';
import { celProgram } from '../validate.js';
import { CRD_SCHEMAS } from './crd-schemas.generated.js';
// @ts-expect-error -- plain .mjs generator without types
import { crdsFromDir } from './generate-crd-module.mjs';
import type { Schema } from './types.js';

function walk(s: Schema, path: string, visit: (s: Schema, path: string) => void): void {
  visit(s, path);
  for (const [k, v] of Object.entries(s.properties ?? {})) walk(v, `${path}.${k}`, visit);
  if (s.items) walk(s.items, `${path}[]`, visit);
  if (typeof s.additionalProperties === 'object') walk(s.additionalProperties, `${path}{}`, visit);
}

describe('crds/', () => {
  it('the bundled module matches crds/*.palisade.dev.yaml (regenerate with generate-crd-module.mjs)', () => {
    expect(CRD_SCHEMAS).toEqual(crdsFromDir('crds'));
  });
  it('serves MeshNetworkPolicy and Cluster as cluster-scoped palisade.dev/v1alpha1 with a status subresource', () => {
    expect(
      CRD_SCHEMAS.map((c) => [c.kind, `${c.group}/${c.version}`, c.scope, c.statusSubresource]),
    ).toEqual([
      ['Cluster', 'palisade.dev/v1alpha1', 'Cluster', true],
      ['MeshNetworkPolicy', 'palisade.dev/v1alpha1', 'Cluster', true],
    ]);
  });
  it('schemas are structural: every node has a type, only known keywords, rules compile', () => {
    const known = new Set([
      'type',
      'description',
      'properties',
      'additionalProperties',
      'required',
      'items',
      'enum',
      'minimum',
      'maximum',
      'minLength',
      'maxLength',
      'pattern',
      'format',
      'minItems',
      'maxItems',
      'minProperties',
      'maxProperties',
      'default',
      'nullable',
      'x-kubernetes-list-type',
      'x-kubernetes-list-map-keys',
      'x-kubernetes-map-type',
      'x-kubernetes-validations',
      'x-kubernetes-preserve-unknown-fields',
      'x-kubernetes-int-or-string',
    ]);
    for (const crd of CRD_SCHEMAS) {
      walk(crd.schema, crd.kind, (s, path) => {
        expect(
          s.type ?? (s['x-kubernetes-int-or-string'] ? 'int-or-string' : undefined),
          path,
        ).toBeDefined();
        for (const k of Object.keys(s)) expect(known.has(k), `${path}: ${k}`).toBe(true);
        for (const r of s['x-kubernetes-validations'] ?? []) {
          expect(typeof celProgram(r.rule), `${path}: ${r.rule}`).toBe('object');
          expect(r.message, `${path}: ${r.rule}`).toBeTruthy();
        }
        if (s.pattern) expect(() => new RegExp(s.pattern as string, 'u')).not.toThrow();
      });
    }
  });
  it('MeshNetworkPolicy keeps the ClusterNetworkPolicy v1alpha2 limits', () => {
    const mnp = CRD_SCHEMAS.find((c) => c.kind === 'MeshNetworkPolicy')?.schema.properties?.[
      'spec'
    ];
    const p = mnp?.properties ?? {};
    expect(p['priority']).toMatchObject({ minimum: 0, maximum: 1000 });
    expect(p['ingress']?.maxItems).toBe(25);
    expect(p['egress']?.items?.properties?.['to']).toMatchObject({ minItems: 1, maxItems: 25 });
    expect(p['ingress']?.items?.properties?.['name']?.maxLength).toBe(100);
    expect(p['ingress']?.items?.properties?.['action']?.enum).toEqual(['Accept', 'Deny', 'Pass']);
  });
});
