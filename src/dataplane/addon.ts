// Loading the native addon, with an explanation when it fails. Kept apart from native.ts
// (the engine façade) so that light modules (src/net/ip.ts) can use the addon without
// importing the packet model.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RawAddon } from './addon-types.js';

/** The addon could not be loaded; `fix` says what to run. */
export class NativeLoadError extends Error {
  constructor(
    message: string,
    readonly path: string,
    readonly fix: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'NativeLoadError';
  }
}

const here = dirname(fileURLToPath(import.meta.url));

/** The package root: the nearest directory above this module with vfplane's package.json
 *  (src/dataplane under vitest, dist/dataplane after tsc). */
export function packageRoot(from = here): string {
  for (let dir = from; ; ) {
    const pj = join(dir, 'package.json');
    if (existsSync(pj)) {
      try {
        if ((JSON.parse(readFileSync(pj, 'utf8')) as { name?: string }).name === 'vfplane') return dir;
      } catch {
        // an unreadable package.json is not ours; keep walking up
      }
    }
    const up = dirname(dir);
    if (up === dir) throw new Error(`cannot find vfplane's package.json above ${from}`);
    dir = up;
  }
}

export function addonPath(): string {
  return join(packageRoot(), 'build', 'Release', 'vfplane_native.node');
}

// Shared libraries the addon can link against, and the Debian 12 package that has each.
const LIB_PACKAGES: [RegExp, string][] = [
  [/^libxdp\.so/, 'libxdp1'],
  [/^libbpf\.so/, 'libbpf1'],
  [/^librte_/, 'dpdk (the librte-* runtime libraries)'],
  [/^libnuma\.so/, 'libnuma1'],
  [/^libelf\.so/, 'libelf1'],
  [/^libz\.so/, 'zlib1g'],
  [/^libstdc\+\+\.so/, 'libstdc++6'],
  [/^libgcc_s\.so/, 'libgcc-s1'],
];

/** Turns a failed require() of the addon into an error that names the file, the cause
 *  and the fix. Exported for tests. */
export function explainLoadError(path: string, err: unknown): NativeLoadError {
  const msg = err instanceof Error ? err.message : String(err);
  const code = (err as { code?: string } | null)?.code;
  let why: string;
  let fix: string;
  const lib = /([^\s:/]+\.so[.\d]*): cannot open shared object file/.exec(msg);
  if (!existsSync(path) || code === 'MODULE_NOT_FOUND') {
    why = 'it has not been built';
    fix = 'run `npm run build:native` (or ./scripts/setup, which also installs the toolchain)';
  } else if (/NODE_MODULE_VERSION/.test(msg)) {
    why = `it was built for another Node.js version (this is Node ${process.version}, ABI ${process.versions.modules})`;
    fix = 'rebuild it for this Node: `npm run build:native`';
  } else if (lib) {
    const name = lib[1]!;
    const pkg = LIB_PACKAGES.find(([re]) => re.test(name))?.[1];
    why = `the shared library ${name} is missing`;
    fix = pkg
      ? `install it: \`apt-get install ${pkg.split(' ')[0]}\`${pkg.includes(' ') ? ` (${pkg})` : ''}, or rebuild without that backend: \`npm run build:native\``
      : `install the package that ships ${name} (\`apt-file search ${name}\`), or rebuild: \`npm run build:native\``;
  } else if (/invalid ELF header|wrong ELF class|cannot open shared object|undefined symbol/.test(msg)) {
    why = 'the file does not match this system (another architecture, libc or a stale build)';
    fix = 'rebuild it here: `npm run build:native`';
  } else {
    why = 'loading it failed';
    fix = 'rebuild it: `npm run build:native`; if that does not help, report the message above';
  }
  return new NativeLoadError(
    `cannot load the vfplane native addon ${path}: ${why}.\n  cause: ${msg}\n  fix: ${fix}`,
    path,
    fix,
    { cause: err },
  );
}

let cached: RawAddon | undefined;

/** The raw addon, loaded on first call. `path` overrides the location (tests). */
export function loadAddon(path?: string): RawAddon {
  if (cached && path === undefined) return cached;
  const p = path ?? addonPath();
  let mod: RawAddon;
  try {
    mod = createRequire(import.meta.url)(p) as RawAddon;
  } catch (err) {
    throw explainLoadError(p, err);
  }
  if (path === undefined) cached = mod;
  return mod;
}

