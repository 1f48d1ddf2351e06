// Public surface of the lab: the multicluster system in network namespaces on one machine.
export {
  DEFAULT_OPTIONS,
  LIMITS,
  planLab,
  planNamespaces,
  validateOptions,
  type LabOptions,
  type LabPlan,
  type PlannedCluster,
  type PlannedNode,
  type PlannedPod,
} from './plan.js';
export { DEFAULT_LAB_DIR, readState, type LabState, type TrackedProcess } from './state.js';
export { upLab, labPlan, labHealthy, LabError, type LabContext } from './up.js';
export { downLab, type DownResult } from './down.js';
export { labStatus, type LabStatus, type GatewayView, type EnforcerView } from './status.js';
export { runPaths, PIN_ROOT, type RunPaths } from './paths.js';
export {
  runDemo,
  predict,
  metricsSummary,
  CHANGE_DESCRIPTION,
  type DemoReport,
  type ComparedProbe,
} from './demo.js';
export {
  probeAll,
  PROBE_MARKER,
  DEFAULT_PROBE_SETTINGS,
  type ProbeTarget,
  type ProbeOutcome,
  type ProbeSettings,
} from './probes.js';
export { renderDemo, renderStatus, renderGateways, renderComparison } from './render.js';
