// The error a call throws, of the class the test expects (the test fails otherwise), so
// a test can assert on its fields: kind, code, message.
import { expect } from 'vitest';

type Class<E> = abstract new (...args: never[]) => E;

export function thrown<E>(cls: Class<E>, fn: () => unknown): E {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(cls);
    return err as E;
  }
  throw new Error(`expected a ${cls.name}`);
}

export async function rejected<E>(cls: Class<E>, p: Promise<unknown>): Promise<E> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(cls);
    return err as E;
  }
  throw new Error(`expected a ${cls.name}`);
}
