#!/usr/bin/env node
// After tsc: validates the shipped hw-profiles once, at build, and writes each one's text
// and what validation made of it next to dist/sriov/profile.js. A command reading a file
// whose text is one of these takes it as validated, without building the schema (~25 ms
// of a `vf list` or CNI ADD otherwise); any other text is validated as before. A shipped
// profile that does not validate fails the build, naming the file and field.
import { readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dist = new URL('../dist/sriov/', import.meta.url);
const { DEFAULT_PROFILES_DIR, VALIDATED_FILE, parseProfile } = await import(new URL('profile.js', dist).href);
const out = [];
const problems = [];
for (const name of readdirSync(DEFAULT_PROFILES_DIR).filter((n) => n.endsWith('.json')).sort()) {
  const file = join(DEFAULT_PROFILES_DIR, name);
  const text = readFileSync(file, 'utf8');
  const r = parseProfile(text, file, { fresh: true });
  if ('issues' in r) problems.push(...r.issues.map((i) => `${i.file}: ${i.path ? `${i.path}: ` : ''}${i.message}`));
  else {
    const { file: _, ...profile } = r.profile;
    out.push({ text, profile });
  }
}
if (problems.length) {
  process.stderr.write(`vfplane build: the shipped hw-profiles do not validate:\n  ${problems.join('\n  ')}\n`);
  process.exit(1);
}
const dest = new URL(VALIDATED_FILE, dist);
writeFileSync(new URL(`${dest.href}.tmp`), JSON.stringify(out));
renameSync(new URL(`${dest.href}.tmp`), dest);
