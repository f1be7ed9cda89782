/** The Proxmox VE API calls sandboxd makes, as "METHOD /path" keys spelled as in pve-docs' apidata.js. */
export const PVE_ENDPOINTS = [
  "GET /version",
  "GET /pools",
  "GET /pools/{poolid}",
  "GET /cluster/resources",
  "GET /cluster/nextid",
  "GET /cluster/firewall/options",
  "GET /nodes",
  "GET /nodes/{node}/storage",
  "GET /nodes/{node}/lxc",
  "POST /nodes/{node}/lxc/{vmid}/clone",
  "GET /nodes/{node}/lxc/{vmid}/config",
  "PUT /nodes/{node}/lxc/{vmid}/config",
  "PUT /nodes/{node}/lxc/{vmid}/resize",
  "DELETE /nodes/{node}/lxc/{vmid}",
  "GET /nodes/{node}/lxc/{vmid}/status/current",
  "POST /nodes/{node}/lxc/{vmid}/status/start",
  "POST /nodes/{node}/lxc/{vmid}/status/stop",
  "POST /nodes/{node}/lxc/{vmid}/status/shutdown",
  "GET /nodes/{node}/lxc/{vmid}/interfaces",
  "GET /nodes/{node}/lxc/{vmid}/firewall/options",
  "PUT /nodes/{node}/lxc/{vmid}/firewall/options",
  "POST /nodes/{node}/lxc/{vmid}/snapshot",
  "GET /nodes/{node}/tasks/{upid}/status",
  "GET /nodes/{node}/tasks/{upid}/log",
] as const;

export type PveEndpoint = (typeof PVE_ENDPOINTS)[number];
