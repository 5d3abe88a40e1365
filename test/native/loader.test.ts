// The addon loader: importing the façade loads nothing, and a failed load names the
// file, the cause and the fix.
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';

describe('loader', () => {
  it('does not load the addon when the module is imported, only on first use', async () => {
    const calls: string[] = [];
    const orig = process.dlopen;
    process.dlopen = function (this: unknown, module: { exports: unknown }, filename: string, ...rest: unknown[]) {
      calls.push(filename);
      return (orig as (...a: unknown[]) => void).call(this, module, filename, ...rest);
    } as typeof process.dlopen;
    try {
      const m = await import('../../src/dataplane/native.js');
      const path = m.addonPath();
      const req = createRequire(import.meta.url);
      const wasCached = req.cache[path] !== undefined;
      expect(calls.filter((c) => c.endsWith('vfplane_native.node'))).toEqual([]);
      m.loadAddon();
      // A process that had not loaded it yet must open it now.
      if (!wasCached) expect(calls).toContain(path);
      expect(req.cache[path]).toBeDefined();
    } finally {
      process.dlopen = orig;
    }
  });

  it('finds the package root and the addon under build/Release', async () => {
    const m = await import('../../src/dataplane/native.js');
    expect(m.addonPath()).toMatch(/build\/Release\/vfplane_native\.node$/);
    const feats = m.nativeFeatures();
    expect(feats.memory?.built).toBe(true);
  });

  it('explains a missing build', async () => {
    const m = await import('../../src/dataplane/native.js');
    const p = '/nonexistent/build/Release/vfplane_native.node';
    let err: unknown;
    try {
      m.loadAddon(p);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(m.NativeLoadError);
    const e = err as InstanceType<typeof m.NativeLoadError>;
    expect(e.message).toContain(p);
    expect(e.message).toMatch(/not been built/);
    expect(e.message).toMatch(/npm run build:native/);
    expect(e.message).toMatch(/\.\/scripts\/setup/);
    expect(e.message).toMatch(/cause: /);
    expect(e.path).toBe(p);
  });

  it('explains a Node ABI mismatch', async () => {
    const m = await import('../../src/dataplane/native.js');
    const p = m.addonPath();
    const e = m.explainLoadError(p, new Error(
      `The module '${p}' was compiled against a different Node.js version using NODE_MODULE_VERSION 108. ` +
        'This version of Node.js requires NODE_MODULE_VERSION 115.'));
    expect(e.message).toContain(p);
    expect(e.message).toMatch(/another Node\.js version/);
    expect(e.message).toContain(process.version);
    expect(e.message).toMatch(/NODE_MODULE_VERSION 108/);
    expect(e.fix).toMatch(/npm run build:native/);
  });

  it('names the Debian package of a missing shared library', async () => {
    const m = await import('../../src/dataplane/native.js');
    const p = m.addonPath();
    const e = m.explainLoadError(p, new Error(`libxdp.so.1: cannot open shared object file: No such file or directory`));
    expect(e.message).toMatch(/libxdp\.so\.1 is missing/);
    expect(e.fix).toMatch(/apt-get install libxdp1/);
    const e2 = m.explainLoadError(p, new Error(`librte_eal.so.23: cannot open shared object file: No such file or directory`));
    expect(e2.fix).toMatch(/apt-get install dpdk/);
    const e3 = m.explainLoadError(p, new Error(`libfoo.so.9: cannot open shared object file: No such file or directory`));
    expect(e3.fix).toMatch(/apt-file search libfoo\.so\.9/);
  });
});
