import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { thrownMessage } from '../../../test/support/errors.js';
import { AgentConfigError, loadAgentConfig, parseListen, validateAgentConfig } from './config.js';
import { matchByRoutes, matchStatic } from './discovery.js';

const base = {
  node: 'n1',
  cluster: 'c1',
  source: { dir: '/tmp/w' },
  api: { tokenFile: '/tmp/t' },
};

const errorOf = (f: () => unknown): string => thrownMessage(f, AgentConfigError);

describe('agent config', () => {
  it('fills defaults and lets flags win over the file', () => {
    const c = validateAgentConfig(base, { node: 'n2', listen: ':9000' }, 'a.yaml');
    expect(c.node).toBe('n2');
    expect(c.api).toEqual({ host: '127.0.0.1', port: 9000, tokenFile: '/tmp/t' });
    expect(c.pinDir).toBe('/sys/fs/bpf/palisade');
    expect(c.interfaces.discovery).toBe('routes');
    expect(c.source).toEqual({ kind: 'directory', dir: '/tmp/w', rescanMs: 2000 });
  });

  it('names the file, the field path and what is allowed', () => {
    const m = errorOf(() =>
      validateAgentConfig(
        { ...base, pinDir: '/tmp/x', flows: { ndjson: { path: 'f', maxFiles: 0 } }, typo: 1 },
        {},
        'a.yaml',
      ),
    );
    expect(m).toContain('a.yaml: typo: unknown field (allowed: node,');
    expect(m).toContain('a.yaml: pinDir: "/tmp/x" must be a directory under /sys/fs/bpf/');
    expect(m).toContain('a.yaml: flows.ndjson.maxFiles: must be an integer from 1 to 100');
    expect(
      errorOf(() =>
        validateAgentConfig({ ...base, interfaces: { discovery: 'arp' } }, {}, 'a.yaml'),
      ),
    ).toContain('interfaces.discovery: "arp" is not a discovery method (allowed: routes, static)');
    expect(errorOf(() => validateAgentConfig({}, {}, 'flags'))).toContain('node: is required');
  });

  it('reports a YAML syntax error with its line', () => {
    const d = mkdtempSync(join(tmpdir(), 'agent-cfg-'));
    const p = join(d, 'a.yaml');
    writeFileSync(p, 'node: n1\ncluster: [c1\n');
    expect(errorOf(() => loadAgentConfig(p, {}))).toMatch(
      /a\.yaml:\d+:\d+: not valid YAML or JSON/,
    );
  });

  it('parses listen addresses', () => {
    expect(parseListen('[::1]:80')).toEqual({ host: '::1', port: 80 });
    expect(parseListen('0.0.0.0:9962')).toEqual({ host: '0.0.0.0', port: 9962 });
    expect(typeof parseListen('nohost')).toBe('string');
    expect(typeof parseListen('1.2.3.4:70000')).toBe('string');
  });
});

describe('interface discovery', () => {
  const links = [
    { ifindex: 1, ifname: 'lo', kind: null },
    { ifindex: 5, ifname: 'cali1', kind: 'veth' },
    { ifindex: 6, ifname: 'cali2', kind: 'veth' },
    { ifindex: 7, ifname: 'cni0', kind: 'bridge' },
  ];
  const pod = (name: string, ips: string[]) => ({ cluster: 'c', namespace: 'ns', name, ips });

  it('takes the longest-prefix route over an allowed link kind', () => {
    const routes = [
      { dst: 'default', dev: 'cali1' },
      { dst: '10.0.0.0/16', dev: 'cali1' },
      { dst: '10.0.1.5', dev: 'cali2' },
      { dst: 'fd00::7', dev: 'cali2' },
      { dst: '10.9.0.0/16', dev: 'cni0' },
    ];
    expect(
      matchByRoutes(
        [
          pod('a', ['10.0.1.5']),
          pod('b', ['10.0.2.9']),
          pod('v6', ['fd00::7']),
          pod('br', ['10.9.0.3']),
          pod('x', ['192.0.2.1']),
        ],
        links,
        routes,
        ['veth'],
      ),
    ).toEqual([
      { endpoint: 'c/ns/a', ifname: 'cali2', ifindex: 6 },
      { endpoint: 'c/ns/b', ifname: 'cali1', ifindex: 5 },
      { endpoint: 'c/ns/v6', ifname: 'cali2', ifindex: 6 },
    ]);
  });

  it('maps static names and skips interfaces that do not exist', () => {
    expect(matchStatic({ 'c/ns/a': 'cali1', 'c/ns/b': 'gone0' }, links)).toEqual([
      { endpoint: 'c/ns/a', ifname: 'cali1', ifindex: 5 },
    ]);
  });
});
