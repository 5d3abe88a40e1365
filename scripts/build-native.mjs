#!/usr/bin/env node
// Builds the native addon offline. It points node-gyp at the Node headers that ship
// with the system Node (/usr/include/node) so node-gyp never tries to download them,
// and it detects optional I/O backends with pkg-config, saying what it leaves out.
import { spawnSync, execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync, statSync, readdirSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const ifChanged = process.argv.includes('--if-changed');
const say = (msg) => process.stderr.write(`vfplane build: ${msg}\n`);

function pkgConfig(args) {
  try {
    return execFileSync('pkg-config', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

// Optional backends: the C sources are compiled only when their library is present.
const backends = [
  { name: 'afxdp', pkgs: ['libxdp', 'libbpf'], fix: 'apt-get install libxdp-dev libbpf-dev' },
  { name: 'dpdk', pkgs: ['libdpdk'], fix: 'apt-get install libdpdk-dev' },
];
const features = { memory: { built: true }, afpacket: { built: true } };
const gypVars = [];
for (const b of backends) {
  const versions = b.pkgs.map((p) => pkgConfig(['--modversion', p]));
  const ok = versions.every((v) => v !== null);
  features[b.name] = ok
    ? { built: true, versions: Object.fromEntries(b.pkgs.map((p, i) => [p, versions[i]])) }
    : { built: false, reason: `pkg-config found no ${b.pkgs.filter((_, i) => versions[i] === null).join(', ')}`, fix: b.fix };
  gypVars.push(`-Dhave_${b.name}=${ok ? 1 : 0}`);
  if (!ok) say(`${b.name} backend left out: ${features[b.name].reason} (fix: ${b.fix})`);
}

const outDir = join(root, 'build', 'Release');
const addon = join(outDir, 'vfplane_native.node');

function newestMtime(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

// A backend library installed (or removed) since the last build changes what is built.
function sameBackends() {
  try {
    const prev = JSON.parse(readFileSync(join(outDir, 'features.json'), 'utf8'));
    return Object.keys(features).every((k) => prev[k]?.built === features[k].built);
  } catch {
    return false;
  }
}

if (ifChanged && existsSync(addon) && sameBackends()) {
  const srcTime = Math.max(newestMtime(join(root, 'native')), statSync(join(root, 'binding.gyp')).mtimeMs,
    statSync(fileURLToPath(import.meta.url)).mtimeMs);
  if (statSync(addon).mtimeMs >= srcTime) process.exit(0);
}

const env = { ...process.env };
// node-gyp downloads headers unless told where they are; Debian's nodejs ships them.
if (!env.npm_config_nodedir && existsSync('/usr/include/node/node_api.h')) env.npm_config_nodedir = '/usr';

let gyp;
try {
  gyp = require.resolve('node-gyp/bin/node-gyp.js');
} catch {
  say('node-gyp is not installed; run `npm ci` first');
  process.exit(1);
}
const jobs = String(Math.max(1, (await import('node:os')).availableParallelism()));
const args = [gyp, 'rebuild', '--release', '-j', jobs, '--', ...gypVars];
if (env.npm_config_nodedir) args.splice(2, 0, `--nodedir=${env.npm_config_nodedir}`);
const r = spawnSync(process.execPath, args, { cwd: root, env, stdio: ['ignore', 'inherit', 'inherit'] });
if (r.status !== 0) {
  say('native build failed. It needs g++ >= 10, make and python3, and Node headers ' +
      '(/usr/include/node on Debian, from the nodejs package). Re-run: npm run build:native');
  process.exit(r.status ?? 1);
}
mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, 'features.json'), JSON.stringify(features, null, 2) + '\n');
say(`built ${addon}`);
