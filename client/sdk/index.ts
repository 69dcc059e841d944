/**
 * The partner SDK, browser-portable (WebCrypto, fetch, no node: imports). Node-only parts
 * (uploads, the state directory, key files) are in client/node/, which re-exports all of this.
 */
export type { EnclaveKeys } from "../../attestation/binding.js";
export type { EvidenceBundle, EvidencePolicy } from "../../attestation/evidence.js";
export type { VerificationResult } from "../../attestation/result.js";
export { isAuditHead as isHead } from "../../protocol/audit/entry.js";
export {
  ciphertextDigest,
  paramsDigest,
  type RunEvidence,
  runEntryBinds,
} from "../../protocol/audit/query-run.js";
export {
  type ContractReview,
  type DatasetReview,
  type ParseQuery,
  type QueryReview,
  type ReviewWarning,
  type ReviewWarningCode,
  renderReview,
  reviewContract,
} from "../../protocol/rules/review.js";
export { type AgeDecrypt, decryptAge, recoverFileKey } from "./age.js";
export {
  ATTEST_NONCE_BYTES,
  type AttestationCheck,
  type Attested,
  type AttestOptions,
  attest,
  checkAttestation,
  policyFingerprint,
  sameKeys,
} from "./attest.js";
export { auditEntries, auditVerify, fetchAuditLog, verifyAuditWithState } from "./audit.js";
export {
  type CheckCode,
  type CheckOptions,
  type CheckProblem,
  type CheckReport,
  checkCsv,
  valueProblem,
} from "./check.js";
export { CleanroomClient, type ClientOptions, type SealedRequest } from "./client.js";
export { CleanroomResetError, checkContinuity } from "./continuity.js";
export {
  approveContract,
  contractDigestHex,
  type SubmitResult,
  submitContract,
  validateContractJson,
} from "./contract.js";
export {
  SAMPLE_EMAIL_COLUMN,
  sampleRows,
  TEMPLATE_DATASETS,
  type TemplateParty,
  templateContract,
} from "./contract-template.js";
export { CsvParser, formatCsvRecord, parseCsv } from "./csv.js";
export {
  AttestationRefusedError,
  CsvFormatError,
  HostError,
  HostResponseError,
  IoError,
  NormalizeError,
  ResultDigestError,
} from "./errors.js";
export { type GrantOptions, type GrantResult, grant } from "./grant.js";
export {
  type HashCsvOptions,
  type HashFn,
  hashCsv,
  hashId,
  type IdKind,
  type NormalizeOptions,
  normalizeEmail,
  normalizeId,
  normalizePhone,
  sha256Hex,
} from "./hash-ids.js";
export { HostClient, type HostClientOptions } from "./http.js";
export {
  findParty,
  generatePartyKeys,
  KEY_FILE_KIND,
  loadPartyKeys,
  type PartyKeyFile,
  type PartyKeys,
  type PartyPublicKeys,
  publicKeysOf,
} from "./keys.js";
export {
  fetchResult,
  type QueryOptions,
  type QueryReceipt,
  type QueryResponseBody,
  type QueryResult,
  query,
  type ResultFormat,
} from "./query.js";
export {
  fetchedResults,
  type JsonResult,
  jsonResultToCsv,
  type ListedResult,
  listResults,
  markFetched,
  parseJsonResult,
  typedJsonResult,
  typedValue,
} from "./results.js";
export {
  type CachedAttestation,
  HostState,
  hostStateId,
  MemoryStateStore,
  type StateStore,
  type UploadRecord,
} from "./state.js";
export {
  type BudgetStatus,
  type CleanroomStatus,
  cleanroomStatus,
  type DatasetStatus,
  type QueryStatus,
} from "./status.js";
export { type DatasetUpload, lastUpload, rememberUpload } from "./uploads.js";
