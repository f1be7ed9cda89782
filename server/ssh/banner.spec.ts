import { afterEach, describe, expect, it } from "vitest";
import net from "node:net";
import { sshBannerAnswers } from "./banner.js";

describe("sshBannerAnswers", () => {
  let server: net.Server | undefined;
  afterEach(() => server?.close());
  const serve = async (onConnection: (s: net.Socket) => void) => {
    server = net.createServer(onConnection);
    await new Promise<void>((r) => server!.listen(0, "127.0.0.1", r));
    return (server.address() as net.AddressInfo).port;
  };

  it("is true for an SSH-2.0 banner, also one sent a byte at a time", async () => {
    expect(await sshBannerAnswers("127.0.0.1", await serve((s) => s.write("SSH-2.0-OpenSSH_9.2\r\n")), 1000)).toBe(true);
    server!.close();
    const slow = await serve((s) => [..."SSH-2.0-x\r\n"].forEach((c, i) => setTimeout(() => s.write(c), i * 5)));
    expect(await sshBannerAnswers("127.0.0.1", slow, 1000)).toBe(true);
  });

  it("is false for another protocol, silence, a closed port, and decides on 8 bytes of a flood", async () => {
    expect(await sshBannerAnswers("127.0.0.1", await serve((s) => s.write("HTTP/1.1 400 Bad Request\r\n")), 1000)).toBe(false);
    server!.close();
    expect(await sshBannerAnswers("127.0.0.1", await serve(() => {}), 200)).toBe(false);
    server!.close();
    const port = await serve((s) => s.end());
    expect(await sshBannerAnswers("127.0.0.1", port, 1000)).toBe(false);
    server!.close();
    // 64 MiB without a newline: answered false at once, not read to the end or the timeout.
    const flood = await serve((s) => { s.on("error", () => {}); s.write(Buffer.alloc(64 << 20, 0x41)); });
    const t0 = Date.now();
    expect(await sshBannerAnswers("127.0.0.1", flood, 5000)).toBe(false);
    expect(Date.now() - t0).toBeLessThan(2000);
  });
});
