// The deploy/ examples stay valid: every manifest parses, and every
// NetworkAttachmentDefinition's config is one vfplane-cni accepts.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { ROOT } from '../helpers/cli.js';
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

  it('runs the data plane with a config it accepts, next to the CNI server', () => {
    const ds = docs.find((d) => d.doc.kind === 'DaemonSet')!.doc;
    const c = ds.spec.template.spec.containers.find((x: any) => x.name === 'dataplane');
    expect(c.args[0]).toContain('vfplane dataplane run --config');
    const cm = docs.find((d) => d.doc.kind === 'ConfigMap' && d.doc.metadata.name === 'vfplane-dataplane')!.doc;
    const text = (cm.data['dataplane.yaml'] as string).replace('${NODE_IP}', '10.0.0.5').replace('${NODE_NAME}', 'worker-1');
    const cfg = parseConfig(parseYaml(text), 'deploy/daemonset.yaml');
    expect(cfg).toMatchObject({ node: 'worker-1', backend: 'afxdp', uplink: { vtep: '10.0.0.5' }, stateDir: '/var/lib/vfplane' });
    // Its tenants admit the VXLAN example (namespace default, VNI 100), and nothing else there.
    const nad = docs.find((d) => d.file === 'nad-vxlan.yaml')!.doc;
    const vni = (JSON.parse(nad.spec.config as string) as { vxlan: { vni: number } }).vxlan.vni;
    expect(tenancyRefusal(cfg, nad.metadata.namespace as string, vni)).toBeNull();
    expect(tenancyRefusal(cfg, nad.metadata.namespace as string, vni + 1)).toMatch(/not open/);
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
