/**
 * `palisade agent --config FILE [flags]`: run this node's enforcer until
 * SIGTERM/SIGINT (graceful: sinks flushed; programs and pins keep enforcing).
 * Exit 0 after a signal; 2 on a bad config, token file or filter.
 */
import type { Command } from 'commander';
import { TokenFileError } from '../../../enforcer/src/api/auth.js';
import {
  AgentConfigError,
  loadAgentConfig,
  runAgent,
  type AgentFlags,
} from '../../../enforcer/src/agent/index.js';
import { CliError, type CliContext } from '../context.js';

interface AgentOptions extends AgentFlags {
  readonly config?: string;
}

export function agent(program: Command, ctx: CliContext): void {
  program
    .command('agent')
    .description(
      'run the node enforcer agent (sources → compile → BPF datapath → flow logs, metrics, API)',
    )
    .option('-c, --config <file>', 'agent config file (YAML or JSON; see docs/enforcer.md "Agent")')
    .option('--node <name>', "this node's name (as in the world's Pod spec.nodeName)")
    .option('--cluster <name>', "this node's cluster")
    .option('--manifests <dir>', 'watch this directory of manifests (directory source)')
    .option(
      '--kubeconfig <file>',
      'read the Kubernetes API with this kubeconfig (Kubernetes source)',
    )
    .option('--pin-dir <dir>', 'bpffs directory for pins (default /sys/fs/bpf/palisade)')
    .option('--flows-ndjson <file>', 'write native flow records (NDJSON, rotated) here')
    .option('--flows-ocsf <file>', 'write OCSF Network Activity records (NDJSON, rotated) here')
    .option('--flows-stdout', 'write native flow records to standard output')
    .option('--flows-filter <cel>', 'keep only flow records this CEL expression selects')
    .option('--token-file <file>', 'bearer token for the API (mode 0600)')
    .option('--listen <addr>', 'API address (default 127.0.0.1:9962)')
    .option('--interfaces <method>', 'endpoint discovery: routes (default) or static')
    .option('--status-file <file>', 'also write status JSON here every 250 ms')
    .option('--mesh-etcd <urls>', 'mesh store: comma-separated etcd client URLs')
    .option('--mesh-publish', "publish this node's pods to the mesh store")
    .option(
      '--state-dir <dir>',
      'files kept across restarts, e.g. identity numbers (default /var/lib/palisade/agent)',
    )
    .action(async (opts: AgentOptions) => {
      let running;
      try {
        const config = loadAgentConfig(opts.config, opts);
        running = await runAgent(config, {
          info: (m) => ctx.stderr.write(`${ctx.displayName} agent: ${m}\n`),
          error: (m) => ctx.stderr.write(`${ctx.displayName} agent: error: ${m}\n`),
        });
      } catch (e) {
        if (e instanceof AgentConfigError || e instanceof TokenFileError)
          throw new CliError(e.message);
        throw e;
      }
      const agentRun = running;
      await new Promise<void>((resolve) => {
        const onSignal = (): void => {
          process.off('SIGTERM', onSignal);
          process.off('SIGINT', onSignal);
          void agentRun.stop().finally(resolve);
        };
        process.on('SIGTERM', onSignal);
        process.on('SIGINT', onSignal);
      });
      ctx.exitCode = 0;
    });
}
