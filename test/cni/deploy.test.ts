// The deploy/ examples stay valid: every manifest parses, and every
// NetworkAttachmentDefinition's config is one vfplane-cni accepts.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments, stringify as stringifyYaml } from 'yaml';
import { BIN, ROOT } from '../helpers/cli.js';
import { ifname, Netns } from '../helpers/netns.js';
import { describePrivileged } from '../helpers/privileged.js';
import { request } from '../../src/dataplane/control.js';
import { parseConf } from '../../src/cni/conf.js';
import { parseConfig, tenancyRefusal } from '../../src/dataplane/config.js';
import { parse as parseYaml } from 'yaml';

const dir = join(ROOT, 'deploy');
const docs = readdirSync(dir).filter((f) => f.endsWith('.yaml')).flatMap((f) =>
  parseAllDocuments(readFileSync(join(dir, f), 'utf8')).map((d) => ({ file: f, doc: d.toJS() as any })).filter((d) => d.doc));

describe('deploy/ manifests', () => {
  it('has a DaemonSet that installs vfplane-cni into /opt/cni/bin', () => {
    const ds = docs.find((d) => d.doc.kind === 'DaemonSet')!.doc;
    expect(JSON.stringify(ds)).toContain('/opt/cni/bin');
    // The install script parses, and writes the .shim file the shim reads beside itself.
    const init = ds.spec.template.spec.initContainers.find((x: any) => x.name === 'install-cni');
    const script = init.args[0] as string;
    expect(spawnSync('sh', ['-n', '-c', script]).status).toBe(0);
    expect(script).toContain('/host/opt/cni/bin/vfplane-cni.shim');
    expect(script).toMatch(/socket=.*node=.*plugin=/);
  });

  it('its install script, run for three versions in turn, installs each and keeps only the current and the one before', () => {
    const ds = docs.find((d) => d.doc.kind === 'DaemonSet')!.doc;
    const init = ds.spec.template.spec.initContainers.find((x: any) => x.name === 'install-cni');
    const tmp = mkdtempSync(join(tmpdir(), 'vfplane-init-'));
    try {
      // A stand-in image: a "node" that answers the VERSION check, and the files copied.
      const image = join(tmp, 'image');
      mkdirSync(join(image, 'bin'), { recursive: true });
      writeFileSync(join(image, 'node'), '#!/bin/sh\necho "{\\"cniVersion\\":\\"1.0.0\\"}"\n', { mode: 0o755 });
      writeFileSync(join(image, 'bin', 'vfplane-cni.js'), '');
      writeFileSync(join(image, 'vfplane-cni-shim'), '#!/bin/sh\n', { mode: 0o755 });
      for (const d of ['cnibin', 'home', 'state', 'config']) mkdirSync(join(tmp, d));
      writeFileSync(join(tmp, 'config', 'pools.json'), '{"pools":[]}');
      const run = (version: string) => {
        writeFileSync(join(image, 'VERSION'), `${version}\n`); // what the image build writes
        const script = (init.args[0] as string).replaceAll('/opt/vfplane/VERSION', join(image, 'VERSION'))
          .replaceAll('/host/opt/vfplane', join(tmp, 'home')).replaceAll('/host/opt/cni/bin', join(tmp, 'cnibin'))
          .replaceAll('/host/var/lib/vfplane', join(tmp, 'state')).replaceAll('/opt/vfplane/.', `${image}/.`).replaceAll('/config/', `${join(tmp, 'config')}/`);
        const r = spawnSync('/bin/sh', ['-ec', script], { encoding: 'utf8' });
        expect(r.status, r.stderr).toBe(0);
        spawnSync('sleep', ['0.05']);
        return r.stderr;
      };
      for (const v of ['0.1.0', '0.2.0', '0.3.0']) run(v);
      expect(readdirSync(join(tmp, 'home')).sort()).toEqual(['0.2.0', '0.3.0']);
      expect(readFileSync(join(tmp, 'cnibin', 'vfplane-cni.shim'), 'utf8')).toContain('node=/opt/vfplane/0.3.0/node');
      run('0.3.0'); // a restart: nothing changes
      expect(readdirSync(join(tmp, 'home')).sort()).toEqual(['0.2.0', '0.3.0']);
      // The pools ConfigMap edited reaches the node at the next start (helper-86: it never
      // did once a pools.json was there); one edited on the node is kept, and said.
      const pools = join(tmp, 'state', 'pools.json');
      expect(readFileSync(pools, 'utf8')).toBe('{"pools":[]}');
      writeFileSync(join(tmp, 'config', 'pools.json'), '{"pools":[{"name":"a","selector":{"drivers":["iavf"]}}]}');
      expect(run('0.3.0')).not.toContain('was edited on this node');
      expect(readFileSync(pools, 'utf8')).toContain('"name":"a"');
      writeFileSync(pools, '{"pools":[{"name":"mine","selector":{"drivers":["iavf"]}}]}');
      writeFileSync(join(tmp, 'config', 'pools.json'), '{"pools":[{"name":"b","selector":{"drivers":["iavf"]}}]}');
      expect(run('0.3.0')).toContain(`vfplane: ${pools} was edited on this node, so the vfplane-pools ConfigMap's pools (which differ) are not installed`);
      expect(readFileSync(pools, 'utf8')).toContain('"name":"mine"');
      rmSync(pools);
      run('0.3.0');
      expect(readFileSync(pools, 'utf8')).toContain('"name":"b"');
      // An image without a usable VERSION stops the install before anything is copied.
      for (const bad of ['', '../x']) {
        writeFileSync(join(image, 'VERSION'), bad);
        const script = (init.args[0] as string).replaceAll('/opt/vfplane/VERSION', join(image, 'VERSION')).replaceAll('/host/opt/vfplane', join(tmp, 'home'));
        const r = spawnSync('/bin/sh', ['-ec', script], { encoding: 'utf8' });
        expect(r.status).toBe(1);
        expect(r.stderr).toContain(`VERSION holds '${bad}', not a version; rebuild the image`);
      }
      expect(readdirSync(join(tmp, 'home')).sort()).toEqual(['0.2.0', '0.3.0']);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('versions an image by its content (scripts/image-version, which the Dockerfile writes to /opt/vfplane/VERSION)', () => {
    expect(readFileSync(join(ROOT, 'deploy', 'Dockerfile'), 'utf8')).toContain('RUN image-version /opt/vfplane > /opt/vfplane/VERSION');
    const tmp = mkdtempSync(join(tmpdir(), 'vfplane-imgver-'));
    const version = (): { code: number | null; out: string; err: string } => {
      const r = spawnSync(join(ROOT, 'scripts', 'image-version'), [tmp], { encoding: 'utf8' });
      return { code: r.status, out: r.stdout.trim(), err: r.stderr };
    };
    try {
      expect(version().err).toContain(`${tmp}/package.json is missing`);
      writeFileSync(join(tmp, 'package.json'), readFileSync(join(ROOT, 'package.json')));
      mkdirSync(join(tmp, 'dist'));
      writeFileSync(join(tmp, 'dist', 'a.js'), 'one');
      const first = version();
      expect(first.code, first.err).toBe(0);
      const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
      expect(first.out).toMatch(new RegExp(`^${pkg.version.replaceAll('.', '\\.')}-[0-9a-f]{12}$`));
      writeFileSync(join(tmp, 'VERSION'), first.out); // written into the tree it hashes: left out
      expect(version().out).toBe(first.out);
      writeFileSync(join(tmp, 'dist', 'a.js'), 'two'); // a rebuild with other content
      expect(version().out).not.toBe(first.out);
      writeFileSync(join(tmp, 'dist', 'a.js'), 'one');
      expect(version().out).toBe(first.out);
      renameSync(join(tmp, 'dist', 'a.js'), join(tmp, 'dist', 'b.js')); // same bytes, other file
      expect(version().out).not.toBe(first.out);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('runs the CNI server with the host paths its IPAM delegates keep state in, probed through the shim the image has', () => {
    const ds = docs.find((d) => d.doc.kind === 'DaemonSet')!.doc;
    const c = ds.spec.template.spec.containers.find((x: any) => x.name === 'vfplane');
    const mounts = (c.volumeMounts as { mountPath: string }[]).map((m) => m.mountPath);
    for (const p of ['/var/lib/cni', '/etc/cni/net.d', '/run/cni', '/var/lib/vfplane', '/run/vfplane', '/var/run/netns']) expect(mounts, p).toContain(p);
    const probe = c.readinessProbe.exec.command as string[];
    expect(probe.slice(0, 3)).toEqual(['env', 'CNI_COMMAND=VERSION', '/opt/vfplane/vfplane-cni-shim']);
    // The image lays out what the probe and the init container use (deploy/Dockerfile).
    const dockerfile = readFileSync(join(dir, 'Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(/cp \/opt\/vfplane\/build\/Release\/vfplane-cni-shim \/opt\/vfplane\/vfplane-cni-shim/);
    expect(dockerfile).toContain('ln -s bin/vfplane.js /opt/vfplane/vfplane');
    expect(dockerfile).toContain('vfplane_native.node');
    // The probe itself, against a server that is not there: it fails (no fallback).
    const r = spawnSync(join(ROOT, 'build/Release/vfplane-cni-shim'), ['/nonexistent/cni.sock', '/nonexistent', '/nonexistent'], { env: { CNI_COMMAND: 'VERSION' }, input: '', encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('no server and the Node plugin cannot be started');
  });

  it('the runtime image installs every library the addon and its tools link, and the DPDK drivers they load (dpdk only recommends them)', () => {
    const dockerfile = readFileSync(join(dir, 'Dockerfile'), 'utf8');
    const runtime = dockerfile.slice(dockerfile.lastIndexOf('FROM '));
    const install = /apt-get install -y --no-install-recommends([\s\S]*?)&&/.exec(runtime)![1]!;
    const listed = new Set(install.replace(/\\\n/g, ' ').split(/\s+/).filter(Boolean));
    // In debian:bookworm-slim already (apt and dpkg need them).
    const base = new Set(['libc6', 'libgcc-s1', 'libstdc++6', 'zlib1g']);
    // One dpkg-query per level of the dependency tree and one dpkg -S for every library
    // (each call reads dpkg's whole database: one per package took ~12 s).
    const pulled = new Set<string>();
    for (let todo = [...listed]; todo.length; ) {
      const out = spawnSync('dpkg-query', ['-W', '-f=${Depends}\n', ...todo], { encoding: 'utf8' }).stdout;
      todo = [];
      for (const d of out.split(/[,|\n]/).map((x) => x.trim().split(/[\s:(]/)[0]!)) if (d && !pulled.has(d)) pulled.add(d), todo.push(d);
    }
    const dirs = ['/usr/lib/x86_64-linux-gnu', '/lib/x86_64-linux-gnu'];
    const bins = ['vfplane_native.node', 'vfp-io-fwd', 'vfp-pktgen', 'vfplane-cni-shim'];
    const links = bins.flatMap((bin) => [...spawnSync('ldd', [join(ROOT, 'build/Release', bin)], { encoding: 'utf8' }).stdout.matchAll(/^\s*(\S+) => /gm)].map((m) => ({ bin, lib: m[1]! })));
    expect(links.length).toBeGreaterThan(bins.length);
    const libs = [...new Set(links.map((l) => l.lib))];
    // (Exit 1 when a path has no package, as one of each pair has; the rest still listed.)
    const owners = new Map<string, string>();
    for (const line of spawnSync('dpkg', ['-S', ...libs.flatMap((lib) => dirs.map((d) => `${d}/${lib}`))], { encoding: 'utf8' }).stdout.split('\n')) {
      const m = /^([^:]+)(?::[^:]+)?: (\S+)$/.exec(line);
      if (m) owners.set(m[2]!.split('/').pop()!, m[1]!);
    }
    for (const { bin, lib } of links) {
      const pkg = owners.get(lib);
      expect(pkg, `no Debian package has ${lib} (linked by ${bin})`).toBeDefined();
      expect(listed.has(pkg!) || base.has(pkg!) || pulled.has(pkg!), `${bin} links ${lib} (${pkg})`).toBe(true);
    }
    // The EAL's drivers: the vdevs vfplane makes (data plane, bench), the buses and the
    // mempool, and each hw-profile's DPDK PMD for its VF.
    const pmdPackage: Record<string, string> = { net_iavf: 'librte-net-iavf23', mlx5_eth: 'librte-net-mlx5-23', net_virtio: 'librte-net-virtio23', net_af_packet: 'librte-net-af-packet23' };
    const profilePmds = readdirSync(join(ROOT, 'hw-profiles')).filter((f) => f.endsWith('.json'))
      .map((f) => (JSON.parse(readFileSync(join(ROOT, 'hw-profiles', f), 'utf8')) as { dpdk: { pmd: string } }).dpdk.pmd);
    for (const pmd of profilePmds) expect(listed, pmd).toContain(pmdPackage[pmd]);
    for (const pkg of ['librte-net-af-xdp23', 'librte-net-af-packet23', 'librte-net-ring23', 'librte-net-null23', 'librte-net-tap23', 'librte-bus-pci23', 'librte-bus-vdev23', 'librte-mempool-ring23', 'librte-net-ice23']) {
      expect(listed, pkg).toContain(pkg);
    }
    // The build context leaves the tree's own builds out, or setup would reuse them.
    const ignore = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n');
    for (const d of ['node_modules/', 'build/', 'dist/']) expect(ignore).toContain(d);
  });

  it('runs the data plane with a config it accepts, next to the CNI server', () => {
    const ds = docs.find((d) => d.doc.kind === 'DaemonSet')!.doc;
    const c = ds.spec.template.spec.containers.find((x: any) => x.name === 'dataplane');
    expect(c.args[0]).toContain('vfplane dataplane run --config');
    const cm = docs.find((d) => d.doc.kind === 'ConfigMap' && d.doc.metadata.name === 'vfplane-dataplane')!.doc;
    const text = (cm.data['dataplane.yaml'] as string).replace('${NODE_IP}', '10.0.0.5').replace('${NODE_NAME}', 'worker-1').replace('${METRICS_HOST}', '10.0.0.5');
    const cfg = parseConfig(parseYaml(text), 'deploy/daemonset.yaml');
    expect(cfg).toMatchObject({ node: 'worker-1', backend: 'afxdp', uplink: { vtep: '10.0.0.5' }, stateDir: '/var/lib/vfplane' });
    // Its tenants admit the VXLAN example (namespace default, VNI 100), and nothing else there.
    const nad = docs.find((d) => d.file === 'nad-vxlan.yaml')!.doc;
    const vni = (JSON.parse(nad.spec.config as string) as { vxlan: { vni: number } }).vxlan.vni;
    expect(tenancyRefusal(cfg, nad.metadata.namespace as string, vni)).toBeNull();
    expect(tenancyRefusal(cfg, nad.metadata.namespace as string, vni + 1)).toMatch(/not open/);
  });

  // The metrics were on 127.0.0.1 of a hostNetwork pod: nothing in the cluster could
  // scrape them. They listen on the node's IP (status.hostIP), on the port the pod's
  // prometheus.io annotations and the container's port name; an IPv6 node's in brackets.
  it('serves the data plane\'s metrics on the node\'s IP, at the port its prometheus.io annotations and containerPort name', () => {
    const ds = docs.find((d) => d.doc.kind === 'DaemonSet')!.doc;
    const c = ds.spec.template.spec.containers.find((x: any) => x.name === 'dataplane');
    const ann = ds.spec.template.metadata.annotations as Record<string, string>;
    expect(ann).toMatchObject({ 'prometheus.io/scrape': 'true', 'prometheus.io/path': '/metrics' });
    const port = Number(ann['prometheus.io/port']);
    expect(c.ports).toContainEqual({ name: 'metrics', containerPort: port, protocol: 'TCP' });
    expect(c.env).toContainEqual({ name: 'METRICS_IP', valueFrom: { fieldRef: { fieldPath: 'status.hostIP' } } });
    const cm = docs.find((d) => d.doc.kind === 'ConfigMap' && d.doc.metadata.name === 'vfplane-dataplane')!.doc;
    // The container's own render step, on a copy of the ConfigMap's file, for each family.
    const tmp = mkdtempSync(join(tmpdir(), 'vfplane-render-'));
    try {
      mkdirSync(join(tmp, 'config-dp'));
      writeFileSync(join(tmp, 'config-dp', 'dataplane.yaml'), cm.data['dataplane.yaml'] as string);
      const head = (c.args[0] as string).split('\n').filter((l) => /^\s*(case "\$METRICS_IP"|render\(\) \{|render$)/.test(l)).join('\n');
      expect(head.split('\n')).toHaveLength(3);
      const script = head.replaceAll('/config-dp/', `${tmp}/config-dp/`).replaceAll('/run/vfplane/', `${tmp}/`);
      for (const [ip, want] of [['10.0.0.5', `10.0.0.5:${port}`], ['fd00::5', `[fd00::5]:${port}`]]) {
        const r = spawnSync('/bin/sh', ['-ec', script], { env: { ...process.env, NODE_IP: '10.0.0.5', NODE_NAME: 'worker-1', METRICS_IP: ip }, encoding: 'utf8' });
        expect(r.status, r.stderr).toBe(0);
        const cfg = parseConfig(parseYaml(readFileSync(join(tmp, 'dataplane.yaml'), 'utf8')), 'deploy/daemonset.yaml');
        expect(cfg.metrics).toBe(want);
      }
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('has a NetworkAttachmentDefinition for each mode, each config accepted by vfplane-cni', async () => {
    const nads = docs.filter((d) => d.doc.kind === 'NetworkAttachmentDefinition');
    expect(nads.map((n) => n.file).sort()).toEqual(['nad-dpdk.yaml', 'nad-kernel.yaml', 'nad-vxlan.yaml']);
    for (const n of nads) {
      expect(n.doc.metadata.annotations['k8s.v1.cni.cncf.io/resourceName'], n.file).toBeTruthy();
      const conf = await parseConf(n.doc.spec.config);
      expect(conf.type).toBe('vfplane-cni');
    }
    const vx = nads.find((n) => n.file === 'nad-vxlan.yaml')!;
    expect((await parseConf(vx.doc.spec.config)).vxlan?.vni).toBe(100);
  });
});

// The DaemonSet's data-plane container script, run as the container would (its paths
// moved into a temporary directory, `vfplane` the built CLI), on an AF_PACKET uplink in
// a namespace of its own: it renders the ConfigMap's file, starts the data plane, and
// when the mounted ConfigMap changes renders it again and SIGHUPs the data plane, which
// applies the new peers live; SIGTERM to the script stops the data plane.
describePrivileged('the DaemonSet data-plane container script', { netns: true }, () => {
  it('renders the config, runs the data plane, and reloads it when the ConfigMap changes', async () => {
    const ds = docs.find((d) => d.doc.kind === 'DaemonSet')!.doc;
    const c = ds.spec.template.spec.containers.find((x: any) => x.name === 'dataplane');
    const cm = docs.find((d) => d.doc.kind === 'ConfigMap' && d.doc.metadata.name === 'vfplane-dataplane')!.doc;
    const tmp = mkdtempSync(join(tmpdir(), 'vfplane-ds-'));
    const ns = Netns.create('dsd');
    const up = ifname('du');
    try {
      ns.ip(['link', 'add', up, 'type', 'veth', 'peer', 'name', `${up}p`]);
      ns.ip(['link', 'set', up, 'up']);
      mkdirSync(join(tmp, 'config-dp'));
      mkdirSync(join(tmp, 'run'));
      // The shipped ConfigMap, pointed at this test's uplink, state and socket.
      const base = parseYaml(cm.data['dataplane.yaml'] as string) as Record<string, any>;
      const cfg = (peers: string[]) => stringifyYaml({
        ...base, backend: 'afpacket', uplink: { ...base.uplink, ifname: up, netns: `/run/netns/${ns.name}` },
        peers: peers.map((vtep) => ({ vtep })), cpus: [0], stateDir: join(tmp, 'state'), socket: join(tmp, 'dp.sock'),
        metrics: (base.metrics as string).replace(/:\d+$/, ':0'), // rendered from METRICS_IP; a free port
      });
      writeFileSync(join(tmp, 'config-dp', 'dataplane.yaml'), cfg([]));
      const script = (c.args[0] as string).replaceAll('/config-dp/', `${tmp}/config-dp/`).replaceAll('/run/vfplane/', `${tmp}/run/`)
        .replaceAll('vfplane dataplane run', `${process.execPath} ${BIN} dataplane run`);
      const sh = spawn('/bin/sh', ['-ec', script], { env: { ...process.env, NODE_IP: '192.0.2.31', NODE_NAME: 'ds-node', METRICS_IP: '127.0.0.1', RELOAD_CHECK_SECONDS: '0.2' }, stdio: ['ignore', 'pipe', 'pipe'] });
      let err = '';
      sh.stderr.on('data', (d) => (err += d));
      const exited = new Promise<number | null>((r) => sh.on('exit', (code) => r(code)));
      try {
        const sock = join(tmp, 'dp.sock');
        for (let i = 0; i < 200 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 50));
        expect(existsSync(sock), err).toBe(true);
        // A failed request says what the script and the data plane said. (Seen failing
        // twice under load, the socket there and then gone at the first request: the data
        // plane tried its path by listening on it and closing before it opened its ports,
        // and this loop found that socket. It tries a name beside it now: control-socket's
        // "appears once" test.)
        const status = async () => {
          try {
            return (await request(sock, { op: 'status' })) as { node: string; uplink: { vtep: string }; peers: { vtep: string }[] };
          } catch (e) {
            const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r('still running'), 1500))]);
            throw new Error(`${(e as Error).message}; the script (${code === 'still running' ? code : `exited ${code}`}) said:\n${err}`);
          }
        };
        expect(await status()).toMatchObject({ node: 'ds-node', uplink: { vtep: '192.0.2.31' }, peers: [] }); // rendered
        // The metrics on the rendered address (METRICS_IP), scrapeable there.
        const mport = /metrics on http:\/\/127\.0\.0\.1:(\d+)\/metrics/.exec(err)?.[1];
        expect(mport, err).toBeDefined();
        expect((await fetch(`http://127.0.0.1:${mport}/metrics`)).status).toBe(200);
        writeFileSync(join(tmp, 'config-dp', 'dataplane.yaml'), cfg(['192.0.2.32']));
        let st = await status();
        for (let i = 0; i < 100 && st.peers.length === 0; i++) st = (await new Promise((r) => setTimeout(r, 50)), await status());
        expect(st.peers.map((p) => p.vtep), err).toEqual(['192.0.2.32']);
        expect(err).toMatch(/reloaded the config: peers changed/);
      } finally {
        sh.kill('SIGTERM');
        expect(await exited).toBe(0);
      }
      expect(err).toMatch(/SIGTERM: draining and stopping/);
    } finally {
      ns.destroy();
      rmSync(tmp, { recursive: true, force: true });
    }
  }, 60_000);
});
