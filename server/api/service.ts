/** The SandboxService implementation: one thin handler per RPC (see the files next to this one). */
import type { ConnectRouter } from "@connectrpc/connect";
import { SandboxService } from "../../gen/ts/sandbox/v1/sandbox_pb.js";
import { createSandbox } from "./create-sandbox.js";
import type { ApiDeps } from "./deps.js";
import { destroySandbox } from "./destroy-sandbox.js";
import { downloadFile } from "./download.js";
import { execCommand } from "./exec.js";
import { getSandbox } from "./get-sandbox.js";
import { keepAlive } from "./keep-alive.js";
import { listSandboxes } from "./list-sandboxes.js";
import { setInternetAccess } from "./set-internet-access.js";
import { setEgressAllowlist } from "./set-egress-allowlist.js";
import { uploadFile } from "./upload.js";
import { attachCommand } from "./commands/attach.js";
import { streamInput, writeInput } from "./commands/input.js";
import { listCommands } from "./commands/list-commands.js";
import { resizePty } from "./commands/resize-pty.js";
import { signalCommand } from "./commands/signal-command.js";
import { listDir } from "./files/list-dir.js";
import { watch } from "./files/watch.js";
import { makeDir, move, remove } from "./files/mutate.js";
import { stat } from "./files/stat.js";
import { uploadArchive } from "./files/upload-archive.js";
import { downloadArchive } from "./files/download-archive.js";

export function sandboxRoutes(router: ConnectRouter, deps: ApiDeps): void {
  router.service(SandboxService, {
    createSandbox: (req, ctx) => createSandbox(deps, req, ctx),
    getSandbox: (req, ctx) => getSandbox(deps, req, ctx),
    listSandboxes: (req, ctx) => listSandboxes(deps, req, ctx),
    destroySandbox: (req, ctx) => destroySandbox(deps, req, ctx),
    keepAlive: (req, ctx) => keepAlive(deps, req, ctx),
    setInternetAccess: (req, ctx) => setInternetAccess(deps, req, ctx),
    setEgressAllowlist: (req, ctx) => setEgressAllowlist(deps, req, ctx),
    exec: (req, ctx) => execCommand(deps, req, ctx),
    upload: (reqs, ctx) => uploadFile(deps, reqs, ctx),
    download: (req, ctx) => downloadFile(deps, req, ctx),
    attach: (req, ctx) => attachCommand(deps, req, ctx),
    writeInput: (req, ctx) => writeInput(deps, req, ctx),
    streamInput: (reqs, ctx) => streamInput(deps, reqs, ctx),
    signalCommand: (req, ctx) => signalCommand(deps, req, ctx),
    resizePty: (req, ctx) => resizePty(deps, req, ctx),
    listCommands: (req, ctx) => listCommands(deps, req, ctx),
    stat: (req, ctx) => stat(deps, req, ctx),
    listDir: (req, ctx) => listDir(deps, req, ctx),
    watch: (req, ctx) => watch(deps, req, ctx),
    makeDir: (req, ctx) => makeDir(deps, req, ctx),
    remove: (req, ctx) => remove(deps, req, ctx),
    move: (req, ctx) => move(deps, req, ctx),
    uploadArchive: (reqs, ctx) => uploadArchive(deps, reqs, ctx),
    downloadArchive: (req, ctx) => downloadArchive(deps, req, ctx),
  });
}
