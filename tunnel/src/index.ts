// Public surface of the tunnel manager.
export { Secret } from './secret.js';
export {
  generateKeyPair,
  generatePresharedKey,
  pairPresharedKey,
  publicKeyOf,
  parsePublicKey,
  readPrivateKeyFile,
  writePrivateKeyFile,
  KeyError,
  type KeyPair,
  type PublicKey,
} from './keys.js';
export {
  UapiControl,
  WgToolControl,
  detectBackend,
  updatePeer,
  type WireGuardControl,
  type BackendDetection,
} from './control.js';
export {
  encodeSet,
  parseGet,
  UapiError,
  type DeviceConfig,
  type DeviceState,
  type PeerConfig,
  type PeerState,
} from './uapi-protocol.js';
export {
  findConflicts,
  admitClusters,
  formatConflicts,
  type CidrConflict,
  type ConflictReport,
  type ClusterRanges,
} from './cidr-conflicts.js';
export {
  planGateway,
  tunnelMtu,
  epochSlot,
  type GatewayPlan,
  type Member,
  type PlanInput,
} from './plan.js';
export { diffDevice, diffRoutes } from './diff.js';
export { classify, observe, type PeerHealth, type PeerHealthState } from './health.js';
export { TunnelMetrics } from './metrics.js';
export {
  MeshStore,
  type ClusterRecord,
  type GatewayRecord,
  type MeshSnapshot,
} from './mesh-store.js';
export {
  Gateway,
  JoinRefusedError,
  type GatewayConfig,
  type GatewayStatus,
  type PeerStatus,
} from './gateway.js';
export { loadGatewayConfig, parseGatewayConfig, ConfigError } from './config.js';
export { startEtcd, freePort, type EtcdHandle, type EtcdOptions } from './etcd-process.js';
export { startWireguardGo, stopWireguardGo, isWireguardGo } from './wireguard-go-process.js';
export { MeshTestbed, type TestCluster } from './testbed.js';
