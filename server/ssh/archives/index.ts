/** Whole directories as tar streams: UploadArchive and DownloadArchive. */
export { uploadArchive, ARCHIVE_TEMP_MARK } from "./upload-archive.js";
export type { UploadArchiveOptions, UploadArchiveResult } from "./upload-archive.js";
export { downloadArchive } from "./download-archive.js";
export type { DownloadArchiveDone, DownloadArchiveItem, DownloadArchiveOptions } from "./download-archive.js";
