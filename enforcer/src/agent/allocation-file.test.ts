import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { compile } from '../../../policy-compiler/src/compile/compile.js';
import { buildWorld, namespace, node, pod } from '../../../test/support/world-builder.js';
import {
  parseAllocation,
  readAllocationFile,
  serializeAllocation,
  writeAllocationFile,
} from './allocation-file.js';

const dir = mkdtempSync(join(tmpdir(), 'palisade-alloc-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('allocation file', () => {
  const world = buildWorld({
    namespaces: [namespace('c1/a')],
    pods: [
      pod('c1/a/x', { ip: '10.0.0.1', labels: { app: 'x' } }),
      pod('c1/a/y', { ip: '10.0.0.2', labels: { app: 'y' } }),
    ],
  });

  it('round-trips a real allocation, and a compile with it changes no number', () => {
    const first = compile(world);
    if (!first.ok) throw new Error(first.error.message);
    const path = join(dir, 'allocation.json');
    writeAllocationFile(path, first.compiled.allocation);
    const back = readAllocationFile(path);
    if (back === null || 'error' in back) throw new Error(`not read back: ${JSON.stringify(back)}`);
    expect(serializeAllocation(back)).toBe(serializeAllocation(first.compiled.allocation));
    const again = compile(world, { previous: back });
    if (!again.ok) throw new Error(again.error.message);
    expect(serializeAllocation(again.compiled.allocation)).toBe(serializeAllocation(back));
  });

  it('keeps node numbers: a node that stays keeps its number when another goes', () => {
    const withNodes = (names: string[]) =>
      buildWorld({
        namespaces: [namespace('c1/a')],
        nodes: names.map((n, i) => node(`c1/${n}`, { ip: `192.168.0.${i + 1}` })),
        pods: [pod('c1/a/x', { ip: '10.0.0.1', node: 'n2' })],
      });
    const first = compile(withNodes(['n1', 'n2']));
    if (!first.ok) throw new Error(first.error.message);
    const n2 = first.compiled.allocation.nodes?.get('node:c1/n2');
    expect(n2).toBe(2);
    const path = join(dir, 'nodes.json');
    writeAllocationFile(path, first.compiled.allocation);
    const back = readAllocationFile(path);
    if (back === null || 'error' in back) throw new Error(`not read back: ${JSON.stringify(back)}`);
    const again = compile(withNodes(['n2']), { previous: back });
    if (!again.ok) throw new Error(again.error.message);
    expect(again.compiled.allocation.nodes?.get('node:c1/n2')).toBe(n2);
    // A file from before node numbers were kept still reads (nodes are then numbered afresh).
    const old = parseAllocation(
      JSON.stringify({ version: 1, identities: [], tables: [], cookies: [] }),
    );
    expect(old).not.toHaveProperty('error');
    expect(old).not.toHaveProperty('nodes');
  });

  it('a missing file is null; a damaged one is an error naming the field', () => {
    expect(readAllocationFile(join(dir, 'none.json'))).toBeNull();
    const bad = join(dir, 'bad.json');
    writeFileSync(
      bad,
      JSON.stringify({ version: 1, identities: [['k', -1]], tables: [], cookies: [] }),
    );
    expect(readAllocationFile(bad)).toEqual({
      error: 'identities[0] must be [key, non-negative integer]',
    });
    expect(parseAllocation('{')).toHaveProperty('error');
    expect(parseAllocation('{"version":2}')).toEqual({ error: 'version must be 1' });
  });
});
