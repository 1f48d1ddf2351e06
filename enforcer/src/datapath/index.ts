// Public surface of the node datapath: map sync, attach, test runs, events,
// and the `datapath` probe engine.
export {
  ATTACH_MODE_ENV,
  Datapath,
  DatapathCapacityError,
  TC_HANDLE,
  TC_PRIORITY,
  tcxLinkPinName,
  type ApplyResult,
  type AttachMode,
  type AttachModeChoice,
  type Attachment,
  type DatapathOpenOptions,
  type DatapathSizes,
  type HookDirection,
  type IfindexOf,
  type TestRunVerdict,
} from './datapath.js';
export {
  DatapathEngineError,
  DatapathProber,
  addressesOf,
  datapathMatrix,
  type DatapathMatrixRequest,
  type EndpointAddrs,
  type HookResult,
} from './engine.js';
export { frame, fragment, frameWithExtensions, type FrameSpec } from './packets.js';
export * as structs from './structs.js';
