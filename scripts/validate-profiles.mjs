#!/usr/bin/env node
// After tsc: validates the shipped hw-profiles once, at build, as a command loads them
// (each file, and across files: a PF ID claimed twice, a misnamed or oversized file), and
// writes each one's text and what validation made of it next to dist/sriov/profile.js,
// stamped with a hash of that module (moduleStamp). A command reading a file whose
// text is one of these takes it as validated, without building the schema (~25 ms of a
// `vf list` or CNI ADD otherwise), as long as profile.js is the one stamped (a `tsc`
// alone after a schema change makes the list unused until this runs again). Any other
// text is validated as before. Shipped profiles that do not validate fail the build, and
// leave no list.
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';

const dist = new URL('../dist/sriov/', import.meta.url);
const module = new URL('profile.js', dist);
// The list first goes (before profile.js reads it): a failure below leaves none.
const dest = new URL('hw-profiles.validated.json', dist);
rmSync(dest, { force: true });
const { DEFAULT_PROFILES_DIR, VALIDATED_FILE, loadProfiles, moduleStamp } = await import(module.href);
if (new URL(VALIDATED_FILE, dist).href !== dest.href) throw new Error(`validate-profiles.mjs: profile.js reads ${VALIDATED_FILE}; update this script`);
let profiles;
try {
  profiles = loadProfiles(DEFAULT_PROFILES_DIR);
} catch (e) {
  process.stderr.write(`vfplane build: the shipped hw-profiles do not validate: ${e.message}\n`);
  process.exit(1);
}
const out = {
  module: moduleStamp(),
  profiles: profiles.map(({ file, ...profile }) => ({ text: readFileSync(file, 'utf8'), profile })),
};
writeFileSync(new URL(`${dest.href}.tmp`), JSON.stringify(out));
renameSync(new URL(`${dest.href}.tmp`), dest);
