import { describe, expect, it } from 'vitest';
import type { RuleRef } from '../../policy-compiler/src/engine.js';
import { loadWorldFromTexts } from '../../policy-compiler/src/load/index.js';
import {
  attributionFromWorld,
  EventIngest,
  FlowPipeline,
  SOURCE_DECODE,
  SOURCE_RATE_LIMIT,
  SOURCE_RINGBUF,
  type AnyFlowRecord,
  type FlowRecord,
  type LostEventsRecord,
} from '../../enforcer/src/flows/index.js';
import { buildEvent } from './event-builder.js';

const WORLD = `
apiVersion: v1
kind: Namespace
metadata: {name: shop, annotations: {palisade.dev/cluster: east}}
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: shop, uid: u-web, labels: {app: web}, annotations: {palisade.dev/cluster: east}}
spec: {nodeName: node-a, containers: [{name: c}]}
status: {podIP: 10.0.0.1, podIPs: [{ip: 10.0.0.1}, {ip: "fd00::1"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: db-0, namespace: shop, labels: {app: db}, annotations: {palisade.dev/cluster: east}}
spec: {nodeName: node-a, containers: [{name: c}]}
status: {podIP: 10.0.0.2}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db-isolate, namespace: shop, generation: 4, annotations: {palisade.dev/cluster: east}}
spec: {podSelector: {matchLabels: {app: db}}, policyTypes: [Ingress]}
`;

function world() {
  const r = loadWorldFromTexts([{ file: 'world.yaml', text: WORLD }]);
  const errors = r.diagnostics.filter((d) => d.severity === 'error');
  expect(errors).toEqual([]);
  return r.world;
}

describe('attribution from a World', () => {
  it('names endpoints by IP and default denies by the isolating NetworkPolicy', async () => {
    const cookies = new Map<number, RuleRef>();
    const ctx = attributionFromWorld(world(), cookies, {
      nodeName: 'east/node-a',
      cluster: 'east',
      clockOffsetNs: 0n,
    });
    expect(ctx.endpoint('10.0.0.1', 300)).toMatchObject({
      id: 'east/shop/web-1',
      uid: 'u-web',
      labels: { app: 'web' },
    });
    expect(ctx.endpoint('fd00::1', 300)?.id).toBe('east/shop/web-1');
    expect(ctx.isolation?.('east/shop/db-0', 'INGRESS')).toEqual([
      { kind: 'NetworkPolicy', namespace: 'shop', name: 'db-isolate', revision: '4' },
    ]);
    expect(ctx.isolation?.('east/shop/db-0', 'EGRESS')).toEqual([]);

    const written: AnyFlowRecord[] = [];
    const pipeline = new FlowPipeline({
      sinks: [
        { kind: 'memory', write: async (b) => void written.push(...b), close: async () => {} },
      ],
      nodeName: 'east/node-a',
      lostReportIntervalMs: 0,
    });
    const ingest = new EventIngest(pipeline, ctx);
    ingest.event(
      buildEvent({
        type: 1,
        direction: 1,
        saddr: '10.0.0.1',
        daddr: '10.0.0.2',
        cookie: 0,
        suppressed: 3,
      }),
    );
    ingest.event(new Uint8Array(12)); // truncated sample
    ingest.ringbufLostTotal(100n); // baseline
    ingest.ringbufLostTotal(105n);
    ingest.ringbufLostTotal(105n);
    pipeline.flushLoss();
    await pipeline.close();
    const flow = written.find((r): r is FlowRecord => 'flow' in r)?.flow;
    expect(flow?.destination.endpoint_id).toBe('east/shop/db-0');
    expect(flow?.ingress_denied_by).toEqual([
      { kind: 'NetworkPolicy', namespace: 'shop', name: 'db-isolate', revision: '4' },
    ]);
    const loss = Object.fromEntries(
      written
        .filter((r): r is LostEventsRecord => 'lost_events' in r)
        .map((r) => [r.lost_events.source, r.lost_events.num_events_lost]),
    );
    expect(loss).toEqual({ [SOURCE_RATE_LIMIT]: 3, [SOURCE_DECODE]: 1, [SOURCE_RINGBUF]: 5 });
    expect(ingest.decodeErrors).toBe(1);
  });
});
