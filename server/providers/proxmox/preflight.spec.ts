/**
 * ProxmoxProvider.start() on the PVE emulator refuses a cluster it cannot
 * serve safely, with FAILED_PRECONDITION and a message naming what to do: a
 * PVE older than 8.1, a datacenter firewall that is off or unreadable (unless
 * SANDBOXD_PROXMOX_DATACENTER_FIREWALL=warn), a template unsafe for untrusted
 * code (unless waived by SANDBOXD_PROXMOX_ALLOW_UNSAFE_TEMPLATE). A template on
 * local storage with several nodes only warns, naming the nodes left out.
 * No sandbox is ever created: one cheap emulator per option set.
 */
import { describe, expect, it } from "vitest";
import { proxmoxConfigOf, startEmulator, type Emulator, type EmulatorOptions } from "../../../test/pve-emulator/index.js";
import { isSandboxError } from "../../errors.js";
import type { Logger } from "../local/options.js";
import type { ProxmoxConfig } from "./config.js";
import { ProxmoxProvider } from "./provider.js";

const FAST = { cloneMs: 150, startMs: 50, ipDelayMs: 50, stopMs: 10, destroyMs: 10, authFailDelayMs: 100 };
const FIREWALL_SETTING = "SANDBOXD_PROXMOX_DATACENTER_FIREWALL";
const UNSAFE_SETTING = "SANDBOXD_PROXMOX_ALLOW_UNSAFE_TEMPLATE";

type Line = { level: string; obj: Record<string, unknown>; msg: string };

/** A logger that keeps every line, by level. */
function recorder(): Logger & { lines: Line[]; warns: () => Line[] } {
  const lines: Line[] = [];
  const at = (level: string) => (obj: object, msg?: string) => void lines.push({ level, obj: obj as Record<string, unknown>, msg: msg ?? "" });
  return { lines, warns: () => lines.filter((l) => l.level === "warn"), debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

let instances = 0;

/**
 * Starts an emulator with `options`, runs `body`, then checks the provider
 * sent nothing Proxmox's schema refuses and closes the emulator.
 */
async function withEmulator(options: EmulatorOptions, body: (emu: Emulator) => Promise<void>): Promise<void> {
  const emu = await startEmulator({ port: 0, timing: FAST, instance: `pve-emu-t-pre-${++instances}`, subnet: "198.18.188.0/24", ...options });
  try {
    await body(emu);
    expect(emu.rejectedRequests()).toEqual([]);
  } finally {
    await emu.close();
  }
}

/** Starts a provider; returns the start's error (undefined when it started) and what it logged. Always closed. */
async function tryStart(emu: Emulator, over: Partial<ProxmoxConfig> = {}): Promise<{ err: unknown; log: ReturnType<typeof recorder> }> {
  const log = recorder();
  const provider = new ProxmoxProvider(proxmoxConfigOf(emu.connection, over), { logger: log });
  try {
    const err = await provider.start().then(() => undefined, (e: unknown) => e);
    if (err === undefined) expect(log.lines.some((l) => l.level === "info" && l.msg === "proxmox provider ready")).toBe(true);
    return { err, log };
  } finally {
    await provider.close();
  }
}

/** The refusal's message, after checking it is FAILED_PRECONDITION. */
function refusal(err: unknown): string {
  expect(err, "start() should have been refused").toBeDefined();
  expect(isSandboxError(err, "failed_precondition"), `not a failed_precondition SandboxError: ${String(err)}`).toBe(true);
  return (err as Error).message;
}

describe("ProxmoxProvider.start() preflight: PVE version", () => {
  it("refuses PVE 8.0.4, naming the version found, the one needed and the upgrade", async () => {
    await withEmulator({ version: "8.0.4" }, async (emu) => {
      const msg = refusal((await tryStart(emu)).err);
      expect(msg).toContain("8.0.4");
      expect(msg).toContain("8.1");
      expect(msg).toMatch(/too old/);
      expect(msg).toMatch(/upgrade the cluster/);
    });
  });

  it.each(["8.1.0", "9.1.3"])("starts on PVE %s with no warning", async (version) => {
    await withEmulator({ version }, async (emu) => {
      const { err, log } = await tryStart(emu);
      expect(err).toBeUndefined();
      expect(log.warns()).toEqual([]);
      expect(log.lines.find((l) => l.msg === "proxmox provider ready")?.obj).toMatchObject({ version });
    });
  });
});

describe("ProxmoxProvider.start() preflight: datacenter firewall", () => {
  it("refuses a cluster whose datacenter firewall is off; with =warn starts and warns", async () => {
    await withEmulator({ datacenterFirewall: false }, async (emu) => {
      const msg = refusal((await tryStart(emu)).err);
      expect(msg).toMatch(/datacenter firewall is off/);
      expect(msg).toMatch(/enable it/);
      expect(msg).toContain(`${FIREWALL_SETTING}=warn`);

      const { err, log } = await tryStart(emu, { datacenterFirewall: "warn" });
      expect(err).toBeUndefined();
      const warns = log.warns();
      expect(warns).toHaveLength(1);
      expect(warns[0]!.obj).toEqual({ setting: FIREWALL_SETTING });
      expect(warns[0]!.msg).toMatch(/datacenter firewall is off/);
      expect(warns[0]!.msg).toContain(`serving anyway because ${FIREWALL_SETTING}=warn`);
    });
  });

  it("refuses when the token cannot read the firewall options (no Sys.Audit on /), naming Sys.Audit; with =warn starts and warns", async () => {
    await withEmulator({ rootPrivileges: [] }, async (emu) => {
      const msg = refusal((await tryStart(emu)).err);
      expect(msg).toContain("Sys.Audit on /");
      expect(msg).toMatch(/cannot read the datacenter firewall options/);
      expect(msg).toContain(`${FIREWALL_SETTING}=warn`);

      const { err, log } = await tryStart(emu, { datacenterFirewall: "warn" });
      expect(err).toBeUndefined();
      const warns = log.warns();
      expect(warns).toHaveLength(1);
      expect(warns[0]!.msg).toContain("Sys.Audit on /");
      expect(warns[0]!.msg).toContain(`serving anyway because ${FIREWALL_SETTING}=warn`);
    });
  });
});

describe("ProxmoxProvider.start() preflight: template hardening", () => {
  const PRIVILEGED = "it is privileged (unprivileged is not 1)";

  it("refuses a privileged template, naming it and the setting that waives it; allowUnsafeTemplate=privileged starts", async () => {
    await withEmulator({ template: { unprivileged: false } }, async (emu) => {
      const msg = refusal((await tryStart(emu)).err);
      expect(msg).toContain("SANDBOXD_PROXMOX_TEMPLATE_ID: template CT 9000 on pve is unsafe for untrusted code");
      expect(msg).toContain(PRIVILEGED);
      expect(msg).toContain(`${UNSAFE_SETTING}=privileged`);
      expect(msg).not.toMatch(/swap|features/);

      const { err } = await tryStart(emu, { allowUnsafeTemplate: ["privileged"] });
      expect(err).toBeUndefined();
      // Waiving another check does not waive this one.
      expect(refusal((await tryStart(emu, { allowUnsafeTemplate: ["swap", "features"] })).err)).toContain(`${UNSAFE_SETTING}=privileged`);
    });
  });

  it("refuses a template with features on, naming them", async () => {
    await withEmulator({ template: { features: "nesting=1,keyctl=1" } }, async (emu) => {
      const msg = refusal((await tryStart(emu)).err);
      expect(msg).toContain("features are on (nesting=1,keyctl=1)");
      expect(msg).toContain(`${UNSAFE_SETTING}=features`);
      expect(msg).not.toContain(PRIVILEGED);
      expect(msg).not.toMatch(/swap/);
    });
  });

  it("refuses a template with swap, naming the amount", async () => {
    await withEmulator({ template: { swap: 512 } }, async (emu) => {
      const msg = refusal((await tryStart(emu)).err);
      expect(msg).toContain("it has 512 MiB of swap");
      expect(msg).toContain(`${UNSAFE_SETTING}=swap`);
      expect(msg).not.toContain(PRIVILEGED);
      expect(msg).not.toMatch(/features/);
    });
  });

  it("names every problem at once, and the setting waiving them all", async () => {
    await withEmulator({ template: { unprivileged: false, features: "nesting=1,keyctl=1", swap: 512 } }, async (emu) => {
      const msg = refusal((await tryStart(emu)).err);
      expect(msg).toContain(`${PRIVILEGED}; features are on (nesting=1,keyctl=1); it has 512 MiB of swap.`);
      expect(msg).toContain(`${UNSAFE_SETTING}=privileged,features,swap`);
      expect((await tryStart(emu, { allowUnsafeTemplate: ["privileged", "features", "swap"] })).err).toBeUndefined();
    });
  });

  it("allowUnsafeTemplate=privileged does not let a privileged template with swap start: only swap is named", async () => {
    await withEmulator({ template: { unprivileged: false, swap: 512 } }, async (emu) => {
      const msg = refusal((await tryStart(emu, { allowUnsafeTemplate: ["privileged"] })).err);
      expect(msg).toContain("it has 512 MiB of swap");
      expect(msg).toContain(`${UNSAFE_SETTING}=swap`);
      expect(msg).not.toContain(PRIVILEGED);
      expect(msg).not.toContain(`${UNSAFE_SETTING}=privileged`);
    });
  });

  it("a feature switched off (nesting=0) is not a problem", async () => {
    await withEmulator({ template: { features: "nesting=0" } }, async (emu) => {
      const { err, log } = await tryStart(emu);
      expect(err).toBeUndefined();
      expect(log.warns()).toEqual([]);
    });
  });
});

describe("ProxmoxProvider.start() preflight: template storage on several nodes", () => {
  const NO_TEMPLATE_WARNING = /no template on these nodes and the template is on local storage/;

  it("a template on local storage with 2 nodes starts, warning that the node without a template gets no sandboxes", async () => {
    await withEmulator({ nodes: 2 }, async (emu) => {
      expect(emu.connection.nodes).toEqual(["pve1", "pve2"]);
      const { err, log } = await tryStart(emu);
      expect(err).toBeUndefined();
      const warns = log.warns();
      expect(warns).toHaveLength(1);
      expect(warns[0]!.obj).toEqual({ nodes: ["pve2"] });
      expect(warns[0]!.msg).toMatch(NO_TEMPLATE_WARNING);
      expect(warns[0]!.msg).toContain("node=vmid in SANDBOXD_PROXMOX_TEMPLATE_ID");
      expect(log.lines.find((l) => l.msg === "proxmox provider ready")?.obj).toMatchObject({ nodes: ["pve1"] });
    });
  });

  it("a template on shared storage with 2 nodes starts with no warning", async () => {
    await withEmulator({ nodes: 2, template: { storage: { id: "ceph", shared: true } } }, async (emu) => {
      const { err, log } = await tryStart(emu);
      expect(err).toBeUndefined();
      expect(log.warns()).toEqual([]);
      expect(log.lines.find((l) => l.msg === "proxmox provider ready")?.obj).toMatchObject({ nodes: ["pve1", "pve2"] });
    });
  });

  it("a template per node (node=vmid) on local storage starts with no warning", async () => {
    await withEmulator({ nodes: 2, template: { perNode: true } }, async (emu) => {
      expect(emu.connection.templates).toEqual({ pve1: 9000, pve2: 9001 });
      const { err, log } = await tryStart(emu);
      expect(err).toBeUndefined();
      expect(log.warns()).toEqual([]);
      expect(log.lines.find((l) => l.msg === "proxmox provider ready")?.obj).toMatchObject({ nodes: ["pve1", "pve2"] });
    });
  });
});

describe("ProxmoxProvider.start() preflight: TLS", () => {
  it("warns loudly when certificate verification is off (SANDBOXD_PROXMOX_INSECURE), and not otherwise", async () => {
    await withEmulator({}, async (emu) => {
      const insecure = await tryStart(emu, { insecure: true, caFile: undefined });
      expect(insecure.err).toBeUndefined();
      expect(insecure.log.warns().filter((l) => l.obj.setting === "SANDBOXD_PROXMOX_INSECURE")).toHaveLength(1);
      const verified = await tryStart(emu);
      expect(verified.log.warns().filter((l) => l.obj.setting === "SANDBOXD_PROXMOX_INSECURE")).toEqual([]);
    });
  });
});

describe("ProxmoxProvider.start() preflight: the template's inbound firewall", () => {
  it("refuses a template whose firewall lets anything in (clones would accept every neighbour), unless waived", async () => {
    await withEmulator({ template: { policyIn: "ACCEPT" } }, async (emu) => {
      const msg = refusal((await tryStart(emu)).err);
      expect(msg).toContain("its firewall lets anything in");
      expect(msg).toContain(`${UNSAFE_SETTING}=inbound`);
      expect((await tryStart(emu, { allowUnsafeTemplate: ["inbound"] })).err).toBeUndefined();
    });
  });
});
