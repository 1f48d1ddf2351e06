import { mkdtemp, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatDiagnostic, loadWorldFromTexts, readInputs } from './index.js';

const ns = (name: string) => `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${name}}\n`;

describe('readInputs', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'palisade-read-'));
    await mkdir(join(dir, 'sub', 'deeper'), { recursive: true });
    await writeFile(join(dir, 'b.yaml'), ns('b'));
    await writeFile(join(dir, 'a.yml'), ns('a'));
    await writeFile(
      join(dir, 'c.json'),
      JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'c' } }),
    );
    await writeFile(join(dir, 'notes.txt'), 'not yaml');
    await writeFile(join(dir, 'sub', 'deeper', 'd.yaml'), ns('d'));
    await writeFile(
      join(dir, 'bom.yaml'),
      Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(ns('bom'))]),
    );
    await writeFile(
      join(dir, 'utf16.yaml'),
      Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(ns('x'), 'utf16le')]),
    );
    await writeFile(
      join(dir, 'latin1.yaml'),
      Buffer.from('apiVersion: v1\nkind: Namespace\nmetadata: {name: caf\xe9}\n', 'latin1'),
    );
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads a directory recursively, *.yaml|*.yml|*.json in sorted order, refusing non-UTF-8', async () => {
    const r = await readInputs([dir]);
    expect(r.inputs.map((i) => i.file.slice(dir.length + 1))).toEqual([
      'a.yml',
      'b.yaml',
      'bom.yaml',
      'c.json',
      'sub/deeper/d.yaml',
    ]);
    expect(
      r.diagnostics.map((d) => `${d.file.slice(dir.length + 1)}: ${d.code} ${d.message}`),
    ).toEqual([
      'latin1.yaml: PAL002 input is not valid UTF-8 (allowed: UTF-8 text)',
      'utf16.yaml: PAL002 input is UTF-16 or UTF-32 (byte order mark found; allowed: UTF-8)',
    ]);
    const w = loadWorldFromTexts(r.inputs);
    expect(w.diagnostics).toEqual([]);
    expect(w.world.namespaces.map((n) => n.name)).toEqual(['a', 'b', 'bom', 'c', 'd']);
  });
  it('follows symlinks to files, skips hidden entries and directory links (ConfigMap volume layout)', async () => {
    const cm = join(dir, 'configmap');
    await mkdir(join(cm, '..2024_01_01'), { recursive: true });
    await writeFile(join(cm, '..2024_01_01', 'ns.yaml'), ns('cm'));
    await symlink('..2024_01_01', join(cm, '..data'));
    await symlink(join('..data', 'ns.yaml'), join(cm, 'ns.yaml'));
    await symlink('nowhere.yaml', join(cm, 'broken.yaml'));
    await symlink(cm, join(cm, 'loop'));
    const r = await readInputs([cm]);
    expect(r.inputs.map((i) => i.file)).toEqual([join(cm, 'ns.yaml')]);
    expect(r.diagnostics.map((d) => `${d.file}: ${d.message}`)).toEqual([
      `${join(cm, 'broken.yaml')}: broken symbolic link`,
    ]);
    await rm(cm, { recursive: true, force: true });
  });
  it('reads `-` from stdin once, and files as given', async () => {
    const stdin = Readable.from([Buffer.from(ns('from-stdin'))]);
    const r = await readInputs(['-', join(dir, 'b.yaml'), '-'], stdin);
    expect(r.inputs.map((i) => i.file)).toEqual(['<stdin>', join(dir, 'b.yaml')]);
    expect(loadWorldFromTexts(r.inputs).world.namespaces.map((n) => n.name)).toEqual([
      'b',
      'from-stdin',
    ]);
  });
  it('stdin with UTF-16 without BOM is refused', async () => {
    const r = await readInputs(['-'], Readable.from([Buffer.from(ns('x'), 'utf16le')]));
    expect(r.diagnostics.map(formatDiagnostic)).toEqual([
      '<stdin>:1:1: input contains NUL bytes at offset 1: binary data or not UTF-8 (UTF-16 or UTF-32 without byte order mark?) (allowed: UTF-8 text)',
    ]);
  });
  it('missing paths and oversized files are diagnostics', async () => {
    const big = join(dir, 'big.yaml');
    await writeFile(big, 'x'.repeat(2048));
    const r = await readInputs([join(dir, 'nope.yaml'), big], undefined, 1024);
    expect(r.diagnostics.map((d) => `${d.code} ${d.message}`)).toEqual([
      'PAL002 no such file or directory',
      'PAL003 input too large (allowed: at most 1024 bytes, got: 2048)',
    ]);
    await rm(big);
  });
  it('oversized stdin is refused without reading it all', async () => {
    const chunks = Array.from({ length: 10 }, () => Buffer.alloc(512, 0x61));
    const r = await readInputs(['-'], Readable.from(chunks), 1024);
    expect(r.diagnostics.map((d) => d.message)).toEqual([
      'input too large (allowed: at most 1024 bytes, got: more than 1024)',
    ]);
  });
});
