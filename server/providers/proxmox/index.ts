export { ProxmoxProvider } from "./provider.js";
export { parseProxmoxConfig, PROXMOX_SETTINGS, type ProxmoxConfig } from "./config.js";
export { PveClient } from "./client.js";
