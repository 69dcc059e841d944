/** The SDK for Node: the portable SDK plus file state, key files, uploads and CSV hashing. */

export { decryptBytes as decryptAgeNode } from "../../protocol/age/stream-node.js";
export * from "../sdk/index.js";
export { checkFile } from "./check-file.js";
export { defaultStateDir, FileStateStore } from "./file-store.js";
export { hashIdsFile } from "./hash-ids-file.js";
export { readKeyFile, writeNewKeyFile } from "./key-file.js";
export { type ExpectedImage, expectedImageOf, readExpectedImage } from "./manifest.js";
export { parseSqlWithDuckDb, reviewContractWithDuckDb } from "./review.js";
export {
  type UploadOptions,
  type UploadProgress,
  type UploadResult,
  uploadFile,
} from "./upload.js";
