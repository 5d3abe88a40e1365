// Picks a VXLAN engine by name, loading only the one asked for: the native addon is
// not touched when the TypeScript model is chosen, and vice versa.
import type { EngineName, VxlanEngine } from '../packet/engine.js';

export async function loadEngine(name: EngineName): Promise<VxlanEngine> {
  if (name === 'native') return (await import('./native.js')).nativeEngine();
  return (await import('../packet/model.js')).tsEngine;
}
