/** Authentication, tenants' access rules and web safety: the public surface of server/auth. */
export { Authenticator, type AuthSettings, type PeerInfo } from "./authenticator.js";
export { AUTH_SETTINGS, AuthConfigError, DEFAULT_PUBLIC_SERVICES, isLoopback, parseAuthConfig, type AuthConfig } from "./config.js";
export { IdentityMap, IdentityMapError, certificateIdentities, xfccIdentities } from "./identities.js";
export { ANONYMOUS, DEFAULT_TENANT, READ_ONLY_RPCS, ROLES, TENANT_PATTERN, callerOf, canSee, checkMethod, principalKey, type Principal, type Role } from "./principal.js";
export { TokenFile, hashToken, mintToken, parseTokenFile } from "./token-file.js";
export { defaultAllowedHosts, hostOf, webSafetyHandler, type WebSafety } from "./web-safety.js";
