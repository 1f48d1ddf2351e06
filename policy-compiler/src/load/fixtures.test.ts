/**
 * test/fixtures/invalid: each YAML file is rejected with exactly the
 * diagnostics in the `.expected` file beside it (text form plus code).
 * PALISADE_UPDATE_FIXTURES=1 rewrites the .expected files; review the diff.
 */
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatDiagnostic, loadWorldFromTexts } from './index.js';

const DIR = join('test', 'fixtures', 'invalid');
const files = readdirSync(DIR)
  .filter((f) => f.endsWith('.yaml'))
  .sort();

describe('invalid fixtures', () => {
  it('there are fixtures', () => {
    expect(files.length).toBeGreaterThanOrEqual(5);
  });
  it.each(files)('%s', (f) => {
    const file = join(DIR, f);
    const r = loadWorldFromTexts([{ file, text: readFileSync(file, 'utf8') }]);
    const got = r.diagnostics.map((d) => `${formatDiagnostic(d)} [${d.code}]`).join('\n') + '\n';
    const expectedFile = file.replace(/\.yaml$/, '.expected');
    if (process.env['PALISADE_UPDATE_FIXTURES'] === '1') writeFileSync(expectedFile, got);
    expect(got).toBe(readFileSync(expectedFile, 'utf8'));
    expect(r.diagnostics.some((d) => d.severity === 'error')).toBe(true);
  });
});
