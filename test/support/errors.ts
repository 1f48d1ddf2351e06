/**
 * The message of the error `f` throws, asserting its class: tests of input validation compare
 * messages (they are the user interface), and a call that does not throw fails the test.
 */
import { expect } from 'vitest';

export function thrownMessage(
  f: () => unknown,
  kind: abstract new (...args: never[]) => Error,
): string {
  let thrown: unknown;
  try {
    f();
  } catch (e) {
    thrown = e;
  }
  expect(thrown, 'expected an error to be thrown').toBeInstanceOf(kind);
  return (thrown as Error).message;
}
