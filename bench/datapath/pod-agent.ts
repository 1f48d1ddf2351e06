/**
 * The program each test pod runs (plain JS, started with `node -e` inside
 * the pod's netns): JSON commands on stdin, JSON replies on stdout. Servers
 * echo (TCP and UDP, dual stack) and count UDP datagrams per port; clients
 * probe, hold a long TCP connection, send a bounded UDP flood, or time
 * request/response round trips.
 */
export const POD_AGENT_JS = String.raw`
const net = require('node:net');
const dgram = require('node:dgram');
const readline = require('node:readline');
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const udpCount = {};
const servers = [];
function serve(c) {
  for (const p of c.tcpPorts || []) {
    const s = net.createServer((sock) => { sock.on('data', (d) => sock.write(d)); sock.on('error', () => {}); });
    s.listen({ port: p, host: '::', ipv6Only: false });
    servers.push(s);
  }
  for (const p of c.udpPorts || []) {
    udpCount[p] = 0;
    const s = dgram.createSocket({ type: 'udp6', ipv6Only: false });
    s.on('message', (m, r) => { udpCount[p]++; s.send(m, r.port, r.address); });
    s.bind(p, '::');
    servers.push(s);
  }
  setTimeout(() => out({ id: c.id, ok: true }), 100);
}
function tcp(c) {
  let done = false;
  const finish = (ok) => { if (done) return; done = true; sock.destroy(); out({ id: c.id, ok }); };
  const sock = net.connect({ host: c.host, port: c.port });
  sock.on('connect', () => sock.write('ping'));
  sock.on('data', () => finish(true));
  sock.on('error', () => finish(false));
  setTimeout(() => finish(false), c.timeoutMs);
}
function udp(c) {
  const s = dgram.createSocket(c.host.includes(':') ? 'udp6' : 'udp4');
  let done = false;
  const finish = (ok) => { if (done) return; done = true; s.close(); out({ id: c.id, ok }); };
  s.on('message', () => finish(true));
  s.on('error', () => finish(false));
  s.send('ping', c.port, c.host);
  setTimeout(() => finish(false), c.timeoutMs);
}
function hold(c) {
  const sock = net.connect({ host: c.host, port: c.port });
  let last = Date.now(); let connected = false; let stopped = false;
  const stop = (why) => { if (stopped) return; stopped = true; clearInterval(t); sock.destroy(); out({ event: 'stopped', id: c.id, why }); };
  sock.on('connect', () => { connected = true; last = Date.now(); out({ id: c.id, ok: true }); });
  sock.on('data', () => { last = Date.now(); });
  sock.on('error', () => { if (!connected) out({ id: c.id, ok: false }); stop('error'); });
  const t = setInterval(() => {
    if (!connected) return;
    if (Date.now() - last > c.silenceMs) return stop('silence');
    sock.write('x');
  }, c.intervalMs);
  setTimeout(() => stop('limit'), c.maxMs);
}
function flood(c) {
  const s = dgram.createSocket(c.host.includes(':') ? 'udp6' : 'udp4');
  const sent = {}; for (const p of c.ports) sent[p] = 0;
  const end = Date.now() + c.durationMs; let i = 0;
  const t = setInterval(() => {
    if (Date.now() > end) { clearInterval(t); s.close(); return out({ id: c.id, ok: true, sent }); }
    for (let k = 0; k < c.burst; k++) { const p = c.ports[i++ % c.ports.length]; s.send('f', p, c.host); sent[p]++; }
  }, 1);
}
function rr(c) {
  // count round trips, or as many as fit in maxMs (slow filters)
  const sock = net.connect({ host: c.host, port: c.port });
  const lat = []; let t0 = 0n; let done = false;
  const started = Date.now();
  sock.setNoDelay(true);
  const finish = () => {
    if (done) return; done = true; clearTimeout(timer); sock.destroy();
    if (lat.length === 0) return out({ id: c.id, ok: false });
    lat.sort((a, b) => a - b);
    const q = (f) => lat[Math.min(lat.length - 1, Math.floor(f * lat.length))];
    out({ id: c.id, ok: true, n: lat.length, p50: q(0.5), p99: q(0.99) });
  };
  const timer = setTimeout(finish, c.maxMs);
  sock.on('error', finish);
  sock.on('connect', () => { t0 = process.hrtime.bigint(); sock.write('r'); });
  sock.on('data', () => {
    lat.push(Number(process.hrtime.bigint() - t0) / 1000);
    if (lat.length >= c.count || Date.now() - started > c.maxMs) return finish();
    t0 = process.hrtime.bigint(); sock.write('r');
  });
}
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const c = JSON.parse(line);
  if (c.op === 'serve') serve(c);
  else if (c.op === 'stats') out({ id: c.id, ok: true, udp: udpCount });
  else if (c.op === 'tcp') tcp(c);
  else if (c.op === 'udp') udp(c);
  else if (c.op === 'hold') hold(c);
  else if (c.op === 'flood') flood(c);
  else if (c.op === 'rr') rr(c);
});
process.stdin.on('end', () => process.exit(0));
out({ ready: true });
`;
