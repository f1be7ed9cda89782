/** The local runtime's public surface. */
export { LocalRuntime } from "./runtime.js";
export type { LocalRuntimeOptions, Logger } from "./options.js";
export type { Limits } from "./spec.js";
