/**
 * What every command needs from its surroundings: where data and errors go,
 * where `-f -` reads from, the name help text uses, and the exit code to end
 * with. Passed in (not read from `process`) so the same program serves
 * `palisade`, `kubectl palisade` and tests.
 */

export interface TextSink {
  write(text: string): unknown;
}

export interface CliContext {
  /** How help and messages name the tool: `palisade` or `kubectl palisade`. */
  readonly displayName: string;
  readonly stdout: TextSink;
  readonly stderr: TextSink;
  /** Standard input (for `-f -`); a function so it is only opened when asked for. */
  stdin(): NodeJS.ReadableStream;
  /** Set by a command: 0 ok, 1 findings / denied / changed, 2 usage or input error. */
  exitCode: number;
}

export const EXIT_OK = 0;
export const EXIT_FINDINGS = 1;
export const EXIT_USAGE = 2;

/**
 * An error the user caused (bad flag value, unreadable or invalid input, an
 * engine that is not built): printed as its message, never with a stack trace.
 */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT_USAGE,
  ) {
    super(message);
    this.name = 'CliError';
  }
}
