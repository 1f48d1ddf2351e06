/**
 * The object loads on this kernel (a failure prints the verifier log), the
 * TypeScript struct layout equals the C header's, encoded entries survive a
 * round trip through the real maps, pins are reused by a second open, and
 * input beyond capacity is refused without touching the maps.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  BpfMap,
  BpfObject,
  closeFd,
  defaultObjectPath,
  isBpfError,
  mapFdById,
  repoRoot,
} from '../../../bpf/binding/index.js';
import { Datapath, DatapathCapacityError } from '../../../enforcer/src/datapath/datapath.js';
import { SIZE, decodeEndpointValue, u32Key } from '../../../enforcer/src/datapath/structs.js';
import { requirePrivileges } from '../../support/privileged.js';
import { ALLOW, DENY, ENDPOINT_FLAGS, endpoint, ipc, rule, table, tables } from './fixtures.js';
import { IPPROTO } from '../../../enforcer/src/datapath/structs.js';

const work = mkdtempSync(join(tmpdir(), 'pal-dp-load-'));
const pinDir = `/sys/fs/bpf/palisade-load-${process.pid}`;

beforeAll(() => requirePrivileges('root', 'bpffs', 'clang'));
afterAll(() => {
  rmSync(work, { recursive: true, force: true });
  Datapath.removePins(pinDir);
});

const sample = () =>
  tables({
    ipcache: [ipc('10.0.0.0', 500, 8), ipc('10.1.2.3', 501), ipc('fd00::', 502, 64)],
    endpoints: [endpoint('c/ns/a', 501, 3, 4), endpoint('c/ns/b', 502, 5, 6, 0)],
    tables: [
      table(3, [
        rule({ identity: 500 }, { verdict: ALLOW, precedence: 7, cookie: 9 }),
        rule(
          { identity: 0, protocol: IPPROTO.TCP, port: 8080, portBits: 12 },
          { verdict: DENY, precedence: 3, cookie: 4, flags: 8, staged: 2, stagedCookie: 5 },
        ),
      ]),
      table(4, []),
      table(5, [
        rule(
          { identity: 502, protocol: IPPROTO.UDP },
          { verdict: ALLOW, precedence: 1, cookie: 1 },
        ),
      ]),
      table(6, []),
    ],
  });

describe('datapath object and maps', () => {
  it('loads through the verifier on this kernel', () => {
    let dp: Datapath | undefined;
    try {
      dp = Datapath.open({ pinDir: null });
    } catch (e) {
      throw new Error(`BPF object failed to load:\n${e instanceof Error ? e.message : String(e)}`);
    }
    dp.close();
  });

  it('a program the verifier rejects fails with errno and the verifier log', () => {
    const src = join(work, 'bad.bpf.c');
    const obj = join(work, 'bad.bpf.o');
    writeFileSync(
      src,
      '#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n' +
        'SEC("tc") int bad(struct __sk_buff *skb) { return *(int *)(long)skb->data; }\n' +
        'char LICENSE[] SEC("license") = "GPL";\n',
    );
    execFileSync('clang', [
      '-O2',
      '-g',
      '-target',
      'bpf',
      '-I',
      '/usr/include/x86_64-linux-gnu',
      '-c',
      src,
      '-o',
      obj,
    ]);
    let err: unknown;
    try {
      BpfObject.open(obj, { pinRoot: null }).close();
    } catch (e) {
      err = e;
    }
    expect(isBpfError(err)).toBe(true);
    const be = err as Error & { errno: number; log?: string };
    expect(be.errno).toBeGreaterThan(0);
    expect(be.log ?? '').toMatch(/invalid access to packet|R\d+ invalid mem access|pkt/);
    expect(be.message).toContain('libbpf log');
  });

  it('TypeScript sizes equal the C header (sizeof)', () => {
    const c = join(work, 'sizes.c');
    writeFileSync(
      c,
      '#include <stdio.h>\n#include <stddef.h>\n#include "palisade.h"\nint main(void){printf("%zu %zu %zu %zu %zu %zu %zu %zu %zu %zu %zu %zu %zu %zu\\n",' +
        [
          'pal_endpoint_key',
          'pal_endpoint_value',
          'pal_ipcache_key',
          'pal_ipcache_value',
          'pal_policy_key',
          'pal_policy_value',
          'pal_ct_key',
          'pal_ct_value',
          'pal_config',
          'pal_rule_counter',
          'pal_stat',
          'pal_event',
        ]
          .map((s) => `sizeof(struct ${s})`)
          .join(',') +
        ',offsetof(struct pal_ct_key, protocol),offsetof(struct pal_ct_key, pad));return 0;}\n',
    );
    const exe = join(work, 'sizes');
    execFileSync('cc', ['-I', join(repoRoot(), 'bpf', 'include'), c, '-o', exe]);
    const got = execFileSync(exe).toString().trim().split(' ').map(Number);
    expect(got).toEqual([
      SIZE.endpointKey,
      SIZE.endpointValue,
      SIZE.ipcacheKey,
      SIZE.ipcacheValue,
      SIZE.policyKey,
      SIZE.policyValue,
      SIZE.ctKey,
      SIZE.ctValue,
      SIZE.config,
      SIZE.ruleCounter,
      SIZE.stat,
      SIZE.event,
      36,
      37,
    ]);
  });

  it('encoded entries round-trip through the real maps (endpoints, ipcache, inner tables)', () => {
    const dp = Datapath.open({ pinDir: null });
    try {
      const enc = sample();
      const ifx: Record<string, number> = { 'c/ns/a': 11, 'c/ns/b': 12 };
      dp.applyFull(enc, (id) => ifx[id]);
      const ep = dp.map('endpoints');
      expect(decodeEndpointValue(ep.lookup(Buffer.from([11, 0, 0, 0]))!)).toEqual({
        identity: 501,
        egressTable: 3,
        ingressTable: 4,
        flags: ENDPOINT_FLAGS,
        nodeId: 0,
      });
      expect(decodeEndpointValue(ep.lookup(Buffer.from([12, 0, 0, 0]))!).flags).toBe(0);
      const ipcKeys = [...dp.map('ipcache').keys()].map((k) => k.toString('hex')).sort();
      expect(ipcKeys).toEqual(enc.ipcache.map((e) => Buffer.from(e.key).toString('hex')).sort());
      for (const e of enc.ipcache)
        expect(dp.map('ipcache').lookup(e.key)).toEqual(Buffer.from(e.value));
      for (const t of enc.tables) {
        const id = dp.map('policy').lookup(u32Key(t.table))!.readUInt32LE(0);
        const fd = mapFdById(id);
        try {
          const inner = BpfMap.fromFd(fd);
          const stored = [...inner.keys()].map((k) => ({
            key: k,
            value: inner.lookup(k)!,
          }));
          const norm = (xs: readonly { key: Uint8Array; value: Uint8Array }[]) =>
            xs
              .map(
                (x) =>
                  Buffer.from(x.key).toString('hex') + '=' + Buffer.from(x.value).toString('hex'),
              )
              .sort();
          expect(norm(stored)).toEqual(norm(t.entries));
        } finally {
          closeFd(fd);
        }
      }
      // a second full apply without table 5 removes it and its endpoint
      dp.applyFull(
        { ...enc, endpoints: enc.endpoints.slice(0, 1), tables: enc.tables.slice(0, 2) },
        (id) => ifx[id],
      );
      expect(dp.map('policy').lookup(u32Key(5))).toBeNull();
      expect(ep.lookup(Buffer.from([12, 0, 0, 0]))).toBeNull();
    } finally {
      dp.close();
    }
  });

  it('pinned maps are reused by the next open (tables, endpoints, revision survive)', () => {
    const first = Datapath.open({ pinDir, adopt: false });
    const r = first.applyFull(sample(), () => 21);
    first.close();
    const second = Datapath.open({ pinDir, adopt: false });
    try {
      expect(second.revision()).toBe(r.revision);
      expect(second.map('policy').lookup(u32Key(3))).not.toBeNull();
      expect(second.map('endpoints').lookup(Buffer.from([21, 0, 0, 0]))).not.toBeNull();
      expect(defaultObjectPath()).toMatch(/palisade\.bpf\.o$/);
    } finally {
      second.close();
    }
  });

  it('refuses tables beyond capacity and changes nothing', () => {
    const dp = Datapath.open({ pinDir: null, sizes: { tables: 8, tableEntries: 2 } });
    try {
      const before = dp.revision();
      const big = table(
        1,
        [0, 1, 2].map((i) =>
          rule({ identity: 600 + i }, { verdict: ALLOW, precedence: 1, cookie: 1 }),
        ),
      );
      expect(() => dp.applyFull(tables({ tables: [big] }), () => undefined)).toThrow(
        DatapathCapacityError,
      );
      expect(() => dp.applyFull(tables({ tables: [table(9, [])] }), () => undefined)).toThrow(
        /outside the policy array/,
      );
      expect(dp.revision()).toBe(before);
      expect(dp.map('policy').lookup(u32Key(1))).toBeNull();
    } finally {
      dp.close();
    }
  });

  it('a pin directory off bpffs is a clear error', () => {
    expect(() => Datapath.open({ pinDir: join(work, 'pins') })).toThrow(/not on a bpf filesystem/);
  });
});
