/** The local runtime's public surface. */
export { LocalRuntime, type LocalRuntimeOptions, type Logger } from "./runtime.js";
export type { Limits } from "./spec.js";
