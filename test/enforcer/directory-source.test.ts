import { mkdirSync, mkdtempSync, rmSync, symlinkSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DirectorySource, type SourceSnapshot } from '../../enforcer/src/sources/index.js';
import { waitFor } from './wait.js';

const root = mkdtempSync(join(tmpdir(), 'palisade-dir-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function fresh(name: string): string {
  const d = join(root, name);
  mkdirSync(d);
  return d;
}

const files = (s: SourceSnapshot | undefined, dir: string): string[] =>
  (s?.inputs ?? []).map((i) => i.file.slice(dir.length + 1));

describe('directory source', () => {
  it('emits a snapshot at start, then on change (watch), only when content changed', async () => {
    const dir = fresh('watch');
    writeFileSync(join(dir, 'a.yaml'), 'kind: Namespace\n');
    writeFileSync(join(dir, 'notes.txt'), 'ignored');
    const snaps: SourceSnapshot[] = [];
    const src = new DirectorySource({
      dir,
      debounceMs: 50,
      rescanMs: 0,
      onSnapshot: (s) => snaps.push(s),
    });
    await src.start();
    try {
      expect(snaps).toHaveLength(1);
      expect(files(snaps[0], dir)).toEqual(['a.yaml']);
      expect(snaps[0]?.inputs[0]?.text).toBe('kind: Namespace\n');
      mkdirSync(join(dir, 'sub'));
      writeFileSync(join(dir, 'sub', 'b.yml'), 'kind: Pod\n');
      await waitFor('b.yml', () => files(snaps.at(-1), dir).includes('sub/b.yml'));
      // Rewriting identical content is not a change.
      const n = snaps.length;
      writeFileSync(join(dir, 'a.yaml'), 'kind: Namespace\n');
      await src.rescan();
      expect(snaps.length).toBe(n);
      rmSync(join(dir, 'a.yaml'));
      await waitFor('a.yaml removed', () => !files(snaps.at(-1), dir).includes('a.yaml'));
    } finally {
      src.stop();
    }
  });

  it('debounces a burst into fewer snapshots that converge on the final state', async () => {
    const dir = fresh('burst');
    const snaps: SourceSnapshot[] = [];
    const src = new DirectorySource({
      dir,
      debounceMs: 150,
      rescanMs: 0,
      onSnapshot: (s) => snaps.push(s),
    });
    await src.start();
    try {
      for (let i = 0; i < 20; i++)
        writeFileSync(join(dir, `p${String(i).padStart(2, '0')}.yaml`), `n: ${i}\n`);
      await waitFor('all 20', () => files(snaps.at(-1), dir).length === 20);
      expect(snaps.length - 1).toBeLessThan(20);
    } finally {
      src.stop();
    }
  });

  it('periodic rescan finds changes without fs.watch', async () => {
    const dir = fresh('poll');
    const snaps: SourceSnapshot[] = [];
    const src = new DirectorySource({
      dir,
      watch: false,
      rescanMs: 50,
      onSnapshot: (s) => snaps.push(s),
    });
    await src.start();
    try {
      writeFileSync(join(dir, 'x.json'), '{"kind":"Namespace"}');
      await waitFor('x.json by rescan', () => files(snaps.at(-1), dir).includes('x.json'));
    } finally {
      src.stop();
    }
  });

  it('follows a ConfigMap-style ..data symlink swap and skips hidden entries', async () => {
    const dir = fresh('configmap');
    const v1 = join(dir, '..v1');
    mkdirSync(v1);
    writeFileSync(join(v1, 'policy.yaml'), 'rev: 1\n');
    symlinkSync('..v1', join(dir, '..data'));
    symlinkSync('..data/policy.yaml', join(dir, 'policy.yaml'));
    const snaps: SourceSnapshot[] = [];
    const src = new DirectorySource({
      dir,
      debounceMs: 50,
      rescanMs: 200,
      onSnapshot: (s) => snaps.push(s),
    });
    await src.start();
    try {
      expect(files(snaps[0], dir)).toEqual(['policy.yaml']);
      expect(snaps[0]?.inputs[0]?.text).toBe('rev: 1\n');
      const v2 = join(dir, '..v2');
      mkdirSync(v2);
      writeFileSync(join(v2, 'policy.yaml'), 'rev: 2\n');
      symlinkSync('..v2', join(dir, '..data_tmp'));
      renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
      await waitFor('rev 2', () => snaps.at(-1)?.inputs[0]?.text === 'rev: 2\n');
    } finally {
      src.stop();
    }
  });

  it('reports oversized files as problems and still loads the rest', async () => {
    const dir = fresh('big');
    writeFileSync(join(dir, 'ok.yaml'), 'a: 1\n');
    writeFileSync(join(dir, 'huge.yaml'), 'x'.repeat(2000));
    let snap: SourceSnapshot | undefined;
    const src = new DirectorySource({
      dir,
      watch: false,
      rescanMs: 0,
      maxFileBytes: 1000,
      onSnapshot: (s) => (snap = s),
    });
    await src.start();
    src.stop();
    expect(files(snap, dir)).toEqual(['ok.yaml']);
    expect(snap?.problems).toEqual([
      { file: 'huge.yaml', message: 'file is 2000 bytes, limit 1000' },
    ]);
  });
  it('sees every one of repeated atomic replaces of one file, in nested directories too, without a rescan', async () => {
    const dir = fresh('replace');
    mkdirSync(join(dir, 'nested'));
    const snaps: SourceSnapshot[] = [];
    const src = new DirectorySource({
      dir,
      debounceMs: 20,
      rescanMs: 0,
      onSnapshot: (s) => snaps.push(s),
    });
    const textOf = (rel: string): string | undefined =>
      snaps.at(-1)?.inputs.find((i) => i.file === join(dir, rel))?.text;
    await src.start();
    try {
      for (const rel of ['policy.yaml', join('nested', 'policy.yaml')]) {
        for (let i = 0; i < 10; i++) {
          // What editors and `kubectl cp` do: write a temporary file, rename it over.
          const tmp = join(dir, `.tmp-${i}`);
          writeFileSync(tmp, `revision: ${i}\n`);
          renameSync(tmp, join(dir, rel));
          await waitFor(`${rel} revision ${i}`, () => textOf(rel) === `revision: ${i}\n`, 5_000);
        }
      }
    } finally {
      src.stop();
    }
  });
});
