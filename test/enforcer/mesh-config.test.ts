/** The agent's `mesh:` config section and its flags: defaults, flags over the file, clear errors. */
import { describe, expect, it } from 'vitest';
import { thrownMessage } from '../support/errors.js';
import { AgentConfigError, validateAgentConfig } from '../../enforcer/src/agent/config.js';

const base = {
  node: 'n1',
  cluster: 'east',
  source: { dir: '/tmp/w' },
  api: { tokenFile: '/tmp/t' },
};

const errorOf = (f: () => unknown): string => thrownMessage(f, AgentConfigError);

describe('agent config: mesh', () => {
  it('is off unless configured', () => {
    expect(validateAgentConfig(base, {}, 'a.yaml').mesh).toBeNull();
  });

  it('fills defaults', () => {
    const c = validateAgentConfig(
      { ...base, mesh: { etcd: ['http://127.0.0.1:2379'] } },
      {},
      'a.yaml',
    );
    expect(c.mesh).toEqual({
      etcd: ['http://127.0.0.1:2379'],
      publish: false,
      leaseTtlSec: 30,
      batchSize: 64,
      initialSyncTimeoutMs: 10_000,
      callTimeoutMs: 3000,
    });
  });

  it('flags win over the file', () => {
    const c = validateAgentConfig(
      { ...base, mesh: { etcd: ['http://127.0.0.1:2379'], publish: false } },
      { meshEtcd: 'http://10.0.0.1:2379, https://[fd00::1]:2379', meshPublish: true },
      'a.yaml',
    );
    expect(c.mesh?.etcd).toEqual(['http://10.0.0.1:2379', 'https://[fd00::1]:2379']);
    expect(c.mesh?.publish).toBe(true);
    expect(validateAgentConfig(base, { meshEtcd: 'http://e:2379' }, 'a.yaml').mesh?.etcd).toEqual([
      'http://e:2379',
    ]);
  });

  it('names the field path and what is allowed', () => {
    const m = errorOf(() =>
      validateAgentConfig(
        {
          ...base,
          mesh: {
            etcd: ['127.0.0.1:2379', 'http://h:2379/v3'],
            leaseTtlSec: 1,
            batchSize: 500,
            publsh: true,
          },
        },
        {},
        'a.yaml',
      ),
    );
    expect(m).toContain('a.yaml: mesh.publsh: unknown field (allowed: etcd, publish,');
    expect(m).toContain(
      'a.yaml: mesh.etcd[0]: "127.0.0.1:2379" is not an etcd client URL (allowed: http(s)://<host>:<port>)',
    );
    expect(m).toContain('a.yaml: mesh.etcd[1]:');
    expect(m).toContain('a.yaml: mesh.leaseTtlSec: must be an integer from 2 to 3600');
    expect(m).toContain('a.yaml: mesh.batchSize: must be an integer from 1 to 128');
    expect(errorOf(() => validateAgentConfig({ ...base, mesh: {} }, {}, 'a.yaml'))).toContain(
      'a.yaml: mesh.etcd: must be a non-empty list of etcd client URLs',
    );
    expect(errorOf(() => validateAgentConfig({ ...base, mesh: 'etcd' }, {}, 'a.yaml'))).toContain(
      'a.yaml: mesh: must be a mapping',
    );
    expect(errorOf(() => validateAgentConfig(base, { meshPublish: true }, 'a.yaml'))).toContain(
      'flags: --mesh-publish: needs a mesh store (mesh.etcd or --mesh-etcd)',
    );
    expect(errorOf(() => validateAgentConfig(base, { meshEtcd: 'nope' }, 'a.yaml'))).toContain(
      'flags: --mesh-etcd[0]: "nope" is not an etcd client URL',
    );
  });
});
