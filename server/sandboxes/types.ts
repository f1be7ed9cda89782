/** The service layer's view of a sandbox, what the API maps to the proto Sandbox. */
import type { SandboxState } from "../providers/provider.js";

export interface Resources {
  cores: number;
  memoryMiB: number;
  diskGiB: number;
}

export interface SandboxView {
  id: string;
  state: SandboxState;
  labels: Record<string, string>;
  resources: Resources;
  internet: boolean;
  /** Private destinations it may reach besides the internet toggle (normalised entries). */
  egressAllowlist: string[];
  createdAt: Date;
  leaseExpiresAt: Date;
  provider: string;
  /** The tenant it belongs to. */
  tenant: string;
}

/** A CreateSandbox request after proto decoding; zero resources mean "server default". */
export interface CreateRequest {
  resources: Resources;
  internet: boolean;
  labels: Record<string, string>;
  /** undefined = the server's default TTL. */
  leaseTtlMs?: number;
  /** "" = not idempotent. */
  requestId: string;
  /** The caller's tenant (server/auth); undefined: the default tenant. */
  tenant?: string;
}

export interface ListRequest {
  selector: Record<string, string>;
  /** Only this tenant's sandboxes; undefined: every tenant's. */
  tenant?: string;
  pageSize: number;
  pageToken: string;
}

export interface ListPage {
  sandboxes: SandboxView[];
  nextPageToken: string;
}
