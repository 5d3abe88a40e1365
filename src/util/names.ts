/** A data-plane node name as files in the state directory carry it
 *  (`dataplane-<node>.json`, `claims-<node>.json`): a Kubernetes node name's characters
 *  (and "_"), so never a path. */
export const NODE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
