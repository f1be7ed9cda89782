import type { Client } from "@connectrpc/connect";
import type { SandboxService } from "../../gen/ts/sandbox/v1/sandbox_pb.js";

export type Api = Client<typeof SandboxService>;

/** One Exec of `true` (argv, no shell), read to its end; a non-zero exit is an error. */
export async function execTrue(api: Api, sandboxId: string): Promise<void> {
  for await (const res of api.exec({ sandboxId, command: { case: "argv", value: { args: ["true"] } } })) {
    if (res.event.case === "exited" && res.event.value.exitCode !== 0) throw new Error(`true failed: ${JSON.stringify(res.event.value)}`);
  }
}
