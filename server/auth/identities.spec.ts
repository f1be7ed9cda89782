import { describe, expect, it } from "vitest";
import { IdentityMap, IdentityMapError, certificateIdentities, xfccIdentities } from "./identities.js";

const RUNNER = "spiffe://cluster.local/ns/agents/sa/runner";

describe("IdentityMap.parse", () => {
  it("reads SPIFFE ids, prefixes and CNs with tenants and roles (role defaults to user)", () => {
    const m = IdentityMap.parse(` ${RUNNER}=agents , spiffe://cluster.local/ns/ci/*=ci:viewer,CN=ops=ops:admin,`);
    expect(m.size).toBe(3);
    expect(m.resolve([RUNNER], "mtls")).toEqual({ tenant: "agents", role: "user", name: RUNNER, via: "mtls" });
    expect(m.resolve(["spiffe://cluster.local/ns/ci/sa/build"], "mtls")).toMatchObject({ tenant: "ci", role: "viewer" });
    expect(m.resolve(["CN=ops"], "mtls")).toEqual({ tenant: "ops", role: "admin", name: "CN=ops", via: "mtls" });
    expect(IdentityMap.parse("").size).toBe(0);
  });

  it.each([
    ["no tenant", RUNNER, /expected spiffe:\/\/trust-domain/],
    ["no identity", "=agents", /expected spiffe:\/\/trust-domain/],
    ["not spiffe or CN", "https://example.com/x=agents", /expected spiffe/],
    ["a wildcard not at the end", "spiffe://cluster.local/*/sa/x=agents", /expected spiffe/],
    ["a bare wildcard", "spiffe://*=agents", /expected spiffe/],
    ["a CN wildcard", "CN=*=agents", /expected spiffe/],
    ["a bad tenant", `${RUNNER}=Agents`, /tenant 'Agents' is not/],
    ["an empty tenant", `${RUNNER}=:admin`, /tenant '' is not/],
    ["a bad role", `${RUNNER}=agents:root`, /role 'root' is not one of admin, user, viewer/],
    ["a role with a tail", `${RUNNER}=agents:admin:x`, /role 'admin:x' is not one of/],
    ["the same pattern twice", `${RUNNER}=agents,${RUNNER}=other`, /mapped twice/],
  ])("refuses %s, naming the item", (_what, text, message) => {
    expect(() => IdentityMap.parse(text)).toThrow(IdentityMapError);
    expect(() => IdentityMap.parse(text)).toThrow(message);
  });
});

describe("IdentityMap.resolve", () => {
  const m = IdentityMap.parse(
    [
      "spiffe://cluster.local/ns/agents/*=agents",
      "spiffe://cluster.local/ns/agents/sa/*=agent-sas",
      `${RUNNER}=runner:viewer`,
      "spiffe://cluster.local/ns/agents/sa/x/*=x-prefix",
      "spiffe://cluster.local/ns/agents/sa/x=x-exact",
      "CN=ops=ops:admin",
    ].join(","),
  );

  it("matches exactly", () => {
    expect(m.resolve([RUNNER], "mtls")).toMatchObject({ tenant: "runner", role: "viewer", name: RUNNER });
    expect(m.resolve(["CN=ops"], "mesh")).toMatchObject({ tenant: "ops", via: "mesh" });
    expect(m.resolve(["CN=ops2"], "mtls")).toBeUndefined();
    expect(m.resolve(["spiffe://cluster.local/ns/agents/sa/runner2"], "mtls")).toMatchObject({ tenant: "agent-sas" });
  });

  it("the longest prefix wins, whatever the order of the rules", () => {
    expect(m.resolve(["spiffe://cluster.local/ns/agents/sa/other"], "mtls")).toMatchObject({ tenant: "agent-sas" });
    expect(m.resolve(["spiffe://cluster.local/ns/agents/pod/other"], "mtls")).toMatchObject({ tenant: "agents" });
    const reversed = IdentityMap.parse("spiffe://cluster.local/ns/agents/sa/*=agent-sas,spiffe://cluster.local/ns/agents/*=agents");
    expect(reversed.resolve(["spiffe://cluster.local/ns/agents/sa/other"], "mtls")).toMatchObject({ tenant: "agent-sas" });
  });

  it("an exact rule beats a prefix rule as long as the identity", () => {
    // "…/sa/x/*" and "…/sa/x/y" have the same length; the exact rule must still win, in either order.
    const exactLast = IdentityMap.parse("spiffe://td/a/*=prefix,spiffe://td/a/b=exact");
    expect(exactLast.resolve(["spiffe://td/a/b"], "mtls")).toMatchObject({ tenant: "exact" });
    const exactFirst = IdentityMap.parse("spiffe://td/a/b=exact,spiffe://td/a/*=prefix");
    expect(exactFirst.resolve(["spiffe://td/a/b"], "mtls")).toMatchObject({ tenant: "exact" });
    expect(m.resolve(["spiffe://cluster.local/ns/agents/sa/x"], "mtls")).toMatchObject({ tenant: "x-exact" });
    expect(m.resolve(["spiffe://cluster.local/ns/agents/sa/x/y"], "mtls")).toMatchObject({ tenant: "x-prefix" });
  });

  it("a prefix matches below its path only, not a sibling that merely starts alike", () => {
    const ci = IdentityMap.parse("spiffe://cluster.local/ns/ci/*=ci");
    expect(ci.resolve(["spiffe://cluster.local/ns/ci/sa/build"], "mtls")).toMatchObject({ tenant: "ci" });
    expect(ci.resolve(["spiffe://cluster.local/ns/ci-evil/sa/build"], "mtls")).toBeUndefined();
    expect(ci.resolve(["spiffe://cluster.local/ns/ci"], "mtls")).toBeUndefined();
    expect(ci.resolve(["spiffe://other.domain/ns/ci/sa/build"], "mtls")).toBeUndefined();
  });

  it("takes the first identity a rule maps, in the order given", () => {
    expect(m.resolve(["spiffe://elsewhere/x", "CN=ops"], "mtls")).toMatchObject({ tenant: "ops", name: "CN=ops" });
    expect(m.resolve([RUNNER, "CN=ops"], "mtls")).toMatchObject({ tenant: "runner", name: RUNNER });
    expect(m.resolve([], "mtls")).toBeUndefined();
  });
});

describe("certificateIdentities", () => {
  // The shape of node's TLSSocket.getPeerCertificate() (fields trimmed).
  const peer = (subjectaltname: string | undefined, CN?: string | string[]) => ({
    subject: { C: "US", O: "Example", ...(CN === undefined ? {} : { CN }) },
    issuer: { CN: "client CA" },
    subjectaltname,
    valid_from: "Jan  1 00:00:00 2026 GMT",
    valid_to: "Jan  1 00:00:00 2027 GMT",
    fingerprint256: "AB:CD",
  });

  it("gives SPIFFE URI SANs, then the CN", () => {
    expect(certificateIdentities(peer(`DNS:runner.agents.svc, URI:${RUNNER}, IP Address:10.0.0.7`, "runner"))).toEqual([RUNNER, "CN=runner"]);
    expect(certificateIdentities(peer(`URI:${RUNNER}, URI:spiffe://cluster.local/ns/b/sa/c`))).toEqual([RUNNER, "spiffe://cluster.local/ns/b/sa/c"]);
  });

  it("ignores other URIs, DNS names and node's quoted (escaped) SANs", () => {
    expect(certificateIdentities(peer("URI:https://example.com/x, DNS:spiffe.example.com", "svc"))).toEqual(["CN=svc"]);
    // A SAN with a comma comes back quoted with the comma escaped: it must not split into a spiffe id.
    expect(certificateIdentities(peer(`URI:"https://x\\u002c URI:spiffe://cluster.local/ns/admin", DNS:localhost`))).toEqual([]);
  });

  it("no SAN, no CN, several CNs, no certificate: nothing (or no CN)", () => {
    expect(certificateIdentities(peer(undefined, "only-cn"))).toEqual(["CN=only-cn"]);
    expect(certificateIdentities(peer(undefined))).toEqual([]);
    expect(certificateIdentities(peer(`URI:${RUNNER}`, ["a", "b"]))).toEqual([RUNNER]);
    expect(certificateIdentities(peer(undefined, ["single"]))).toEqual(["CN=single"]);
    expect(certificateIdentities(undefined)).toEqual([]);
    expect(certificateIdentities({})).toEqual([]);
  });
});

describe("xfccIdentities", () => {
  it("Istio's header (SANITIZE_SET): the client's URI, not the proxy's By", () => {
    const h =
      'By=spiffe://cluster.local/ns/default/sa/sandboxd;Hash=468ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a02dd8de688;Subject="";URI=spiffe://cluster.local/ns/agents/sa/runner';
    expect(xfccIdentities(h)).toEqual([RUNNER]);
  });

  it("Envoy's documented examples", () => {
    // From Envoy's x-forwarded-client-cert documentation; URIs are not SPIFFE ids, and that Subject is not RFC 2253.
    expect(
      xfccIdentities(
        'By=http://frontend.lyft.com;Hash=468ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a02dd8de688;Subject="/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client";URI=http://testclient.lyft.com',
      ),
    ).toEqual([]);
    expect(
      xfccIdentities(
        "By=http://frontend.lyft.com;Hash=468ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a02dd8de688;URI=http://testclient.lyft.com,By=http://backend.lyft.com;Hash=9ba61d6425303443c0748a02dd8de688468ed33be74eee6556d90c0149c1309e;URI=http://frontend.lyft.com",
      ),
    ).toEqual([]);
  });

  it("an RFC 2253 Subject (how Envoy writes it) in quotes, commas and all, gives its CN after the URI", () => {
    const h = `By=spiffe://cluster.local/ns/default/sa/sandboxd;Hash=abc;Subject="CN=Test Client,OU=Lyft,L=San Francisco,ST=CA,C=US";URI=${RUNNER};DNS=runner.agents.svc`;
    expect(xfccIdentities(h)).toEqual([RUNNER, "CN=Test Client"]);
    // The subject's position in the element does not matter, nor the CN's in the name.
    expect(xfccIdentities(`Hash=abc;URI=${RUNNER};Subject="O=Example\\, Inc.,CN=ops"`)).toEqual([RUNNER, "CN=ops"]);
    expect(xfccIdentities('Hash=abc;Subject="CN=only-cn"')).toEqual(["CN=only-cn"]);
    // Escapes: an escaped comma, an escaped quote, UTF-8 bytes in hex.
    expect(xfccIdentities('Subject="CN=Doe\\, John,O=x"')).toEqual(["CN=Doe, John"]);
    expect(xfccIdentities('Subject="CN=say \\"hi\\""')).toEqual(['CN=say "hi"']);
    expect(xfccIdentities('Subject="CN=Jos\\C3\\A9"')).toEqual(["CN=José"]);
  });

  it("a CN smuggled into another attribute through an escaped comma is not the CN", () => {
    // RFC 2253 of a certificate whose OU is "a,CN=ops" and CN is "evil".
    expect(xfccIdentities('Subject="OU=a\\,CN=ops,CN=evil"')).toEqual(["CN=evil"]);
    expect(xfccIdentities('Subject="CN=evil,OU=a\\,CN=ops"')).toEqual(["CN=evil"]);
    // Several CNs: none.
    expect(xfccIdentities(`URI=${RUNNER};Subject="CN=a,CN=b"`)).toEqual([RUNNER]);
  });

  it("several elements (APPEND_FORWARD): only the last one, the client of the nearest proxy", () => {
    const h =
      'By=spiffe://cluster.local/ns/edge/sa/gw;Hash=111;Subject="CN=first,O=a";URI=spiffe://cluster.local/ns/admin/sa/first,' +
      `By=spiffe://cluster.local/ns/default/sa/sandboxd;Hash=222;Subject="CN=last, O=b";URI=${RUNNER}`;
    expect(xfccIdentities(h)).toEqual([RUNNER, "CN=last"]);
    // Quoted commas do not start a new element.
    expect(xfccIdentities(`URI=spiffe://cluster.local/ns/a/sa/b;Subject="CN=x,OU=y,O=z"`)).toEqual(["spiffe://cluster.local/ns/a/sa/b", "CN=x"]);
  });

  it("an unterminated quote from the client cannot swallow the element the proxy appended", () => {
    const forged = 'URI=spiffe://cluster.local/ns/admin/sa/root;Subject="';
    expect(xfccIdentities(`${forged},By=spiffe://cluster.local/ns/default/sa/sandboxd;Hash=1;URI=${RUNNER}`)).toEqual([]);
  });

  it("an element with several SPIFFE URIs (not an SVID; maybe one smuggled in an unescaped URI SAN) gives nothing", () => {
    // Envoy writes a URI= per URI SAN, unescaped: a SAN "spiffe://td/x;URI=spiffe://td/admin" reads as two.
    expect(xfccIdentities(`By=spiffe://cluster.local/ns/default/sa/sandboxd;Hash=1;Subject="CN=x";URI=spiffe://td/x;URI=${RUNNER}`)).toEqual([]);
    // Other URIs beside the one SPIFFE id are fine.
    expect(xfccIdentities(`Hash=1;URI=https://example.com/x;URI=${RUNNER}`)).toEqual([RUNNER]);
  });

  it("absent, empty or identity-less headers give nothing", () => {
    expect(xfccIdentities(null)).toEqual([]);
    expect(xfccIdentities("")).toEqual([]);
    expect(xfccIdentities("By=spiffe://cluster.local/ns/default/sa/sandboxd;Hash=abc;URI=")).toEqual([]);
    expect(xfccIdentities("garbage")).toEqual([]);
    expect(xfccIdentities(",,,")).toEqual([]);
  });

  it("keys are case-insensitive", () => {
    expect(xfccIdentities(`by=spiffe://x/y;uri=${RUNNER}`)).toEqual([RUNNER]);
  });
});
