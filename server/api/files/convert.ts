/** FileEntry (ssh layer) → FileInfo (proto). */
import type { MessageInitShape } from "@bufbuild/protobuf";
import { FileType, type FileInfoSchema } from "../../../gen/ts/sandbox/v1/sandbox_pb.js";
import type { FileEntry, FileKind } from "../../ssh/files/index.js";

const TYPES: Record<FileKind, FileType> = {
  file: FileType.FILE,
  directory: FileType.DIRECTORY,
  symlink: FileType.SYMLINK,
  other: FileType.OTHER,
};

export function fileInfo(e: FileEntry): MessageInitShape<typeof FileInfoSchema> {
  return {
    name: e.name, path: e.path, type: TYPES[e.type], size: BigInt(e.size), mode: e.mode,
    uid: e.uid, gid: e.gid, mtime: { seconds: BigInt(e.mtime), nanos: 0 }, symlinkTarget: e.symlinkTarget,
  };
}
