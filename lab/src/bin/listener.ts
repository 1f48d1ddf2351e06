/**
 * A pod's listeners (runs inside the pod's network namespace): one TCP and
 * one UDP socket per probed port. TCP answers with a line naming the pod and
 * echoes what it receives; UDP echoes each datagram. Bounded: connections end
 * after 5 s idle, at most 256 open at once.
 *   listener --run <id> --pod <cluster/ns/name> --ports TCP/8080,UDP/8125,...
 */
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: { run: { type: 'string' }, pod: { type: 'string' }, ports: { type: 'string' } },
});
const pod = values.pod ?? 'unknown';
const ports = (values.ports ?? '')
  .split(',')
  .filter(Boolean)
  .map((p) => {
    const [proto, n] = p.split('/');
    return { proto: proto?.toUpperCase(), port: Number(n) };
  });

let open = 0;
for (const { proto, port } of ports) {
  if (proto === 'TCP') {
    const srv = createServer((sock) => {
      if (open >= 256) return sock.destroy();
      open++;
      sock.setTimeout(5000, () => sock.destroy());
      sock.on('close', () => open--);
      sock.on('error', () => undefined);
      sock.write(`palisade-lab ${pod} tcp/${port}\n`);
      sock.on('data', (d) => sock.write(d));
    });
    srv.on('error', (e) => {
      process.stderr.write(`listener ${pod}: tcp/${port}: ${e.message}\n`);
      process.exit(1);
    });
    srv.listen(port, '0.0.0.0');
  } else if (proto === 'UDP') {
    const s = createSocket('udp4');
    s.on('message', (msg, rinfo) => s.send(msg, rinfo.port, rinfo.address));
    s.on('error', (e) => {
      process.stderr.write(`listener ${pod}: udp/${port}: ${e.message}\n`);
      process.exit(1);
    });
    s.bind(port, '0.0.0.0');
  }
}
const stop = (): void => process.exit(0);
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdout.write(`listening ${pod} ${values.ports ?? ''}\n`);
