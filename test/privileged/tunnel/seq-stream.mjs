// Sequence-numbered UDP stream for the tunnel tests and bench (runs inside a pod namespace).
//   recv <port> <idleMs>             prints {"received","lost","reordered","maxDisplacement","duplicates","maxSeq"} when no packet came for idleMs (after the first)
//   send <host> <port> <pps> <count> sends <count> datagrams "PALISADE-PLAINTEXT-MARKER <seq>" at <pps>
//   echo <port>                      UDP echo server;  probe <host> <port> <timeoutMs>: exit 0 if echoed
import dgram from 'node:dgram';

const [mode, a, b, c, d] = process.argv.slice(2);
const MARKER = 'PALISADE-PLAINTEXT-MARKER';

if (mode === 'recv') {
  const port = Number(a);
  const idleMs = Number(b);
  const seen = new Set();
  let maxSeq = -1;
  let reordered = 0;
  let duplicates = 0;
  let maxDisplacement = 0;
  let idle = null;
  const hardStop = setTimeout(done, 120_000);
  const s = dgram.createSocket(process.argv.includes('--v6') ? 'udp6' : 'udp4');
  function done() {
    const lost = maxSeq + 1 - seen.size;
    process.stdout.write(
      JSON.stringify({
        received: seen.size,
        lost,
        reordered,
        maxDisplacement,
        duplicates,
        maxSeq,
      }) + '\n',
    );
    s.close();
    clearTimeout(hardStop);
  }
  s.on('message', (m) => {
    const seq = Number(m.toString().split(' ')[1]);
    if (seen.has(seq)) duplicates++;
    else if (seq < maxSeq) {
      reordered++;
      maxDisplacement = Math.max(maxDisplacement, maxSeq - seq);
    }
    seen.add(seq);
    if (seq > maxSeq) maxSeq = seq;
    if (idle) clearTimeout(idle);
    idle = setTimeout(done, idleMs);
  });
  s.bind(port, () => process.stdout.write('ready\n'));
} else if (mode === 'send') {
  const host = a;
  const port = Number(b);
  const pps = Number(c);
  const count = Number(d);
  const s = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  const start = Date.now();
  let seq = 0;
  const pad = 'x'.repeat(32);
  const tick = () => {
    const due = Math.min(count, Math.floor(((Date.now() - start) * pps) / 1000) + 1);
    while (seq < due) s.send(`${MARKER} ${seq++} ${pad}`, port, host);
    if (seq >= count) setTimeout(() => s.close(), 200);
    else setTimeout(tick, 2);
  };
  tick();
} else if (mode === 'echo') {
  // UDP echo server until killed (or 10 minutes).
  // One socket per family.
  for (const fam of ['udp4', 'udp6']) {
    const s = dgram.createSocket({ type: fam, ipv6Only: fam === 'udp6' });
    s.on('message', (m, r) => s.send(m, r.port, r.address));
    s.bind(Number(a));
    setTimeout(() => s.close(), 600_000);
  }
  process.stdout.write('ready\n');
} else if (mode === 'probe') {
  // One datagram to an echo server; exit 0 when it comes back within timeoutMs.
  const s = dgram.createSocket(a.includes(':') ? 'udp6' : 'udp4');
  const t = setTimeout(() => process.exit(1), Number(c));
  s.on('message', () => {
    clearTimeout(t);
    process.exit(0);
  });
  s.send(`${MARKER} probe`, Number(b), a);
} else {
  process.stderr.write('usage: seq-stream.mjs recv PORT IDLE_MS | send HOST PORT PPS COUNT\n');
  process.exit(2);
}
