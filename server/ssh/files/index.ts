/** File RPCs: Stat, ListDir, MakeDir, Remove, Move over SFTP; Watch through sbx-run. */
export type { FileEntry, FileKind } from "./common.js";
export { statPath } from "./stat.js";
export { listDir, LIST_BATCH, MAX_LIST_DEPTH } from "./list-dir.js";
export type { ListDirOptions } from "./list-dir.js";
export { makeDir } from "./make-dir.js";
export { removePath } from "./remove.js";
export { movePath } from "./move.js";
export { watchDir, WATCH_BATCH } from "./watch.js";
export type { WatchChangeEvent, WatchItem, WatchOptions } from "./watch.js";
