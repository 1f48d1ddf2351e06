import { describe, expect, it } from 'vitest';
import { formatDiagnostic, loadWorldFromTexts, readInputs } from './index.js';

describe('examples/world', () => {
  it('loads without diagnostics and with every kind decoded', async () => {
    const r = await readInputs(['examples/world']);
    expect(r.diagnostics).toEqual([]);
    const res = loadWorldFromTexts(r.inputs);
    expect(res.diagnostics.map(formatDiagnostic)).toEqual([]);
    expect(res.world.clusters.map((c) => c.name)).toEqual(['east', 'west']);
    expect(res.world.pods.length).toBeGreaterThanOrEqual(10);
    expect(new Set(res.world.clusterPolicies.map((p) => p.kind)).size).toBe(4);
    expect(res.objects.every((o) => o.valid)).toBe(true);
  });
});
