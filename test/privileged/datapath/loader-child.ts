/**
 * A loader process (what the agent does for the datapath): opens the object
 * with pins under argv[2] (adopting whatever a previous process left), then
 * attaches to the given ifindexes, prints one JSON line and waits to be
 * killed. With argv[4] = "detach" it detaches instead, prints and exits.
 * Runs inside the node netns via nsenter. The attach mode comes from
 * PALISADE_DATAPATH_ATTACH (auto when unset), as for the agent.
 */
import { tc, tcx } from '../../../bpf/binding/index.js';
import { Datapath, TC_HANDLE, TC_PRIORITY } from '../../../enforcer/src/datapath/datapath.js';

const [pinDir, list, action] = process.argv.slice(2);
const ifindexes = (list ?? '').split(',').filter(Boolean).map(Number);

/** What the kernel runs on each hook, independent of our pins. */
const kernel = () =>
  ifindexes.map((i) => ({
    tcxIngress: tcx.query(i, 'ingress').progIds,
    tcxEgress: tcx.query(i, 'egress').progIds,
    clsactIngress: tc.query(i, 'ingress', TC_HANDLE, TC_PRIORITY),
    clsactEgress: tc.query(i, 'egress', TC_HANDLE, TC_PRIORITY),
  }));

// What ran before this process opened the object (the previous loader's programs).
const probe = Datapath.open({ pinDir: pinDir as string, adopt: false });
const before = ifindexes.map((i) => probe.attachment(i));
if (action === 'detach') {
  for (const i of ifindexes) probe.detach(i);
  const after = ifindexes.map((i) => probe.attachment(i));
  process.stdout.write(
    JSON.stringify({ pid: process.pid, before, after, kernel: kernel() }) + '\n',
  );
  probe.close();
  process.exit(0);
}
probe.close();
const dp = Datapath.open({ pinDir: pinDir as string });
for (const i of ifindexes) dp.attach(i);
const after = ifindexes.map((i) => dp.attachment(i));
process.stdout.write(
  JSON.stringify({
    pid: process.pid,
    mode: dp.attachMode,
    reason: dp.attachModeReason,
    programs: dp.programIds(),
    before,
    after,
    kernel: kernel(),
  }) + '\n',
);
setInterval(() => undefined, 1 << 30);
