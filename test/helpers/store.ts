// An allocation store as an older vfplane left it, for the tests of reading and
// migrating one: schema 1 had no netns identity (netns_id) and no node.
import Database from 'better-sqlite3';

/** Takes the store file back to schema 1 (its rows kept). */
export function asSchema1(file: string): void {
  const db = new Database(file);
  try {
    db.exec('ALTER TABLE allocations DROP COLUMN netns_id');
    db.exec('ALTER TABLE allocations DROP COLUMN node');
    db.pragma('user_version = 1');
  } finally {
    db.close();
  }
}

/** The store file's schema version, read without opening it as a store. */
export function schemaOf(file: string): number {
  const db = new Database(file, { readonly: true });
  try {
    return db.pragma('user_version', { simple: true }) as number;
  } finally {
    db.close();
  }
}
