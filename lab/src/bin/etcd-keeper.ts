/**
 * Keeps the lab's etcd (tunnel/src/etcd-process.ts startEtcd) running after
 * `lab up` returns: starts it, writes its pid next to the data dir, and stops
 * it (by that pid) on SIGTERM/SIGINT.
 *   etcd-keeper --run <id> --data <dir> --client-port N --peer-port N
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startEtcd } from '../../../tunnel/src/etcd-process.js';

const { values } = parseArgs({
  options: {
    run: { type: 'string' },
    data: { type: 'string' },
    'client-port': { type: 'string' },
    'peer-port': { type: 'string' },
  },
});
const dataDir = values.data as string;
const etcd = await startEtcd({
  dataDir,
  clientPort: Number(values['client-port']),
  peerPort: Number(values['peer-port']),
  name: 'palisade-lab',
});
writeFileSync(join(dataDir, '..', 'etcd.pid'), `${etcd.pid}\n`, { mode: 0o600 });
process.stdout.write(`etcd ${etcd.endpoint} pid ${etcd.pid}\n`);
const stop = (): void => {
  void etcd.stop().finally(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
