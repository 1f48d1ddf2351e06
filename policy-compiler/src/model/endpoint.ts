/**
 * Endpoint ids, the names every output uses (DESIGN.md §3):
 * pods `<cluster>/<namespace>/<pod>`, nodes `node:<cluster>/<node>`, others `ip:<addr>`.
 */
import { isIP } from 'node:net';
import type { Node, Pod } from './world.js';

export type EndpointId = string;

export type Endpoint =
  | { readonly kind: 'pod'; readonly id: EndpointId; readonly pod: Pod }
  | { readonly kind: 'node'; readonly id: EndpointId; readonly node: Node }
  | { readonly kind: 'external'; readonly id: EndpointId; readonly ip: string };

export type ParsedEndpointId =
  | {
      readonly kind: 'pod';
      readonly cluster: string;
      readonly namespace: string;
      readonly name: string;
    }
  | { readonly kind: 'node'; readonly cluster: string; readonly name: string }
  | { readonly kind: 'external'; readonly ip: string };

export const podId = (p: Pick<Pod, 'cluster' | 'namespace' | 'name'>): EndpointId =>
  `${p.cluster}/${p.namespace}/${p.name}`;
export const nodeId = (n: Pick<Node, 'cluster' | 'name'>): EndpointId =>
  `node:${n.cluster}/${n.name}`;
export const ipId = (ip: string): EndpointId => `ip:${ip}`;

/** Parses an endpoint id; returns a message saying what is allowed when it is not one. */
export function parseEndpointId(id: string): ParsedEndpointId | { readonly error: string } {
  const allowed = 'allowed: <cluster>/<namespace>/<pod>, node:<cluster>/<node>, ip:<address>';
  if (id.startsWith('ip:')) {
    const ip = id.slice(3);
    return isIP(ip)
      ? { kind: 'external', ip }
      : { error: `not an IP address: "${ip}" (${allowed})` };
  }
  if (id.startsWith('node:')) {
    const parts = id.slice(5).split('/');
    if (parts.length === 2 && parts.every((s) => s.length > 0)) {
      return { kind: 'node', cluster: parts[0] as string, name: parts[1] as string };
    }
    return { error: `bad node id "${id}" (${allowed})` };
  }
  const parts = id.split('/');
  if (parts.length === 3 && parts.every((s) => s.length > 0)) {
    return {
      kind: 'pod',
      cluster: parts[0] as string,
      namespace: parts[1] as string,
      name: parts[2] as string,
    };
  }
  return { error: `bad endpoint id "${id}" (${allowed})` };
}
