/**
 * pal_endpoints holds this node's endpoints only: the endpoints of the rest of
 * the world (other nodes, other clusters) are in the compiled tables but never
 * count against the endpoint map's capacity. Real maps (private, not pinned).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Datapath, DatapathCapacityError } from '../../../enforcer/src/datapath/datapath.js';
import { requirePrivileges } from '../../support/privileged.js';
import { allowAll, endpoint, ipc, tables } from './fixtures.js';

beforeAll(() => requirePrivileges('root', 'bpffs', 'clang'));

/** A world of `n` endpoints (10.x.y.z), of which the first `local` are on this node. */
function world(n: number, local: number) {
  const eps = Array.from({ length: n }, (_, i) => endpoint(`c1/ns/p${i}`, 256 + i, 1, 2));
  const ifindexOf = (id: string) => {
    const i = Number(id.slice('c1/ns/p'.length));
    return i < local ? 100 + i : undefined;
  };
  const encoded = tables({
    ipcache: eps.map((_, i) => ipc(`10.${64 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`, 256 + i)),
    endpoints: eps,
    tables: [allowAll(1), allowAll(2)],
  });
  return { encoded, ifindexOf };
}

const opened: Datapath[] = [];
afterAll(() => {
  for (const dp of opened) dp.close();
});

describe('endpoint map capacity counts local endpoints only', () => {
  it('a 10,000-endpoint world syncs on a 3-pod node with the default 4,096 endpoints', () => {
    const dp = Datapath.open({ pinDir: null });
    opened.push(dp);
    const { encoded, ifindexOf } = world(10_000, 3);
    const r = dp.applyFull(encoded, ifindexOf);
    expect(r.endpointsWritten).toBe(3);
    expect(r.ipcacheWritten).toBe(10_000);
    const keys = [...dp.map('endpoints').keys()].map((k) => k.readUInt32LE(0)).sort();
    expect(keys).toEqual([100, 101, 102]);
  });

  it('more local endpoints than the map holds: refused, naming the local count, nothing changed', () => {
    const dp = Datapath.open({ pinDir: null, sizes: { endpoints: 4 } });
    opened.push(dp);
    const ok = world(50, 4);
    dp.applyFull(ok.encoded, ok.ifindexOf);
    const before = dp.revision();
    const big = world(50, 5);
    expect(() => dp.applyFull(big.encoded, big.ifindexOf)).toThrow(DatapathCapacityError);
    expect(() => dp.applyFull(big.encoded, big.ifindexOf)).toThrow(
      /5 local endpoints \(this node's\), endpoint map capacity 4/,
    );
    expect(dp.revision()).toBe(before);
    expect([...dp.map('endpoints').keys()]).toHaveLength(4);
  });

  it('a delta is checked against the totals after it, before anything is written', () => {
    const dp = Datapath.open({ pinDir: null, sizes: { endpoints: 4, ipcache: 60 } });
    opened.push(dp);
    const ok = world(50, 4);
    dp.applyFull(ok.encoded, ok.ifindexOf);
    const before = dp.revision();
    const extra = endpoint('c1/ns/p50', 999, 1, 2);
    const delta = {
      ipcache: { upsert: [ipc('10.99.0.1', 999)], remove: [] },
      endpoints: { upsert: [extra], remove: [] },
      tables: { replace: [], patch: [], remove: [] },
    };
    expect(() =>
      dp.applyDelta(delta, (id) => (id === 'c1/ns/p50' ? 150 : ok.ifindexOf(id)), {
        ipcache: 51,
        localEndpoints: 5,
      }),
    ).toThrow(/5 local endpoints/);
    expect(() => dp.applyDelta(delta, () => 150, { ipcache: 61, localEndpoints: 4 })).toThrow(
      /ipcache has 61 entries, capacity 60/,
    );
    expect(dp.revision()).toBe(before);
    expect(dp.map('ipcache').lookup(ipc('10.99.0.1', 999).key)).toBeNull();
  });
});
