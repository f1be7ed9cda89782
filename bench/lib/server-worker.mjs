// Worker entry: tsx's loader does not follow into worker threads, so register it here.
import { register } from "tsx/esm/api";

register();
await import("./server-worker.ts");
