/**
 * The control plane: a SandboxProvider makes and destroys sandboxes. The data
 * plane (server/ssh) reaches each sandbox over SSH using the SshTarget a
 * provider hands out, so providers never run commands themselves.
 */

/** What a caller asks for. Providers validate ranges and raise invalid_argument. */
export interface SandboxSpec {
  cores: number;
  memoryMiB: number;
  diskGiB: number;
  internet: boolean;
  labels: Record<string, string>;
  /** The tenant it belongs to (server/auth); absent: the default tenant. Stored with the sandbox. */
  tenant?: string;
}

/** How the data plane reaches a sandbox's sshd. */
export interface SshTarget {
  host: string;
  port: number;
  username: string;
  privateKey: Buffer;
  /**
   * The sandbox's host key, pinned: an OpenSSH public key line
   * ("ssh-ed25519 AAAA..."). Connections presenting any other key are refused.
   */
  hostKey: string;
}

/** "stopped": the machine is not running (stopped by an operator, its host restarted); only destroy and the lease work. */
export type SandboxState = "creating" | "running" | "stopped" | "destroying";

/**
 * A sandbox's lease as the provider stores it, next to the sandbox (local
 * state file, Proxmox description): the source of truth a restarted sandboxd
 * or another replica reads. Times are epoch milliseconds.
 */
export interface StoredLease {
  expiresAt: number;
  ttlMs: number;
}

/** The CreateSandbox request_id a sandbox was made for, stored so a retry after a restart finds it. */
export interface CreateRequestKey {
  id: string;
  /** Hash of the request's parameters: a retry with others is refused. */
  fingerprint: string;
}

export interface SandboxHandle {
  id: string;
  state: SandboxState;
  spec: SandboxSpec;
  /** IPv4 address of the sandbox on the provider's network. */
  address: string;
  ssh: SshTarget;
  createdAt: Date;
  /** The stored lease; undefined for a sandbox stored without one (made by an older sandboxd). */
  lease?: StoredLease;
  request?: CreateRequestKey;
  /** Private destinations it may reach besides the internet toggle (see setEgressAllow); absent when none. */
  egressAllow?: string[];
}

export interface CreateOptions {
  /** Aborting gives up the create; whatever was made is destroyed. */
  signal?: AbortSignal;
  /**
   * Stored with the sandbox's first record, so no sandbox ever exists without
   * its lease; restarted (expiresAt = ready + ttlMs) by the write that
   * finishes the create, since the TTL counts from when the sandbox is ready.
   * The handle carries the lease as stored then.
   */
  lease?: StoredLease;
  /** Stored with the sandbox too. */
  request?: CreateRequestKey;
}

/** The label marking a warm pool member (server/sandboxes/warm-pool.ts); its value is the pool's shape. */
export const POOL_LABEL = "sandboxd.pool";

/** What a claim writes over a warm pool member, making it the caller's sandbox. */
export interface ClaimOptions {
  labels: Record<string, string>;
  /** Absent: the default tenant. */
  tenant?: string;
  /** Applied before the claim returns (members have none). */
  internet: boolean;
  /** Counted from the claim. */
  lease: StoredLease;
  request?: CreateRequestKey;
  /** The claim's time: the sandbox's creation time from now on. */
  createdAt: Date;
}

export interface SandboxProvider {
  readonly name: string;
  /** Prepares the host or backend and reconciles leftovers of an earlier process. */
  start(): Promise<void>;
  create(spec: SandboxSpec, options?: CreateOptions): Promise<SandboxHandle>;
  /** Idempotent: destroying an unknown or already destroyed sandbox succeeds. */
  destroy(id: string): Promise<void>;
  get(id: string): Promise<SandboxHandle | undefined>;
  list(): Promise<SandboxHandle[]>;
  /**
   * The ids of the finished sandboxes, cheaply (Proxmox: one call plus one per
   * container not seen before). Also undoes half-made sandboxes no create of
   * this process is working on, once they are older than a create may take.
   */
  listIds(): Promise<string[]>;
  /**
   * Stores `lease` unless a later expiry is stored already (several replicas
   * may write); returns what is stored. Raises not_found for an unknown id.
   */
  extendLease(id: string, lease: StoredLease): Promise<StoredLease>;
  /** The stored lease, null for a sandbox stored without one, undefined when the sandbox is gone. */
  readLease(id: string): Promise<StoredLease | null | undefined>;
  /** Takes effect for new connections at once; raises not_found for an unknown id. */
  setInternet(id: string, enabled: boolean): Promise<void>;
  /**
   * Replaces the sandbox's egress allowlist: destinations it may reach
   * whatever its internet setting, also in private ranges ("10.0.0.0/8",
   * "10.1.2.3", "10.1.2.3:5432"; a port means TCP and UDP to it). Takes effect
   * at once, also on open connections; returns the list as stored.
   * invalid_argument for a malformed entry, not_found for an unknown id.
   */
  setEgressAllow?(id: string, entries: readonly string[]): Promise<string[]>;
  /**
   * Whether the provider can serve (the local runtime: sandbox isolation is
   * complete). `watchHealth` calls the listener with every change and returns
   * the unsubscribe; the server reports it through grpc.health.
   */
  readonly healthy?: boolean;
  watchHealth?(listener: (healthy: boolean) => void): () => void;
  /**
   * The sandbox made for a CreateSandbox request id by any replica, waiting
   * while that create is still under way; undefined when there is none. Only
   * providers shared by several replicas need it (Proxmox).
   */
  findByRequest?(requestId: string, signal?: AbortSignal): Promise<SandboxHandle | undefined>;
  /**
   * Turns a warm pool member (labelled POOL_LABEL) into an ordinary sandbox
   * in one atomic write of its record: labels, tenant, internet, lease,
   * request id and creation time; then applies the internet setting. Undefined when it is no longer a member (another replica
   * or call claimed it first) or gone: exactly one claim of a member wins.
   */
  claim?(id: string, options: ClaimOptions): Promise<SandboxHandle | undefined>;
  /** The smallest disk a sandbox can have (a template's root disk); defaults apply at least this. */
  readonly minDiskGiB?: number;
  /** Stops background work without destroying sandboxes (they outlive a restart). */
  close(): Promise<void>;
}
