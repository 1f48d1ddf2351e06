/**
 * A loader process (what the agent does for the datapath): opens the object
 * with pins under argv[2] (adopting whatever a previous process left), then
 * attaches to the given ifindexes, prints one JSON line and waits to be
 * killed. Runs inside the node netns via `ip netns exec`.
 */
import { tc } from '../../../bpf/binding/index.js';
import { Datapath, TC_HANDLE, TC_PRIORITY } from '../../../enforcer/src/datapath/datapath.js';

const [pinDir, list] = process.argv.slice(2);
const ifindexes = (list ?? '').split(',').filter(Boolean).map(Number);
const before = ifindexes.map((i) => tc.query(i, 'ingress', TC_HANDLE, TC_PRIORITY));
const dp = Datapath.open({ pinDir: pinDir as string });
for (const i of ifindexes) dp.attach(i);
const after = ifindexes.map((i) => [
  tc.query(i, 'ingress', TC_HANDLE, TC_PRIORITY),
  tc.query(i, 'egress', TC_HANDLE, TC_PRIORITY),
]);
process.stdout.write(JSON.stringify({ pid: process.pid, before, after }) + '\n');
setInterval(() => undefined, 1 << 30);
