// Whether this build has an I/O backend, as the build recorded it (features.json); false
// when the addon is not built at all.
import { nativeFeatures } from '../../src/dataplane/native.js';

export function backendBuilt(backend: 'afxdp' | 'dpdk' | 'afpacket'): boolean {
  try {
    return nativeFeatures()[backend]?.built === true;
  } catch {
    return false;
  }
}
