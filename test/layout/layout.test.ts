/**
 * Pins the TypeScript layout table to bpf/include/palisade.h: a C program
 * compiled with `cc` against the header prints sizeof/offsetof of every field
 * and the constants the compiler uses; both sides must agree exactly.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LAYOUT, PAL } from '../../policy-compiler/src/encode/layout.js';
import {
  decodePolicyKey,
  decodePolicyValue,
  encodePolicyKey,
  encodePolicyValue,
  encodeIpcacheKey,
  decodeIpcacheKey,
} from '../../policy-compiler/src/encode/codec.js';

const header = resolve(import.meta.dirname, '../../bpf/include');
let dir = '';
let printed: Record<string, number> = {};

function cProgram(): string {
  const lines: string[] = [];
  for (const [struct, l] of Object.entries(LAYOUT)) {
    lines.push(`printf("${struct}.size %zu\\n", sizeof(struct ${struct}));`);
    for (const field of Object.keys(l.fields)) {
      lines.push(
        `printf("${struct}.${field}.offset %zu\\n", offsetof(struct ${struct}, ${field}));`,
      );
      lines.push(
        `printf("${struct}.${field}.size %zu\\n", sizeof(((struct ${struct} *)0)->${field}));`,
      );
    }
  }
  for (const name of Object.keys(PAL))
    lines.push(`printf("PAL_${name} %lld\\n", (long long)(PAL_${name}));`);
  return `#include <stddef.h>\n#include <stdio.h>\n#include "palisade.h"\nint main(void) {\n${lines.join('\n')}\nreturn 0;\n}\n`;
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pal-layout-'));
  writeFileSync(join(dir, 'layout.c'), cProgram());
  execFileSync(
    'cc',
    [
      '-std=c11',
      '-Wall',
      '-Werror',
      '-I',
      header,
      '-o',
      join(dir, 'layout'),
      join(dir, 'layout.c'),
    ],
    {
      timeout: 30_000,
    },
  );
  const out = execFileSync(join(dir, 'layout'), { timeout: 10_000 }).toString();
  printed = Object.fromEntries(
    out
      .trim()
      .split('\n')
      .map((l) => {
        const [k, v] = l.split(' ');
        return [k as string, Number(v)];
      }),
  );
});
afterAll(() => {
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

describe('encoding layout equals bpf/include/palisade.h', () => {
  for (const [struct, l] of Object.entries(LAYOUT)) {
    it(`struct ${struct}: size and every field offset/size`, () => {
      expect(printed[`${struct}.size`]).toBe(l.size);
      for (const [field, f] of Object.entries(
        l.fields as Record<string, { offset: number; size: number }>,
      )) {
        expect({
          field,
          offset: printed[`${struct}.${field}.offset`],
          size: printed[`${struct}.${field}.size`],
        }).toEqual({
          field,
          offset: f.offset,
          size: f.size,
        });
      }
    });
  }
  it('constants equal the #defines', () => {
    for (const [name, value] of Object.entries(PAL))
      expect({ name, value: printed[`PAL_${name}`] }).toEqual({ name, value });
  });
});

describe('codec', () => {
  it('policy key: prefixlen host order, identity and port big endian', () => {
    const b = encodePolicyKey({ prefixlen: 56, identity: 0x01020304, protocol: 6, port: 0x1f90 });
    expect([...b]).toEqual([56, 0, 0, 0, 1, 2, 3, 4, 6, 0, 0x1f, 0x90]);
    expect(decodePolicyKey(b)).toEqual({
      prefixlen: 56,
      identity: 0x01020304,
      protocol: 6,
      port: 0x1f90,
    });
  });
  it('policy value round-trips', () => {
    const v = {
      verdict: 1,
      stagedVerdict: 2,
      flags: 9,
      precedence: 77,
      cookie: 5,
      stagedCookie: 6,
    };
    expect(decodePolicyValue(encodePolicyValue(v))).toEqual(v);
  });
  it('ipcache key round-trips', () => {
    const addr = new Uint8Array(16).fill(7);
    const k = decodeIpcacheKey(encodeIpcacheKey({ prefixlen: 120, addr }));
    expect(k.prefixlen).toBe(120);
    expect([...k.addr]).toEqual([...addr]);
  });
});
