import { describe, expect, it } from 'vitest';
import { compile, toCelValue } from './index.js';

function run(src: string, self: unknown): unknown {
  const c = compile(src, ['self']);
  if (!c.ok) throw new Error(c.issues.map((i) => i.message).join('; '));
  const r = c.program.eval({ self: toCelValue(self) });
  return r.ok ? r.value : `error: ${r.error}`;
}

describe('CEL wrapper contract', () => {
  it('compile errors come back as issues with a position, not exceptions', () => {
    const c = compile('self.a +', ['self']);
    expect(c.ok).toBe(false);
    if (!c.ok) {
      expect(c.issues[0]?.line).toBe(1);
      expect(c.issues[0]?.col).toBeGreaterThan(0);
    }
  });
  it('evaluation errors come back as { ok: false } (missing field)', () => {
    expect(run('self.nope == 1', {})).toMatch(/^error: /);
  });
  it('undeclared variables are refused at eval', () => {
    const c = compile('1 == 1', ['self']);
    expect(c.ok && c.program.eval({ other: 1 })).toEqual({
      ok: false,
      error: 'undeclared variable other',
    });
  });
  it('integers cross the boundary as CEL int (JSON numbers would be double)', () => {
    expect(run('self.start < self.end', { start: 80, end: 90 })).toBe(true);
    expect(run('self.port + 1 == 81', { port: 80 })).toBe(true);
    expect(run('self.n', { n: 5 })).toBe(5);
  });
  it('has() and macros over maps and lists (upstream named-port rule)', () => {
    const rule =
      '!(self.to.exists(peer, has(peer.networks) || has(peer.nodes) || has(peer.domainNames)) && has(self.protocols) && self.protocols.exists(protocol, has(protocol.destinationNamedPort)))';
    expect(
      run(rule, {
        to: [{ networks: ['10.0.0.0/8'] }],
        protocols: [{ destinationNamedPort: 'http' }],
      }),
    ).toBe(false);
    expect(run(rule, { to: [{ pods: {} }], protocols: [{ destinationNamedPort: 'http' }] })).toBe(
      true,
    );
  });
});

// Kubernetes CEL net library (k8s.io/apiserver/pkg/cel/library/{ip,cidr}.go).
describe('Kubernetes net library', () => {
  it.each([
    ['10.0.0.0/8', true],
    ['10.0.0.1/8', true],
    ['fd00::/8', true],
    ['10.0.0.0/33', false],
    ['10.0.0.0', false],
    ['010.0.0.0/8', false],
    ['::ffff:10.0.0.0/104', false],
    ['nonsense', false],
  ])('isCIDR(%s) = %s', (s, want) => {
    expect(run('isCIDR(self)', s)).toBe(want);
  });
  it.each([
    ['10.1.2.3', true],
    ['2001:db8::1', true],
    ['fe80::1%eth0', false],
    ['1.2.3', false],
    ['::ffff:1.2.3.4', false],
  ])('isIP(%s) = %s', (s, want) => {
    expect(run('isIP(self)', s)).toBe(want);
  });
  it('ip() and cidr() methods', () => {
    expect(run('ip(self).family()', '2001:db8::1')).toBe(6);
    expect(run('cidr(self).prefixLength()', '10.0.0.0/16')).toBe(16);
    expect(run("cidr(self).containsIP('10.0.3.4')", '10.0.0.0/16')).toBe(true);
    expect(run("cidr(self).containsIP(ip('10.1.3.4'))", '10.0.0.0/16')).toBe(false);
    expect(run("cidr(self).containsCIDR('10.0.1.0/24')", '10.0.0.0/16')).toBe(true);
    expect(run("cidr(self).masked() == cidr('10.0.0.0/16')", '10.0.9.9/16')).toBe(true);
    expect(run("cidr(self).ip() == ip('10.0.9.9')", '10.0.9.9/16')).toBe(true);
    expect(run('ip(self).isLoopback()', '127.0.0.1')).toBe(true);
    expect(run('ip(self)', 'bad')).toMatch(/^error: .*parse error/);
  });
  it('strings extension (used by the Cluster CRD)', () => {
    expect(run("int(self.substring(self.lastIndexOf(':') + 1))", '[fd00::1]:51820')).toBe(51820);
  });
});
