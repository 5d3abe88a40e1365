/** vfplane's directory for the running host (locks, sockets, registries): one per host,
 *  not per state directory, so that processes with different state directories see each
 *  other. Cleared by a reboot. VFPLANE_RUN_DIR moves it (tests). */
export const runDir = (): string => process.env.VFPLANE_RUN_DIR || '/run/vfplane';
