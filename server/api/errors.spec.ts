import { describe, expect, it } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import { SandboxError, invalidArgument, type SandboxErrorKind } from "../errors.js";
import { INTERNAL_MESSAGE, toConnectError } from "./errors.js";

const logged: object[] = [];
const log = { debug() {}, info() {}, warn() {}, error: (o: object) => void logged.push(o) };

describe("toConnectError", () => {
  it.each<[SandboxErrorKind, Code]>([
    ["not_found", Code.NotFound],
    ["invalid_argument", Code.InvalidArgument],
    ["failed_precondition", Code.FailedPrecondition],
    ["resource_exhausted", Code.ResourceExhausted],
    ["unavailable", Code.Unavailable],
    ["deadline_exceeded", Code.DeadlineExceeded],
    ["cancelled", Code.Canceled],
    ["permission_denied", Code.PermissionDenied],
    ["already_exists", Code.AlreadyExists],
    ["internal", Code.Internal],
  ])("maps %s", (kind, code) => {
    const ce = toConnectError(new SandboxError(kind, "boom"), log);
    expect(ce.code).toBe(code);
    expect(ce.rawMessage).toBe(kind === "internal" ? INTERNAL_MESSAGE : "boom");
  });

  it("renames domain fields to proto fields", () => {
    expect(toConnectError(invalidArgument("expectedSha256", "must be 64 hex digits"), log).rawMessage).toBe("expected_sha256: must be 64 hex digits");
    expect(toConnectError(invalidArgument("cores", "too many"), log).rawMessage).toBe("cores: too many");
  });

  it("hides unknown errors behind a generic INTERNAL and logs them", () => {
    logged.length = 0;
    const ce = toConnectError(new Error("secret path /var/lib/x/key"), log);
    expect(ce.code).toBe(Code.Internal);
    expect(ce.rawMessage).toBe(INTERNAL_MESSAGE);
    expect(JSON.stringify(logged)).toContain("secret path");
  });

  it("keeps an internal SandboxError's details (host command lines, log tails) in the log, out of the answer", () => {
    logged.length = 0;
    const ce = toConnectError(new SandboxError("internal", "create sbx-1: ip netns add sbx-1: exit 1: /run/netns busy"), log);
    expect([ce.code, ce.rawMessage]).toEqual([Code.Internal, INTERNAL_MESSAGE]);
    expect(JSON.stringify(logged)).toContain("ip netns add");
  });

  it("passes ConnectErrors through", () => {
    const e = new ConnectError("x", Code.Aborted);
    expect(toConnectError(e, log)).toBe(e);
  });
});
