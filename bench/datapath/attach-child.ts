/**
 * Benchmark helper living in the node netns: opens the pinned datapath and
 * attaches or detaches the programs on command (of the build's object, or
 * of the object given as third argument) (stdin lines "attach" /
 * "detach"), answering "ok" or "error <message>" per line.
 */
import { createInterface } from 'node:readline';

import { Datapath } from '../../enforcer/src/datapath/datapath.js';

const [pinDir, list, objectPath] = process.argv.slice(2);
const ifindexes = (list ?? '').split(',').filter(Boolean).map(Number);
const dp = Datapath.open({ pinDir: pinDir as string, ...(objectPath ? { objectPath } : {}) });
process.stdout.write('ready\n');
createInterface({ input: process.stdin }).on('line', (line) => {
  try {
    for (const i of ifindexes) {
      if (line === 'attach') dp.attach(i);
      else if (line === 'detach') dp.detach(i);
    }
    process.stdout.write('ok\n');
  } catch (e) {
    process.stdout.write(`error ${e instanceof Error ? e.message : String(e)}\n`);
  }
});
process.stdin.on('end', () => {
  for (const i of ifindexes) dp.detach(i);
  dp.close();
  process.exit(0);
});
