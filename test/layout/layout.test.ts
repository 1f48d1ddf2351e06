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
  it('policy key: prefixlen host order, identity and port big endian, contiguous, pad byte last', () => {
    const b = encodePolicyKey({ prefixlen: 56, identity: 0x01020304, protocol: 6, port: 0x1f90 });
    expect([...b]).toEqual([56, 0, 0, 0, 1, 2, 3, 4, 6, 0x1f, 0x90, 0]);
    // the trie's prefix (bits after prefixlen) ends exactly where the port ends
    expect(LAYOUT.pal_policy_key.fields.port_be.offset + 2 - 4).toBe(
      PAL.POLICY_KEY_FULL_PREFIX / 8,
    );
    expect(decodePolicyKey(b)).toEqual({
      prefixlen: 56,
      identity: 0x01020304,
      protocol: 6,
      port: 0x1f90,
    });
  });
  it('policy value round-trips: three enforced, then three staged tier matches', () => {
    const m = (rank: number, cookie: number, action: number, flags: number) => ({
      rank,
      cookie,
      action,
      flags,
    });
    const v = {
      enforced: [m(1, 5, PAL.ACTION_PASS, 0), m(0, 0, 0, 0), m(9, 6, PAL.ACTION_DENY, 9)],
      staged: [m(2, 7, PAL.ACTION_ACCEPT, 4), m(3, 8, PAL.ACTION_ALLOW, 0), m(0, 0, 0, 0)],
    } as const;
    const b = encodePolicyValue(v);
    expect(decodePolicyValue(b)).toEqual(v);
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const TM = LAYOUT.pal_tier_match;
    const staged1 = LAYOUT.pal_policy_value.fields.staged.offset + TM.size;
    expect(dv.getUint32(staged1 + TM.fields.rank.offset, true)).toBe(3);
    expect(b[staged1 + TM.fields.action.offset]).toBe(PAL.ACTION_ALLOW);
  });
  it('ipcache key round-trips', () => {
    const addr = new Uint8Array(16).fill(7);
    const k = decodeIpcacheKey(encodeIpcacheKey({ prefixlen: 120, addr }));
    expect(k.prefixlen).toBe(120);
    expect([...k.addr]).toEqual([...addr]);
  });
});
