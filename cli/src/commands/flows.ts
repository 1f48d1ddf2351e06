/**
 * `palisade flows`: read flow logs (NDJSON files, rotated ones included) or
 * an agent's API (`--server`, bearer token from a 0600 file; `--follow` keeps
 * streaming), keep what a CEL filter selects, print a table, NDJSON, or OCSF Network
 * Activity events (one per flow; loss records have no OCSF class, so they are counted on
 * stderr instead of being dropped silently).
 * Exit 0; 2 on a bad filter, an unreadable file, a malformed line, or an API error.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { loadTokenFile, TokenFileError } from '../../../enforcer/src/api/auth.js';
import { compileFilter, type FlowFilter } from '../../../enforcer/src/flows/filter.js';
import { toOcsf } from '../../../enforcer/src/flows/ocsf.js';
import { isFlowRecord, type AnyFlowRecord } from '../../../enforcer/src/flows/record.js';
import { FLOW_TABLE_HEADER, flowTableRow } from '../../../enforcer/src/flows/text.js';
import { CliError, EXIT_USAGE, type CliContext } from '../context.js';
import { outputOption } from './options.js';

interface FlowsOptions {
  filename?: string[];
  server?: string;
  tokenFile?: string;
  filter?: string;
  follow?: boolean;
  count?: number;
  output: 'table' | 'json' | 'ocsf';
}

function positiveInt(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1)
    throw new InvalidArgumentError(`"${text}" is not a positive integer.`);
  return n;
}

function isRecord(v: unknown): v is AnyFlowRecord {
  return typeof v === 'object' && v !== null && ('flow' in v || 'lost_events' in v);
}

class Printer {
  private printed = 0;
  private headerDone = false;
  private lossRecords = 0;
  private eventsLost = 0;
  constructor(
    private readonly ctx: CliContext,
    private readonly opts: FlowsOptions,
    private readonly filter: FlowFilter | undefined,
  ) {}
  /** False once --count records were printed. */
  print(r: AnyFlowRecord): boolean {
    if (isFlowRecord(r) && this.filter && !this.filter.matches(r)) return true;
    if (this.opts.output === 'json') {
      this.ctx.stdout.write(`${JSON.stringify(r)}\n`);
    } else if (this.opts.output === 'ocsf') {
      if (!isFlowRecord(r)) {
        this.lossRecords++;
        this.eventsLost += r.lost_events.num_events_lost;
        return true;
      }
      this.ctx.stdout.write(`${JSON.stringify(toOcsf(r))}\n`);
    } else {
      if (!this.headerDone) this.ctx.stdout.write(`${FLOW_TABLE_HEADER}\n`);
      this.headerDone = true;
      this.ctx.stdout.write(`${flowTableRow(r)}\n`);
    }
    this.printed++;
    return this.opts.count === undefined || this.printed < this.opts.count;
  }
  /** OCSF output only: say what the input reported as lost, since OCSF cannot carry it. */
  finish(): void {
    if (this.lossRecords > 0)
      this.ctx.stderr.write(
        `${this.lossRecords} loss record(s) (${this.eventsLost} events lost upstream) are not ` +
          'OCSF flows and were left out of the output; -o json keeps them\n',
      );
  }
}

async function readFiles(
  files: readonly string[],
  printer: Printer,
  ctx: CliContext,
): Promise<number> {
  let bad = 0;
  for (const file of files) {
    const input = createReadStream(file, { encoding: 'utf8' });
    const lines = createInterface({ input, crlfDelay: Infinity });
    let n = 0;
    try {
      for await (const line of lines) {
        n++;
        if (line.trim() === '') continue;
        let v: unknown;
        try {
          v = JSON.parse(line);
        } catch {
          v = undefined;
        }
        if (!isRecord(v)) {
          bad++;
          ctx.stderr.write(
            `${file}:${n}: not a flow record (expected a JSON object with "flow" or "lost_events")\n`,
          );
          continue;
        }
        if (!printer.print(v)) {
          lines.close();
          input.destroy();
          return bad;
        }
      }
    } catch (e) {
      throw new CliError(
        `${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
      );
    }
  }
  return bad;
}

async function readApi(opts: FlowsOptions, printer: Printer): Promise<void> {
  if (!opts.tokenFile)
    throw new CliError('--server needs --token-file (the agent API requires a bearer token)');
  let token: string;
  try {
    token = await loadTokenFile(opts.tokenFile);
  } catch (e) {
    if (e instanceof TokenFileError) throw new CliError(e.message);
    throw e;
  }
  const url = new URL('/v1/flows', opts.server);
  if (opts.filter) url.searchParams.set('filter', opts.filter);
  if (opts.follow) url.searchParams.set('follow', 'true');
  const controller = new AbortController();
  let res: Response;
  try {
    res = await fetch(url, {
      headers: { authorization: `Bearer ${token}` },
      signal: controller.signal,
    });
  } catch (e) {
    throw new CliError(
      `${opts.server}: ${(e as Error).cause instanceof Error ? ((e as Error).cause as Error).message : (e as Error).message}`,
    );
  }
  if (res.status !== 200) {
    const body = (await res.json().catch(() => ({}))) as { message?: string };
    throw new CliError(`${opts.server}: ${res.status} ${body.message ?? res.statusText}`);
  }
  if (!res.body) return;
  const decoder = new TextDecoder();
  let buf = '';
  try {
    for await (const chunk of res.body) {
      buf += decoder.decode(chunk as Uint8Array, { stream: true });
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (!line.trim()) continue;
        const v: unknown = JSON.parse(line);
        if (isRecord(v) && !printer.print(v)) {
          controller.abort();
          return;
        }
      }
    }
  } catch (e) {
    if (controller.signal.aborted) return;
    throw new CliError(`${opts.server}: stream ended: ${(e as Error).message}`);
  }
}

export function flows(program: Command, ctx: CliContext): void {
  program
    .command('flows')
    .description('read or follow flow logs (NDJSON files or an agent API) with a CEL filter')
    .addOption(
      new Option(
        '-f, --filename <paths...>',
        'NDJSON flow log files (rotated files too, oldest first)',
      ),
    )
    .addOption(
      new Option('--server <url>', 'agent API, e.g. http://127.0.0.1:9962').conflicts('filename'),
    )
    .option('--token-file <path>', 'file with the API bearer token (mode 0600)')
    .option(
      '--filter <cel>',
      'CEL over the flow view, e.g. "flow.verdict == \'DROPPED\' && flow.dst.port == 443"',
    )
    .option('--follow', 'keep streaming new records (with --server)')
    .addOption(new Option('--count <n>', 'stop after n records').argParser(positiveInt))
    .addOption(outputOption(['table', 'json', 'ocsf'], 'table'))
    .action(async (opts: FlowsOptions) => {
      if (!opts.filename && !opts.server) throw new CliError('give -f FILE... or --server URL');
      if (opts.follow && !opts.server)
        throw new CliError('--follow needs --server (files are read once)');
      let filter: FlowFilter | undefined;
      if (opts.filter !== undefined) {
        const c = compileFilter(opts.filter);
        if (!c.ok) {
          throw new CliError(
            `--filter: ${c.error.message}\n  ${opts.filter}\n  ${' '.repeat(c.error.start)}^`,
            EXIT_USAGE,
          );
        }
        filter = c.filter;
      }
      const printer = new Printer(ctx, opts, filter);
      if (opts.server) {
        // The agent filters; filtering again here changes nothing and keeps one code path.
        await readApi(opts, printer);
      } else {
        const bad = await readFiles(opts.filename ?? [], printer, ctx);
        if (bad > 0) ctx.exitCode = EXIT_USAGE;
      }
      printer.finish();
    });
}
