/**
 * Probes from one pod (runs inside its network namespace): TCP connects and
 * UDP echo requests to the given targets, at most `--parallel` at once, each
 * bounded by `--timeout` ms. Prints one JSON line per probe:
 *   {"i": <index>, "reached": true|false, "detail": "connected"|"timeout"|...}
 *   probe --run <id> --timeout 1500 --parallel 24 --targets '[{"ip":..,"protocol":"TCP","port":80,"payload":".."}]'
 */
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { parseArgs } from 'node:util';

interface Target {
  readonly ip: string;
  readonly protocol: 'TCP' | 'UDP';
  readonly port: number;
  readonly payload: string;
}

const { values } = parseArgs({
  options: {
    run: { type: 'string' },
    timeout: { type: 'string' },
    parallel: { type: 'string' },
    targets: { type: 'string' },
  },
});
const timeoutMs = Math.min(10_000, Math.max(100, Number(values.timeout ?? 1500)));
const parallel = Math.min(64, Math.max(1, Number(values.parallel ?? 24)));
const targets = JSON.parse(values.targets ?? '[]') as Target[];

function tcp(t: Target): Promise<{ reached: boolean; detail: string }> {
  return new Promise((resolve) => {
    const s = connect({ host: t.ip, port: t.port });
    let done = false;
    const finish = (reached: boolean, detail: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ reached, detail });
    };
    const timer = setTimeout(() => finish(false, 'timeout'), timeoutMs);
    s.on('connect', () => {
      s.write(`${t.payload}\n`);
      // wait for the listener's greeting: the reply direction works too
      s.once('data', () => finish(true, 'connected'));
    });
    s.on('error', (e: NodeJS.ErrnoException) =>
      finish(e.code === 'ECONNREFUSED', e.code ?? e.message),
    );
  });
}

function udp(t: Target): Promise<{ reached: boolean; detail: string }> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    let done = false;
    const finish = (reached: boolean, detail: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      clearInterval(resend);
      s.close();
      resolve({ reached, detail });
    };
    const msg = Buffer.from(t.payload);
    const send = (): void => s.send(msg, t.port, t.ip, () => undefined);
    const timer = setTimeout(() => finish(false, 'timeout'), timeoutMs);
    // a datagram can be lost; re-send (bounded by the timeout)
    const resend = setInterval(send, Math.max(100, Math.floor(timeoutMs / 3)));
    s.on('message', (m) => finish(m.equals(msg), 'echoed'));
    s.on('error', (e) => finish(false, e.message));
    send();
  });
}

let next = 0;
async function worker(): Promise<void> {
  while (next < targets.length) {
    const i = next++;
    const t = targets[i] as Target;
    const r = t.protocol === 'UDP' ? await udp(t) : await tcp(t);
    process.stdout.write(`${JSON.stringify({ i, ...r })}\n`);
  }
}
await Promise.all(Array.from({ length: Math.min(parallel, targets.length) }, worker));
