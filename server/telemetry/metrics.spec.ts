import { describe, expect, it } from "vitest";
import { proxmoxPathTemplate } from "./metrics.js";

describe("proxmoxPathTemplate", () => {
  it("turns ids, names and UPIDs into placeholders, so a path label stays bounded", () => {
    expect(proxmoxPathTemplate("/nodes/pve1/lxc/123/status/current")).toBe("/nodes/{node}/lxc/{vmid}/status/current");
    expect(proxmoxPathTemplate("/nodes/pve/tasks/UPID:pve:0001:abc:vzcreate:100:root@pam:/status")).toBe("/nodes/{node}/tasks/{upid}/status");
    expect(proxmoxPathTemplate("/nodes/pve/lxc/100/firewall/ipset/sandboxd-allow/10.0.0.0%2F8")).toBe("/nodes/{node}/lxc/{vmid}/firewall/ipset/{name}/{id}");
    expect(proxmoxPathTemplate("/nodes/pve/storage/local-lvm/content/local-lvm:vm-100-disk-0")).toBe("/nodes/{node}/storage/{storage}/content/{volume}");
    expect(proxmoxPathTemplate("/cluster/nextid?vmid=5")).toBe("/cluster/nextid");
    expect(proxmoxPathTemplate("/pools/sandbox-pool")).toBe("/pools/{pool}");
    // Anything that is not a plain word is not kept as it is.
    expect(proxmoxPathTemplate("/cluster/Some-Weird.thing")).toBe("/cluster/{id}");
  });
});
