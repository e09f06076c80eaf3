// The services every front door (CLI commands, CNI plugin, node agent) calls.
// Import from here rather than from the individual files.
export {
  withNode,
  withNodeLock,
  holdsNodeLock,
  requireState,
  loadState,
  hooksOf,
  type NodeContext,
  type NodeOptions,
  type NodeState,
} from './node.js'
export { attach, detach, type AttachInput, type AttachResult, type DetachResult } from './attach.js'
export { addEndpoint, deleteEndpoint, listEndpoints, syncEndpointMap, type AddEndpointInput, type EndpointView } from './endpoints.js'
export { addRoute, deleteRoute, listRoutes, syncRoutes, type RouteSpec, type RouteView, type SyncResult } from './routes.js'
export { resolveEncap, deviceSubnets } from './encap.js'
export {
  DEFAULT_PIN_DIR,
  AttachModeSchema,
  EncapSchema,
  ModeSchema,
  NodeDefaults,
  NodeConfigSchema,
  parseNodeConfig,
  resolvePinDir,
  type Encap,
  type Mode,
  type NodeConfig,
} from './config.js'
export { stateDir, statePath, lockPath } from './state.js'
export { UserError, isUserError } from '../errors.js'
