/**
 * Issue 15 ("Run it in production"): deploy/kubernetes, checked offline
 * without a cluster. Every document decodes strictly into its k8s.io/api type
 * (test/deploy/k8svalidate, a Go program: a misspelt or misplaced field
 * fails, which is shown on a broken copy); then the manifests' meaning:
 * replicas, probes, grace period against the drain settings, selectors,
 * ports, every Secret/ConfigMap reference, the hardening, and the
 * container's environment and mounted files loaded by loadConfig.
 * The Go program is built once (the first build downloads its modules).
 */
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig, parseDuration, type Config } from "../../server/config/config.js";
import { CANCEL_MS, DEFAULTS, GO, K8S, VALIDATOR, flushMs, unknownNames } from "../fixtures/deploy-files.js";

// The k8s.io/api types, only as far as these checks read them.
interface Meta { name: string; labels?: Record<string, string>; annotations?: Record<string, string> }
interface Probe { grpc?: { port: number; service?: string }; periodSeconds?: number; failureThreshold?: number }
interface KeyRef { name: string; key: string }
interface Container {
  name: string; image: string; command?: string[]; workingDir?: string;
  ports?: { name?: string; containerPort: number }[];
  env?: { name: string; value?: string; valueFrom?: { secretKeyRef?: KeyRef; configMapKeyRef?: KeyRef; fieldRef?: { fieldPath: string } } }[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
  startupProbe?: Probe; readinessProbe?: Probe; livenessProbe?: Probe;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: { runAsNonRoot?: boolean; readOnlyRootFilesystem?: boolean; allowPrivilegeEscalation?: boolean; privileged?: boolean; capabilities?: { drop?: string[]; add?: string[] }; seccompProfile?: { type: string } };
  volumeMounts?: { name: string; mountPath: string; subPath?: string }[];
}
interface Volume {
  name: string; emptyDir?: object;
  secret?: { secretName: string; items?: { key: string; path: string }[] };
  configMap?: { name: string; items?: { key: string; path: string }[] };
}
interface PodSpec {
  containers: Container[]; volumes?: Volume[]; terminationGracePeriodSeconds?: number; serviceAccountName?: string; automountServiceAccountToken?: boolean;
  securityContext?: { runAsNonRoot?: boolean; seccompProfile?: { type: string } };
  topologySpreadConstraints?: { topologyKey: string; labelSelector?: { matchLabels?: Record<string, string> } }[];
  affinity?: { podAntiAffinity?: object };
}
interface Doc {
  apiVersion: string; kind: string; metadata: Meta;
  spec?: Record<string, unknown>;
  data?: Record<string, string>; stringData?: Record<string, string>;
  resources?: string[]; automountServiceAccountToken?: boolean;
}
interface Deployment extends Doc { spec: { replicas: number; selector: { matchLabels: Record<string, string> }; template: { metadata: Meta; spec: PodSpec } } }
interface Service extends Doc { spec: { selector: Record<string, string>; ports: { name: string; port: number; targetPort: number | string; appProtocol?: string }[] } }
interface Pdb extends Doc { spec: { selector: { matchLabels: Record<string, string> }; minAvailable?: number | string; maxUnavailable?: number | string } }

describe("deploy/kubernetes", () => {
  let bin: string;
  let docs: { file: string; doc: Doc }[];
  const manifests = () => fs.readdirSync(K8S).filter((f) => f.endsWith(".yaml")).sort().map((f) => path.join(K8S, f));
  const all = (kind: string) => docs.filter((d) => d.doc.kind === kind).map((d) => d.doc);
  const only = <T extends Doc>(kind: string): T => {
    const found = all(kind);
    expect(found, kind).toHaveLength(1);
    return found[0] as T;
  };
  const named = (kind: string, name: string) => all(kind).find((d) => d.metadata.name === name);

  beforeAll(() => {
    // Built once; the first build fetches the modules of go.sum (GOFLAGS=-mod=readonly: go.sum must be complete).
    bin = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "sandboxd-k8svalidate-")), "k8svalidate");
    execFileSync(GO, ["build", "-mod=readonly", "-o", bin, "."], { cwd: VALIDATOR, stdio: ["ignore", "inherit", "inherit"], timeout: 300_000 });
    const r = spawnSync(bin, ["-dump", ...manifests()], { encoding: "utf8", timeout: 60_000 });
    if (r.status !== 0) throw new Error(`k8svalidate failed:\n${r.stderr}`);
    docs = JSON.parse(r.stdout) as { file: string; doc: Doc }[];
  }, 300_000);
  afterAll(() => {
    if (bin) fs.rmSync(path.dirname(bin), { recursive: true, force: true });
  });

  it("decodes strictly into the k8s.io/api types, and the kustomization lists every file", () => {
    const kinds = docs.map((d) => d.doc.kind).sort();
    expect(kinds).toEqual(["ConfigMap", "ConfigMap", "Deployment", "Kustomization", "Namespace", "PodDisruptionBudget", "Secret", "Service", "ServiceAccount"]);
    const listed = only("Kustomization").resources!;
    expect([...listed].sort()).toEqual(manifests().map((f) => path.basename(f)).filter((f) => f !== "kustomization.yaml").sort());
  });

  it("fails on a misspelt, a misplaced or a duplicate field (the check can fail)", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sandboxd-k8sbad-"));
    try {
      const deployment = fs.readFileSync(path.join(K8S, "deployment.yaml"), "utf8");
      const cases: [string, string, RegExp][] = [
        ["misspelt", deployment.replace("readinessProbe:", "readinesProbe:"), /unknown field "readinesProbe"/],
        ["misplaced", deployment.replace(/^(\s+)terminationGracePeriodSeconds: (\d+)$/m, "$1terminationGracePeriodSeconds: $2\n$1replicas: 3"), /unknown field "replicas"/],
        ["wrong type", deployment.replace(/^(\s+)replicas: \d+$/m, "$1replicas: two"), /cannot unmarshal/],
        ["duplicate", deployment.replace(/^(\s+)replicas: (\d+)$/m, "$1replicas: $2\n$1replicas: $2"), /already set/],
      ];
      for (const [what, text, error] of cases) {
        expect(text, what).not.toBe(deployment);
        fs.writeFileSync(path.join(dir, "deployment.yaml"), text);
        const r = spawnSync(bin, [path.join(dir, "deployment.yaml")], { encoding: "utf8", timeout: 60_000 });
        expect(r.status, what).toBe(1);
        expect(r.stderr, what).toMatch(error);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("runs at least two replicas, spread over nodes, with a PDB and a Service that select its pods", () => {
    const d = only<Deployment>("Deployment");
    expect(d.spec.replicas).toBeGreaterThanOrEqual(2);
    const podLabels = d.spec.template.metadata.labels!;
    const selects = (sel: Record<string, string>) => Object.entries(sel).every(([k, v]) => podLabels[k] === v);
    expect(selects(d.spec.selector.matchLabels)).toBe(true);
    const pdb = only<Pdb>("PodDisruptionBudget");
    expect(selects(pdb.spec.selector.matchLabels)).toBe(true);
    expect(pdb.spec.minAvailable === 1 || pdb.spec.maxUnavailable === 1).toBe(true);
    expect(selects(only<Service>("Service").spec.selector)).toBe(true);
    const spread = d.spec.template.spec.topologySpreadConstraints ?? [];
    expect(spread.some((t) => t.topologyKey === "kubernetes.io/hostname" && selects(t.labelSelector?.matchLabels ?? {})) || d.spec.template.spec.affinity?.podAntiAffinity !== undefined).toBe(true);
  });

  it("serves h2c on grpc 8080 and the admin port on 9090, and the Service's ports reach them", () => {
    const c = only<Deployment>("Deployment").spec.template.spec.containers[0]!;
    const ports = new Map((c.ports ?? []).map((p) => [p.name, p.containerPort]));
    expect(ports.get("grpc")).toBe(8080);
    expect(ports.get("admin")).toBe(9090);
    const svc = only<Service>("Service");
    for (const p of svc.spec.ports) {
      const target = typeof p.targetPort === "string" ? ports.get(p.targetPort) : p.targetPort;
      expect(target, `Service port ${p.name}`).toBeDefined();
      expect([...ports.values()]).toContain(target);
    }
    const grpc = svc.spec.ports.find((p) => p.name === "grpc")!;
    expect(grpc).toMatchObject({ port: 8080, appProtocol: "kubernetes.io/h2c" });
    expect(svc.spec.ports.find((p) => p.name === "admin")).toMatchObject({ port: 9090 });
    const env = containerEnv(c);
    expect(env.SANDBOXD_LISTEN).toBe("0.0.0.0:8080");
    expect(env.SANDBOXD_ADMIN_LISTEN).toBe("0.0.0.0:9090");
    const ann = only<Deployment>("Deployment").spec.template.metadata.annotations ?? {};
    expect(ann).toMatchObject({ "prometheus.io/scrape": "true", "prometheus.io/port": "9090", "prometheus.io/path": "/metrics" });
  });

  it("probes with native gRPC health checks on the gRPC port; readiness asks for the SandboxService", () => {
    const c = only<Deployment>("Deployment").spec.template.spec.containers[0]!;
    expect(c.readinessProbe?.grpc).toEqual({ port: 8080, service: "sandbox.v1.SandboxService" });
    expect(c.livenessProbe?.grpc?.port).toBe(8080);
    expect(c.startupProbe?.grpc?.port).toBe(8080);
    // Liveness never fires within a drain (NOT_SERVING, then the port closes).
    const cfg = podConfig();
    const live = c.livenessProbe!;
    expect((live.periodSeconds ?? 10) * (live.failureThreshold ?? 3) * 1000).toBeGreaterThan(cfg.drainDelayMs + cfg.shutdownGraceMs + CANCEL_MS);
  });

  it("gives a pod longer to stop than sandboxd drains, from the drain settings it sets explicitly", () => {
    const d = only<Deployment>("Deployment");
    const env = containerEnv(d.spec.template.spec.containers[0]!);
    expect(env.SANDBOXD_DRAIN_DELAY).toBeDefined();
    expect(env.SANDBOXD_SHUTDOWN_GRACE).toBeDefined();
    const drain = parseDuration(env.SANDBOXD_DRAIN_DELAY!)!;
    const grace = parseDuration(env.SANDBOXD_SHUTDOWN_GRACE!)!;
    const cfg = podConfig();
    expect([cfg.drainDelayMs, cfg.shutdownGraceMs]).toEqual([drain, grace]);
    const period = d.spec.template.spec.terminationGracePeriodSeconds! * 1000;
    expect(flushMs(env)).toBeGreaterThan(0);
    expect(period).toBeGreaterThan(drain + grace + CANCEL_MS + flushMs(env));
    expect(period).toBeGreaterThanOrEqual(DEFAULTS.drainDelayMs + DEFAULTS.shutdownGraceMs + CANCEL_MS);
  });

  it("is hardened: non-root, read-only root, no capabilities, no escalation, RuntimeDefault seccomp, no API token, resources set", () => {
    const d = only<Deployment>("Deployment");
    const pod = d.spec.template.spec;
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } });
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(named("ServiceAccount", pod.serviceAccountName!)?.automountServiceAccountToken).toBe(false);
    for (const c of pod.containers) {
      expect(c.securityContext, c.name).toMatchObject({ runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] }, seccompProfile: { type: "RuntimeDefault" } });
      expect(c.securityContext?.privileged ?? false).toBe(false);
      expect(c.securityContext?.capabilities?.add ?? []).toEqual([]);
      expect(c.resources?.requests?.cpu && c.resources?.requests?.memory && c.resources?.limits?.memory, c.name).toBeTruthy();
      // The same command as scripts/start.sh and the systemd unit.
      expect(c.command).toEqual(["node", "--max-semi-space-size=64", "--import", "tsx", "server/main.ts"]);
    }
    // readOnlyRootFilesystem: tsx's cache needs a writable /tmp.
    const tmp = pod.containers[0]!.volumeMounts!.find((m) => m.mountPath === "/tmp");
    expect(pod.volumes!.find((v) => v.name === tmp?.name)?.emptyDir).toBeDefined();
  });

  it("references only Secret and ConfigMap keys defined here, mounted as directories", () => {
    const pod = only<Deployment>("Deployment").spec.template.spec;
    const keysOf = (kind: "Secret" | "ConfigMap", name: string): string[] => {
      const d = named(kind, name);
      expect(d, `${kind} ${name}`).toBeDefined();
      return Object.keys({ ...d!.data, ...d!.stringData });
    };
    let refs = 0;
    for (const c of pod.containers) {
      for (const e of c.env ?? []) {
        const s = e.valueFrom?.secretKeyRef;
        const m = e.valueFrom?.configMapKeyRef;
        if (s) {
          expect(keysOf("Secret", s.name), e.name).toContain(s.key);
          refs++;
        }
        if (m) {
          expect(keysOf("ConfigMap", m.name), e.name).toContain(m.key);
          refs++;
        }
      }
      for (const f of c.envFrom ?? []) {
        if (f.configMapRef) expect(keysOf("ConfigMap", f.configMapRef.name).length).toBeGreaterThan(0);
        if (f.secretRef) expect(keysOf("Secret", f.secretRef.name).length).toBeGreaterThan(0);
        refs++;
      }
      for (const m of c.volumeMounts ?? []) {
        expect(pod.volumes!.map((v) => v.name), m.name).toContain(m.name);
        expect(m.subPath, `${m.name}: a subPath mount never sees updates`).toBeUndefined();
      }
    }
    for (const v of pod.volumes ?? []) {
      const src = v.secret ? (["Secret", v.secret.secretName, v.secret.items] as const) : v.configMap ? (["ConfigMap", v.configMap.name, v.configMap.items] as const) : undefined;
      if (!src) continue;
      const keys = keysOf(src[0], src[1]);
      for (const item of src[2] ?? []) {
        expect(keys, v.name).toContain(item.key);
        refs++;
      }
    }
    expect(refs).toBeGreaterThanOrEqual(5);
    // Settings come from one place: the ConfigMap does not repeat what the container sets.
    const cm = named("ConfigMap", "sandboxd")!.data!;
    const explicit = (pod.containers[0]!.env ?? []).map((e) => e.name);
    expect(Object.keys(cm).filter((k) => explicit.includes(k))).toEqual([]);
    expect(unknownNames([...Object.keys(cm), ...explicit])).toEqual([]);
  });

  it("has a Secret template with placeholders only", () => {
    const s = named("Secret", "sandboxd")!;
    expect(Object.keys(s.stringData ?? {}).sort()).toEqual(["api-tokens", "proxmox-secret", "ssh-key"]);
    expect(s.data).toBeUndefined();
    expect(s.stringData!["proxmox-secret"]).toMatch(/REPLACE/);
    expect(s.stringData!["ssh-key"]).toMatch(/REPLACE/);
    expect(s.stringData!["api-tokens"]!.split("\n").every((l) => l.trim() === "" || l.trim().startsWith("#"))).toBe(true);
  });

  it("sets a valid sandboxd configuration: the pod's environment and mounted files, loaded by loadConfig", () => {
    const c = podConfig();
    expect(c.provider).toBe("proxmox");
    expect(c.listen).toEqual({ host: "0.0.0.0", port: 8080 });
    expect(c.auth.tokensFile).toBeDefined();
    // kubelet's gRPC probes name the pod's IP as :authority; clients use the Service's names.
    expect(c.auth.allowedHosts).toEqual(expect.arrayContaining(["10.0.0.7", "sandboxd", "sandboxd.sandboxd.svc", "sandboxd.sandboxd.svc.cluster.local", "localhost"]));
    expect(c.proxmox?.secret).toMatch(/REPLACE/);
  });

  /** The container's environment as the kubelet builds it (envFrom, then env; $(VAR) expanded; POD_IP 10.0.0.7). */
  function containerEnv(c: Container): Record<string, string> {
    const env: Record<string, string> = {};
    for (const f of c.envFrom ?? []) if (f.configMapRef) Object.assign(env, named("ConfigMap", f.configMapRef.name)!.data);
    for (const e of c.env ?? []) {
      const v = e.valueFrom;
      const value = v?.fieldRef?.fieldPath === "status.podIP" ? "10.0.0.7"
        : v?.secretKeyRef ? (named("Secret", v.secretKeyRef.name)!.stringData ?? {})[v.secretKeyRef.key]
        : v?.configMapKeyRef ? (named("ConfigMap", v.configMapKeyRef.name)!.data ?? {})[v.configMapKeyRef.key]
        : (e.value ?? "").replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (all, name: string) => env[name] ?? all);
      if (value === undefined) throw new Error(`${e.name}: its source is not defined here`);
      env[e.name] = value;
    }
    return env;
  }

  /** loadConfig over the container's environment, with files read from what the pod mounts. */
  function podConfig(): Config {
    const pod = only<Deployment>("Deployment").spec.template.spec;
    const c = pod.containers[0]!;
    const files = new Map<string, string>();
    for (const m of c.volumeMounts ?? []) {
      const v = pod.volumes!.find((x) => x.name === m.name)!;
      const data = v.secret ? named("Secret", v.secret.secretName)?.stringData : v.configMap ? named("ConfigMap", v.configMap.name)?.data : undefined;
      if (!data) continue;
      const items = (v.secret?.items ?? v.configMap?.items) ?? Object.keys(data).map((key) => ({ key, path: key }));
      for (const it of items) files.set(path.posix.join(m.mountPath, it.path), data[it.key]!);
    }
    const readFile = (p: string) => {
      const text = files.get(p);
      if (text === undefined) throw new Error(`ENOENT: nothing mounted at ${p}`);
      return text;
    };
    return loadConfig(containerEnv(c), readFile, (p) => files.has(p));
  }
});
