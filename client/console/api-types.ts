/**
 * The shapes the console's local API answers with: shared by the local process (server.ts) and
 * the page (app/), which imports them as types only. Nothing here holds a private key, a file
 * key or a plaintext row the party did not ask to see.
 */
import type { Contract } from "../../protocol/contract/types.js";
import type { ContractReview } from "../../protocol/rules/review.js";

export interface ApiError {
  error: { code: string; message: string };
}

export interface SessionView {
  party: { id: string; name: string };
  parties: { id: string; name: string }[];
  contract: { id: string; digest: string; file?: string };
  /** The clean room host this console talks to (the untrusted relay). */
  host: string;
  version: string;
  /** The folder the Data page lists files from. */
  dataDir: string;
}

export interface CheckView {
  name: string;
  ok: boolean;
  detail?: string;
}

/**
 * - verified: the evidence verified under the party's policy and binds this contract;
 * - no-contract: genuine evidence from an enclave that holds no contract yet (submit it first);
 * - refused: the evidence failed a check (or the enclave holds another contract);
 * - unreachable: no evidence could be fetched.
 */
export type AttestationState = "verified" | "no-contract" | "refused" | "unreachable";

export interface AttestationView {
  state: AttestationState;
  /** When this console fetched and checked the evidence (ISO time). */
  at: string;
  platform?: string;
  simulated?: boolean;
  checks: CheckView[];
  errors: { code: string; message: string }[];
  /** The decoded report fields, as the verifier returns them. */
  claims: Record<string, unknown>;
  /** The image measurement the report carries (SEV-SNP), when decoded. */
  measurement?: string;
  /** The measurements the party's policy accepts (its release manifest or --measurement). */
  expectedMeasurements: string[];
  /** Nitro PCRs the policy pins. */
  expectedPcrs?: Record<string, string>;
  /** The contract digest the enclave's evidence binds (null: none yet). */
  enclaveContract?: string | null;
  contractDigest: string;
  /** A sentence for people: what the state means and what to do next. */
  summary: string;
}

export type ApprovalStatus = "signed" | "missing";

export interface ApprovalView {
  party: string;
  name: string;
  status: ApprovalStatus;
  /** Where the approval was found: this console's approvals folder, or the enclave's copy. */
  source?: "folder" | "enclave";
  /** The approval's signing time (seconds). */
  iat?: number;
}

export interface ContractView {
  contract: Contract;
  digest: string;
  review: ContractReview;
  approvals: ApprovalView[];
  /** Whether this party's approval is among them. */
  signedByMe: boolean;
  /** Whether the enclave's verified evidence binds this contract (it was submitted and accepted). */
  active: boolean;
  approvalsDir: string;
}

export interface FileEntry {
  name: string;
  size: number;
  modified: string;
}

export interface FilesView {
  dir: string;
  files: FileEntry[];
}

export type JobKind = "upload" | "grant" | "query";
export type JobState = "running" | "done" | "failed" | "cancelled";

export interface JobProgress {
  /** upload: "encrypt" then "upload"; grant: "grant" then "load"; query: "run". */
  phase: string;
  /** Bytes done so far, of `total`, when known (ciphertext sent, or received by the enclave). */
  done?: number;
  total?: number;
  /** Rows loaded so far (a load). */
  rows?: number;
}

export interface JobView<R = unknown> {
  id: string;
  kind: JobKind;
  label: string;
  state: JobState;
  started: string;
  ended?: string;
  progress?: JobProgress;
  result?: R;
  error?: { code: string; message: string };
}

export interface UploadJobResult {
  dataset: string;
  digest: string;
  size: number;
  resumedFrom: number;
  skipped: boolean;
}

export interface QualityReportView {
  /** The enclave's quality report, as decrypted for the owner (its own JSON fields). */
  report: Record<string, unknown>;
}

export interface GrantJobResult {
  dataset: string;
  digest: string;
  rows?: number;
  /** The dataset version the load made, how, and the dataset's rows after it. */
  version?: number;
  mode?: string;
  totalRows?: number;
  head: { seq: number; hash: string };
  quality?: Record<string, unknown>;
}

export interface QueryJobResult {
  resultId: string;
  queryId: string;
  /** Rows released to this party (from its encrypted receipt), when it is a recipient. */
  rows?: number;
  epsilon: number;
  recipient: boolean;
}

export interface DatasetVersion {
  seq: number;
  time: string;
  ciphertextDigest: string;
  /** Rows this load added. */
  rows: number;
  /** The version it made in its enclave instance, how ("new", "replace", "append"), the rows after it. */
  version?: number;
  mode?: string;
  totalRows?: number;
  /** Whether it was made by the enclave instance running now (a restarted enclave starts over). */
  current: boolean;
}

export interface DatasetView {
  id: string;
  owner: string;
  mine: boolean;
  format: string;
  columns: { name: string; type: string }[];
  identityColumn: string;
  identityFormat?: string;
  /** The last upload this console (or the CLI, from the same state folder) made for it. */
  lastUpload?: { digest: string; file: string; at: string };
  /** Loads the verified audit log records for it under this contract, oldest first. */
  versions: DatasetVersion[];
  /** The version the running enclave holds, which a replacing or appending grant builds on. */
  currentVersion?: number;
  /** The quality report of this console's last grant of it. */
  quality?: Record<string, unknown>;
}

export interface DataPageView {
  datasets: DatasetView[];
  /** Why versions could not be read from the audit log, when they could not. */
  auditProblem?: { code: string; message: string };
}

export interface QueryFormView {
  id: string;
  description?: string;
  sql: string;
  kind: string;
  k: number;
  parameters: { name: string; type: string }[];
  runners: string[];
  recipients: string[];
  mayRun: boolean;
  maxRuns?: number;
  runsUsed: number;
  runsLeft?: number;
  /** Epsilon one run charges each recipient (DP queries). */
  epsilon?: number;
}

export interface QueriesView {
  queries: QueryFormView[];
  /** This party's privacy budget over the contract (0 without DP queries). */
  budget: number;
  spent: number;
  budgetLeft: number;
  auditProblem?: { code: string; message: string };
}

export interface ResultSummary {
  id: string;
  queryId?: string;
  requester?: string;
  when?: string;
  epsilon?: number;
  verified: boolean;
  fetched: boolean;
}

export interface ResultsListView {
  results: ResultSummary[];
}

/** How a chart shows one numeric column: exact, or noised with a 95 % noise interval. */
export interface ColumnNoise {
  column: string;
  /** Half-width of the central 95 % interval of the noise added to each cell; null: no simple bound (avg). */
  halfWidth95: number | null;
  kind: string;
}

export interface ResultView {
  id: string;
  queryId: string;
  description?: string;
  requester: string;
  epsilon: number;
  head: { seq: number; hash: string };
  columns: { name: string; type: string | null }[];
  rows: unknown[][];
  /** "aggregation" (exact, k-suppressed) or "custom" (differentially private). */
  rule: string;
  k: number;
  /** For DP results: how "public" or "private" the groups are, and each noised column's noise. */
  dp?: {
    groups: string;
    epsilon: number;
    noise: ColumnNoise[];
    domain?: { column: string; values: unknown[] }[];
  };
  /** A sentence on what was held back, so that nothing is hidden silently. */
  suppression: string;
}

export interface AuditEntryView {
  seq: number;
  time: string;
  kind: string;
  summary: string;
  data: unknown;
}

export interface AuditView {
  ok: boolean;
  entries: AuditEntryView[];
  head?: { seq: number; hash: string };
  /** The highest head of any signed answer this party verified (what its requests present). */
  myHead?: { seq: number; hash: string };
  /** Heads of signed answers other than to its own requests (a result another party requested, a contract submission). */
  seenHeads: { seq: number; hash: string }[];
  /** When verification failed: what failed, and whether it is a rollback or reset. */
  problem?: { code: string; message: string; rollback: boolean };
}
