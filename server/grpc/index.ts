// gRPC ecosystem services (reflection, health) for the connect-node server.
export { registerReflection } from "./reflection.js";
export { HealthService, registerHealth, ServingStatus } from "./health.js";
