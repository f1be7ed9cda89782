import { describe, expect, it } from "vitest";
import { backoffMs, classify, pollMs, PveError } from "./retry.js";
import { parseUpid, taskSucceeded } from "./tasks.js";

const err = (status: number, detail: string, errors?: Record<string, string>) => new PveError(`X: ${status} ${detail}`, status, detail, errors);

describe("classify", () => {
  it.each([
    [err(500, "CT is locked (disk)"), "locked"],
    [err(500, "can't lock file '/run/lock/lxc/pve-config-101.lock' - got timeout"), "locked"],
    [err(500, "cfs-lock 'firewall-vm-101' error: got lock request timeout"), "locked"],
    [err(500, "CT 123 already exists on node 'pve'"), "exists"],
    [err(400, "Parameter verification failed.", { vmid: "VM 218 already exists" }), "exists"],
    [err(596, "Connection timed out"), "transient"],
    [err(503, "Service Unavailable"), "transient"],
    [err(500, "Internal Server Error"), "transient"],
    [new PveError("x", 0, "socket hang up", undefined, "ECONNRESET"), "transient"],
    [err(500, "Configuration file 'nodes/pve/lxc/1.conf' does not exist"), "not_found"],
    [err(401, "Authentication failed!"), "auth"],
    [err(403, "Permission check failed (/vms/1, VM.Audit)"), "permission"],
    [err(400, "Parameter verification failed.", { tags: "invalid format" }), "invalid"],
    [err(500, "unable to destroy CT 1 - container is running"), "fatal"],
    [new Error("plain"), "fatal"],
  ])("%s → %s", (e, kind) => {
    expect(classify(e)).toBe(kind);
  });
});

describe("backoff", () => {
  it("doubles from 100 ms with jitter in [ceiling/2, ceiling], capped", () => {
    expect(backoffMs(0, 100, 2000, () => 0)).toBe(50);
    expect(backoffMs(0, 100, 2000, () => 1)).toBe(100);
    expect(backoffMs(3, 100, 2000, () => 1)).toBe(800);
    expect(backoffMs(10, 100, 2000, () => 1)).toBe(2000);
    for (let i = 0; i < 50; i++) {
      const v = backoffMs(2);
      expect(v).toBeGreaterThanOrEqual(200);
      expect(v).toBeLessThanOrEqual(400);
    }
  });
  it("polls tasks at 100 ms doubling to 1 s", () => {
    expect([0, 1, 2, 3, 4, 9].map(pollMs)).toEqual([100, 200, 400, 800, 1000, 1000]);
  });
});

describe("tasks", () => {
  it("parses UPIDs and treats OK and WARNINGS as success", () => {
    expect(parseUpid("UPID:proxmox2:000D7AA2:08D5A17C:63DF62A5:vzclone:200:root@pam!api_token:")).toEqual({ node: "proxmox2", type: "vzclone", id: "200" });
    expect(parseUpid("nope")).toBeUndefined();
    expect(taskSucceeded("OK")).toBe(true);
    expect(taskSucceeded("WARNINGS: 2")).toBe(true);
    expect(taskSucceeded("clone failed: x")).toBe(false);
    expect(taskSucceeded(undefined)).toBe(false);
  });
});
