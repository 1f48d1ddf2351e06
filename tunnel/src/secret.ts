/**
 * A value that must never reach a log, an error message or stdout. Every way
 * JavaScript turns an object into text (String(), template strings, JSON,
 * util.inspect / console.log, pino's serializers) yields a redaction; the one
 * way to the value is `reveal()`, so every use of a secret is greppable.
 */
import { inspect } from 'node:util';

const REDACTED = '[redacted]';

export class Secret<T = string> {
  readonly #value: T;

  constructor(value: T) {
    this.#value = value;
  }

  /** The secret itself: call only at the point of use (UAPI write, key file). */
  reveal(): T {
    return this.#value;
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [Symbol.toPrimitive](): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return `Secret(${REDACTED})`;
  }
}
