/**
 * What the console does for the page, in the partner's own process and with the partner SDK: the
 * same verification, encryption and checks as the CLI. The page receives views (api-types.ts):
 * verdicts, reports, released rows; the party's keys, file keys and files stay here.
 */
import { readdir, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { VerificationResult } from "../../attestation/result.js";
import type { AuditEntry, AuditHead } from "../../protocol/audit/entry.js";
import { AuditError } from "../../protocol/audit/errors.js";
import { verifyAuditLog } from "../../protocol/audit/verify.js";
import { type Contract, type Dataset, partyBudget } from "../../protocol/contract/types.js";
import { QueryCheckError } from "../../protocol/rules/errors.js";
import type { ContractReview } from "../../protocol/rules/review.js";
import { resultBytes, resultJson } from "../cli/result-output.js";
import { checkFile } from "../node/check-file.js";
import { resultToParquet } from "../node/parquet.js";
import { reviewContractWithDuckDb } from "../node/review.js";
import { uploadFile } from "../node/upload.js";
import { type AttestationCheck, checkAttestation, policyFingerprint } from "../sdk/attest.js";
import { fetchAuditLog } from "../sdk/audit.js";
import type { CheckReport } from "../sdk/check.js";
import type { CleanroomClient } from "../sdk/client.js";
import { approveContract, submitContract } from "../sdk/contract.js";
import { AttestationRefusedError } from "../sdk/errors.js";
import { grant } from "../sdk/grant.js";
import { fetchResult, type QueryResult, query } from "../sdk/query.js";
import { listResults, markFetched } from "../sdk/results.js";
import { lastUpload, rememberUpload } from "../sdk/uploads.js";
import type {
  ApprovalView,
  AttestationState,
  AttestationView,
  AuditEntryView,
  AuditView,
  ContractView,
  DataPageView,
  DatasetVersion,
  FilesView,
  GrantJobResult,
  JobView,
  QueriesView,
  QueryJobResult,
  ResultsListView,
  ResultView,
  SessionView,
  UploadJobResult,
} from "./api-types.js";
import { ApprovalFolder, verifyOneApproval } from "./approvals.js";
import { ConsoleCheckError, ConsoleNotFoundError, ConsoleRequestError } from "./errors.js";
import { errorBody } from "./http-errors.js";
import { Jobs } from "./jobs.js";
import { dpColumnNoise } from "./noise.js";

export interface ConsoleSessionOptions {
  client: CleanroomClient;
  /** Folder the parties' approvals are kept in (approvals.ts). */
  approvalsDir: string;
  /** Folder the Data page offers files from. */
  dataDir: string;
  /** The contract file, shown to the user. */
  contractFile?: string;
  version: string;
}

/** Files listed at most on the Data page. */
const MAX_FILES = 1000;
const RESULT_ID = /^[0-9a-f]{32}$/;

export class ConsoleSession {
  readonly client: CleanroomClient;
  readonly jobs = new Jobs();
  readonly #o: ConsoleSessionOptions;
  readonly #approvals: ApprovalFolder;
  readonly #dataDir: string;
  #review: Promise<ContractReview> | undefined;
  #attestation: AttestationView | undefined;
  #lastResult: VerificationResult | undefined;
  readonly #results = new Map<string, QueryResult>();
  readonly #quality = new Map<string, Record<string, unknown>>();
  /** Files whose last check passed, as they were then. */
  readonly #passed = new Map<string, { dataset: string; size: number; mtimeMs: number }>();

  constructor(o: ConsoleSessionOptions) {
    this.#o = o;
    this.client = o.client;
    this.#dataDir = resolve(o.dataDir);
    this.#approvals = new ApprovalFolder(resolve(o.approvalsDir), o.client.contract, o.client.contractDigest);
  }

  get contract(): Contract {
    return this.client.contract;
  }

  session(): SessionView {
    const c = this.client;
    const me = c.contract.parties.find((p) => p.id === c.partyId)!;
    return {
      party: { id: me.id, name: me.name },
      parties: c.contract.parties.map((p) => ({ id: p.id, name: p.name })),
      contract: {
        id: c.contract.id,
        digest: c.contractDigest,
        ...(this.#o.contractFile ? { file: this.#o.contractFile } : {}),
      },
      host: c.host.baseUrl.replace(/\/api\/v1$/, ""),
      version: this.#o.version,
      dataDir: this.#dataDir,
    };
  }

  // ---- Attestation -------------------------------------------------------------------------

  /** The last attestation this console made, or a fresh one. */
  async attestation(): Promise<AttestationView> {
    return this.#attestation ?? this.attest();
  }

  /** Fresh evidence for a fresh nonce, verified under the party's policy and contract. */
  async attest(): Promise<AttestationView> {
    const c = this.client;
    const base = {
      at: new Date().toISOString(),
      expectedMeasurements: c.policy.measurements ?? [],
      ...(c.policy.pcrs
        ? { expectedPcrs: Object.fromEntries(Object.entries(c.policy.pcrs).map(([k, v]) => [`PCR${k}`, v])) }
        : {}),
      contractDigest: c.contractDigest,
    };
    let check: AttestationCheck;
    try {
      check = await checkAttestation(c.host, { policy: c.policy, contractDigest: c.contractDigest });
    } catch (e) {
      const error = errorBody(e).error;
      this.#attestation = {
        ...base,
        state: "unreachable",
        checks: [],
        errors: [error],
        claims: {},
        summary: `No evidence could be fetched from ${this.session().host}: ${error.message}. Nothing will be sent until it verifies.`,
      };
      return this.#attestation;
    }
    const held = check.bundle.contractDigest;
    let state: AttestationState = "refused";
    let result: VerificationResult = check.result;
    if (check.keys) {
      state = "verified";
      await c.state.saveAttestation({
        policy: await policyFingerprint(c.policy),
        contractDigest: c.contractDigest,
        keys: check.keys,
        result: check.result,
        verifiedAt: base.at,
      });
    } else if (held === null) {
      // An enclave with no contract yet binds none: is it genuine otherwise?
      const genuine = await checkAttestation(c.host, { policy: c.policy, contractDigest: null });
      if (genuine.keys) {
        state = "no-contract";
        result = genuine.result;
      }
    }
    const measurement = result.claims["measurement"];
    this.#lastResult = result;
    this.#attestation = {
      ...base,
      state,
      platform: result.platform,
      simulated: result.simulated,
      checks: result.checks.map((x) => ({
        name: x.name,
        ok: x.ok,
        ...(x.detail ? { detail: x.detail } : {}),
      })),
      errors: result.errors,
      claims: jsonSafe(result.claims) as Record<string, unknown>,
      ...(typeof measurement === "string" ? { measurement } : {}),
      enclaveContract: held,
      summary: attestationSummary(state, result, held, c.contractDigest),
    };
    return this.#attestation;
  }

  /**
   * Throws AttestationRefusedError unless this console's latest attestation verified (attesting
   * again when it did not): nothing is encrypted to or sent for an enclave the party has not
   * seen verify. The SDK checks the same before it sends (client.ts).
   */
  async #requireVerified(): Promise<void> {
    const a = this.#attestation?.state === "verified" ? this.#attestation : await this.attest();
    if (a.state !== "verified") throw new AttestationRefusedError(this.#lastResult);
  }

  // ---- Contract ----------------------------------------------------------------------------

  #reviewed(): Promise<ContractReview> {
    this.#review ??= reviewContractWithDuckDb(this.contract);
    return this.#review;
  }

  async contractView(): Promise<ContractView> {
    const review = await this.#reviewed();
    const found = await this.#approvals.list();
    const sources = new Map<string, "folder" | "enclave">([...found.keys()].map((p) => [p, "folder"]));
    const iat = new Map([...found.values()].map((v) => [v.party, v.payload.iat]));
    const active = this.#attestation?.state === "verified";
    if (active) {
      // The enclave holds this contract (its evidence binds the digest): its approvals are all there.
      const held = await this.client.host
        .getJson<{ approvals?: unknown }>("/contract")
        .catch(() => undefined);
      for (const jws of Array.isArray(held?.approvals) ? held.approvals : []) {
        if (typeof jws !== "string") continue;
        const v = await verifyOneApproval(this.contract, this.client.contractDigest, jws);
        if (v && !sources.has(v.party)) {
          sources.set(v.party, "enclave");
          iat.set(v.party, v.payload.iat);
        }
      }
    }
    const approvals: ApprovalView[] = this.contract.parties.map((p) => {
      const source = sources.get(p.id);
      return source
        ? { party: p.id, name: p.name, status: "signed", source, iat: iat.get(p.id)! }
        : { party: p.id, name: p.name, status: "missing" };
    });
    return {
      contract: this.contract,
      digest: this.client.contractDigest,
      review,
      approvals,
      signedByMe: sources.has(this.client.partyId),
      active,
      approvalsDir: this.#approvals.dir,
    };
  }

  /**
   * Signs the contract as this party, once the user confirmed the digest it read the review of.
   * A contract with a query the rules refuse is not signed: the enclave would never load it.
   */
  async sign(confirmedDigest: unknown): Promise<ContractView> {
    if (confirmedDigest !== this.client.contractDigest) {
      throw new ConsoleRequestError(
        `the confirmation names another contract digest than ${this.client.contractDigest}; reload the Contract page and review it again`,
      );
    }
    const review = await this.#reviewed();
    const refused = review.queries.find((q) => q.status === "refused");
    if (refused) throw new QueryCheckError(refused.id, refused.refusal ?? "refused");
    await this.#approvals.add(await approveContract(this.contract, this.client.keys));
    return this.contractView();
  }

  /** Another party's approval, pasted or dropped by the user: verified, then kept in the folder. */
  async addApproval(jws: unknown): Promise<ContractView> {
    if (typeof jws !== "string") throw new ConsoleRequestError("approval: a compact JWS string");
    await this.#approvals.add(jws);
    return this.contractView();
  }

  /** Submits the contract with every party's approval, then attests that the enclave holds it. */
  async submit(): Promise<ContractView> {
    const view = await this.contractView();
    if (view.active) return view;
    const missing = view.approvals.filter((a) => a.status !== "signed").map((a) => a.party);
    if (missing.length) {
      throw new ConsoleRequestError(
        `approval missing from ${missing.join(", ")}: each party signs on its own Contract page (or sends its approval file to ${this.#approvals.dir})`,
      );
    }
    const found = await this.#approvals.list();
    const approvals = this.contract.parties.map((p) => found.get(p.id)!.jws);
    await submitContract(this.client.host, this.contract, approvals, this.client.policy, this.client.state);
    await this.attest();
    return this.contractView();
  }

  // ---- Data --------------------------------------------------------------------------------

  async files(): Promise<FilesView> {
    const entries = await readdir(this.#dataDir, { withFileTypes: true });
    const files = [];
    for (const e of entries) {
      if (!e.isFile() || e.name.startsWith(".")) continue;
      const s = await stat(join(this.#dataDir, e.name)).catch(() => undefined);
      if (s) files.push({ name: e.name, size: s.size, modified: s.mtime.toISOString() });
      if (files.length >= MAX_FILES) break;
    }
    files.sort((a, b) => a.name.localeCompare(b.name));
    return { dir: this.#dataDir, files };
  }

  /** A file of the data folder, by its name as the Files list shows it (no other path is accepted). */
  async #dataFile(name: unknown): Promise<string> {
    if (typeof name !== "string" || !/^[^/\\\0]{1,255}$/.test(name) || name.startsWith(".")) {
      throw new ConsoleRequestError("file: the name of a file in the data folder, as the Data page lists it");
    }
    const path = join(this.#dataDir, name);
    const s = await stat(path).catch(() => undefined);
    if (!s?.isFile()) throw new ConsoleNotFoundError(`no file ${name} in ${this.#dataDir}`);
    return path;
  }

  #ownDataset(id: unknown): Dataset {
    const ds = this.contract.datasets.find((d) => d.id === id);
    if (!ds) {
      throw new ConsoleRequestError(
        `no dataset ${String(id)} in contract ${this.contract.id} (datasets: ${this.contract.datasets.map((d) => d.id).join(", ")})`,
      );
    }
    if (ds.owner !== this.client.partyId) {
      throw new ConsoleRequestError(
        `dataset ${ds.id} is owned by ${ds.owner}; party ${this.client.partyId} uploads and grants its own datasets only`,
      );
    }
    return ds;
  }

  /** The local check of a file against its dataset's declaration (nothing leaves this process). */
  async check(dataset: unknown, file: unknown): Promise<CheckReport & { file: string }> {
    const ds = this.#ownDataset(dataset);
    const path = await this.#dataFile(file);
    const before = await stat(path);
    const report = await checkFile(path, ds);
    if (report.ok) this.#passed.set(path, { dataset: ds.id, size: before.size, mtimeMs: before.mtimeMs });
    else this.#passed.delete(path);
    return { ...report, file: String(file) };
  }

  /** Whether `path` passed the check for `ds` and has not changed since (an upload need not read it twice). */
  async #stillPassed(path: string, ds: Dataset): Promise<boolean> {
    const p = this.#passed.get(path);
    if (!p || p.dataset !== ds.id) return false;
    const now = await stat(path);
    return now.size === p.size && now.mtimeMs === p.mtimeMs;
  }

  /**
   * Checks (unless the file passed a check here and has not changed since), encrypts to this
   * party's own recipient and uploads; cancellable until it completes.
   */
  startUpload(dataset: unknown, file: unknown): Promise<JobView> {
    return this.#startUpload(this.#ownDataset(dataset), file);
  }

  async #startUpload(ds: Dataset, file: unknown): Promise<JobView> {
    const path = await this.#dataFile(file);
    await this.#requireVerified();
    return this.jobs.start<UploadJobResult>(
      "upload",
      `upload ${String(file)} to ${ds.id}`,
      async (ctx) => {
        if (!(await this.#stillPassed(path, ds))) {
          ctx.report({ phase: "check" });
          const report = await checkFile(path, ds);
          if (!report.ok) {
            const n = Object.values(report.counts).reduce((a, b) => a + (b ?? 0), 0);
            throw new ConsoleCheckError(
              `${String(file)} does not match dataset ${ds.id}: ${n} problem${n === 1 ? "" : "s"}; press Check to see them by line and column`,
            );
          }
        }
        ctx.report({ phase: "encrypt" });
        const r = await uploadFile(this.client, path, {
          onProgress: (p) => ctx.report({ phase: p.phase, done: p.bytes, total: p.total }),
        });
        await rememberUpload(this.client.state, {
          dataset: ds.id,
          digest: r.digest,
          file: path,
          at: new Date().toISOString(),
        });
        return {
          dataset: ds.id,
          digest: r.digest,
          size: r.size,
          resumedFrom: r.resumedFrom,
          skipped: r.skipped,
        };
      },
      { cancellable: true },
    );
  }

  /**
   * Grants the enclave the file key of the dataset's last upload (or of `digest`). With
   * `previous`, the load replaces (default) or is appended to that version (docs/INGEST.md).
   */
  async startGrant(dataset: unknown, digest: unknown, previous?: unknown, mode?: unknown): Promise<JobView> {
    const ds = this.#ownDataset(dataset);
    if (
      previous !== undefined &&
      previous !== null &&
      !(Number.isSafeInteger(previous) && (previous as number) >= 1)
    ) {
      throw new ConsoleRequestError("previous: the version number the load builds on (1 or more)");
    }
    if (mode !== undefined && mode !== null && mode !== "replace" && mode !== "append") {
      throw new ConsoleRequestError('mode: "replace" or "append"');
    }
    if (mode && (previous === undefined || previous === null)) {
      throw new ConsoleRequestError(
        "mode: a replacing or appending load names the version it builds on (previous)",
      );
    }
    const lineage =
      typeof previous === "number"
        ? { previous, mode: (mode as "replace" | "append" | undefined) ?? "replace" }
        : {};
    let ciphertextDigest: string;
    if (digest === undefined || digest === null || digest === "") {
      const last = await lastUpload(this.client.state, ds.id);
      if (!last)
        throw new ConsoleRequestError(
          `dataset ${ds.id}: nothing uploaded from here yet; upload a file first`,
        );
      ciphertextDigest = last.digest;
    } else if (typeof digest === "string" && /^[0-9a-f]{64}$/.test(digest)) {
      ciphertextDigest = digest;
    } else {
      throw new ConsoleRequestError("digest: the 64 hex characters an upload printed");
    }
    await this.#requireVerified();
    return this.jobs.start<GrantJobResult>("grant", `grant ${ds.id}`, async (ctx) => {
      ctx.report({ phase: "load" });
      const r = await grant(this.client, {
        dataset: ds.id,
        ciphertextDigest,
        ...lineage,
        progressEveryMs: 500,
        onProgress: (p) => ctx.report({ phase: "load", done: p.bytes, total: p.total, rows: p.rows }),
      });
      const quality = r.quality ? parseQuality(r.quality) : undefined;
      if (quality) this.#quality.set(ds.id, quality);
      return {
        dataset: ds.id,
        digest: ciphertextDigest,
        head: r.head,
        ...(r.rows !== undefined ? { rows: r.rows } : {}),
        ...(r.version !== undefined ? { version: r.version } : {}),
        ...(r.mode !== undefined ? { mode: r.mode } : {}),
        ...(r.totalRows !== undefined ? { totalRows: r.totalRows } : {}),
        ...(quality ? { quality } : {}),
      };
    });
  }

  async dataView(): Promise<DataPageView> {
    const audit = await this.#auditLog();
    const versions = new Map<string, DatasetVersion[]>();
    const entries = audit.entries ?? [];
    // A restarted enclave starts its datasets over: loads before the last start are history.
    const lastStart = entries.reduce((at, e) => (e.kind === "enclave-started" ? e.seq : at), 0);
    for (const e of underContract(entries, this.client.contractDigest)) {
      if (e.kind !== "dataset-loaded") continue;
      const d = (e as AuditEntry<"dataset-loaded">).data;
      const list = versions.get(d.dataset) ?? [];
      list.push({
        seq: e.seq,
        time: e.time,
        ciphertextDigest: d.ciphertextDigest,
        rows: d.rows,
        ...(d.version !== undefined ? { version: d.version, mode: d.mode!, totalRows: d.totalRows! } : {}),
        current: e.seq > lastStart,
      });
      versions.set(d.dataset, list);
    }
    const datasets = [];
    for (const ds of this.contract.datasets) {
      const mine = ds.owner === this.client.partyId;
      const last = mine ? await lastUpload(this.client.state, ds.id) : undefined;
      const quality = this.#quality.get(ds.id);
      datasets.push({
        id: ds.id,
        owner: ds.owner,
        mine,
        format: ds.format,
        columns: ds.columns.map((c) => ({ name: c.name, type: c.type })),
        identityColumn: ds.identityColumn,
        ...(ds.identityFormat ? { identityFormat: ds.identityFormat } : {}),
        ...(last ? { lastUpload: { digest: last.digest, file: last.file, at: last.at } } : {}),
        versions: versions.get(ds.id) ?? [],
        ...currentVersion(versions.get(ds.id)),
        ...(quality ? { quality } : {}),
      });
    }
    return { datasets, ...(audit.problem ? { auditProblem: audit.problem } : {}) };
  }

  // ---- Queries and results -----------------------------------------------------------------

  async queriesView(): Promise<QueriesView> {
    const audit = await this.#auditLog();
    const runs = new Map<string, number>();
    let spentMicros = 0;
    for (const e of audit.entries ? underContract(audit.entries, this.client.contractDigest) : []) {
      if (e.kind !== "query-run") continue;
      const d = (e as AuditEntry<"query-run">).data;
      runs.set(d.query, (runs.get(d.query) ?? 0) + 1);
      const mine = d.debits?.find((x) => x.party === this.client.partyId);
      if (mine) spentMicros = mine.total;
    }
    const budget = partyBudget(this.contract);
    const spent = spentMicros / 1e6;
    return {
      queries: this.contract.queries.map((q) => {
        const used = runs.get(q.id) ?? 0;
        return {
          id: q.id,
          ...(q.description ? { description: q.description } : {}),
          sql: q.sql,
          kind: q.policy.kind,
          k: q.policy.minDistinctIdentities,
          parameters: q.parameters.map((p) => ({ name: p.name, type: p.type })),
          runners: q.runners,
          recipients: q.recipients,
          mayRun: q.runners.includes(this.client.partyId),
          runsUsed: used,
          ...(q.policy.maxRuns !== undefined
            ? { maxRuns: q.policy.maxRuns, runsLeft: Math.max(0, q.policy.maxRuns - used) }
            : {}),
          ...(q.policy.dp ? { epsilon: q.policy.dp.epsilon } : {}),
        };
      }),
      budget,
      spent,
      budgetLeft: Math.max(0, budget - spent),
      ...(audit.problem ? { auditProblem: audit.problem } : {}),
    };
  }

  /** Parameters typed and checked here, before anything is sent; then the run, as a job. */
  async startQuery(queryId: unknown, params: unknown): Promise<JobView> {
    if (typeof queryId !== "string") throw new ConsoleRequestError("queryId: an approved query's id");
    const raw = params ?? {};
    if (
      typeof raw !== "object" ||
      Array.isArray(raw) ||
      !Object.values(raw).every((v) => typeof v === "string")
    ) {
      throw new ConsoleRequestError("params: an object of parameter names to values (as text)");
    }
    this.client.runnableQuery(queryId);
    const typed = this.client.typedParams(queryId, raw as Record<string, string>);
    await this.#requireVerified();
    return this.jobs.start<QueryJobResult>("query", `run ${queryId}`, async (ctx) => {
      ctx.report({ phase: "run" });
      const r = await query(this.client, { queryId, params: typed, format: "json" });
      if (r.data) {
        this.#results.set(r.id, r);
        await markFetched(this.client.state, this.client.partyId, r.id);
      }
      return {
        resultId: r.id,
        queryId,
        epsilon: r.response.epsilon,
        recipient: r.data !== undefined,
        ...(r.receipt.rows !== undefined ? { rows: r.receipt.rows } : {}),
      };
    });
  }

  async resultsList(): Promise<ResultsListView> {
    await this.#requireVerified();
    const listed = await listResults(this.client, { limit: 500 });
    return {
      results: listed.map((r) => ({
        id: r.id,
        verified: r.verified,
        fetched: r.fetched || this.#results.has(r.id),
        ...(r.queryId ? { queryId: r.queryId } : {}),
        ...(r.requester ? { requester: r.requester } : {}),
        ...(r.epsilon !== undefined ? { epsilon: r.epsilon } : {}),
        ...(r.signedAt
          ? { when: new Date(r.signedAt * 1000).toISOString() }
          : r.stored
            ? { when: r.stored }
            : {}),
      })),
    };
  }

  async #result(id: unknown): Promise<QueryResult> {
    if (typeof id !== "string" || !RESULT_ID.test(id))
      throw new ConsoleRequestError("result id: 32 hex characters");
    let r = this.#results.get(id);
    if (!r) {
      await this.#requireVerified();
      r = await fetchResult(this.client, id);
      if (!r.data)
        throw new ConsoleNotFoundError(
          `result ${id}: party ${this.client.partyId} is not one of its recipients`,
        );
      await markFetched(this.client.state, this.client.partyId, id);
      this.#results.set(id, r);
    }
    return r;
  }

  async result(id: unknown): Promise<ResultView> {
    const r = await this.#result(id);
    const b = r.response;
    const q = this.contract.queries.find((x) => x.id === b.queryId);
    if (!q)
      throw new ConsoleNotFoundError(
        `result ${String(id)}: query ${b.queryId} is not in contract ${this.contract.id}`,
      );
    const doc = resultJson(r);
    const k = q.policy.minDistinctIdentities;
    const dp = q.policy.dp;
    return {
      id: r.id,
      queryId: q.id,
      ...(q.description ? { description: q.description } : {}),
      requester: b.requester,
      epsilon: b.epsilon,
      head: b.head,
      columns: doc.columns,
      rows: doc.rows,
      rule: q.policy.kind,
      k,
      ...(dp
        ? {
            dp: {
              groups: dp.groups,
              epsilon: dp.epsilon,
              noise: dpColumnNoise(dp),
              ...(dp.domain
                ? { domain: dp.domain.map((d) => ({ column: d.column, values: d.values })) }
                : {}),
            },
          }
        : {}),
      suppression: suppressionNote(q.policy.kind, k, dp?.groups, q.policy.differencingGuard !== false),
    };
  }

  async resultCsv(id: unknown): Promise<Uint8Array> {
    return resultBytes(await this.#result(id), "csv");
  }

  async resultParquet(id: unknown): Promise<Uint8Array> {
    return resultToParquet(resultJson(await this.#result(id)));
  }

  // ---- Audit -------------------------------------------------------------------------------

  /** The host's log verified under this party's policy; a problem instead of throwing. */
  async #auditLog(): Promise<{
    entries?: AuditEntry[];
    head?: AuditHead;
    problem?: { code: string; message: string; rollback: boolean };
  }> {
    let entries: string[];
    try {
      entries = await fetchAuditLog(this.client.host);
    } catch (e) {
      return { problem: { ...errorBody(e).error, rollback: false } };
    }
    let log: Awaited<ReturnType<typeof verifyAuditLog>>;
    try {
      log = await verifyAuditLog(entries, this.client.policy);
    } catch (e) {
      return { problem: { ...errorBody(e).error, rollback: false } };
    }
    // Every head this party holds must be a point of the log, or the log was rolled back.
    const state = this.client.state;
    const mine = await state.highestHead();
    for (const seen of [...(mine ? [mine] : []), ...(await state.seenHeads())]) {
      const behind = seen.seq > log.head.seq;
      if (behind || log.hashes[seen.seq] !== seen.hash) {
        const e = new AuditError(
          seen.seq,
          behind ? "log is behind a head seen before" : "log differs from a head seen before",
        );
        return {
          entries: log.entries,
          head: log.head,
          problem: {
            code: e.code,
            message: behind
              ? `ROLLBACK: this party saw entry ${seen.seq} in a signed answer, but the host's log ends at entry ${log.head.seq}`
              : `ROLLBACK: the host's log holds another entry ${seen.seq} than the one this party saw in a signed answer`,
            rollback: true,
          },
        };
      }
    }
    // The log's own head is not remembered as seen: a host can show any valid prefix.
    return { entries: log.entries, head: log.head };
  }

  async auditView(): Promise<AuditView> {
    const a = await this.#auditLog();
    const mine = await this.client.state.highestHead();
    return {
      ok: a.problem === undefined,
      entries: (a.entries ?? []).map(entryView),
      ...(a.head ? { head: a.head } : {}),
      ...(mine ? { myHead: mine } : {}),
      seenHeads: await this.client.state.seenHeads(),
      ...(a.problem ? { problem: a.problem } : {}),
    };
  }

  async close(): Promise<void> {
    await this.jobs.cancelAll();
  }
}

/** The version the running enclave holds of a dataset: its latest load since the last start. */
function currentVersion(list: DatasetVersion[] | undefined): { currentVersion?: number } {
  const last = list?.filter((v) => v.current).at(-1);
  return last?.version !== undefined ? { currentVersion: last.version } : {};
}

/** The entries recorded while `digest` was the enclave's contract. */
function underContract(entries: AuditEntry[], digest: string): AuditEntry[] {
  let active = false;
  return entries.filter((e) => {
    if (e.kind === "contract-accepted")
      active = (e as AuditEntry<"contract-accepted">).data.contract === digest;
    return active && e.kind !== "contract-accepted";
  });
}

function entryView(e: AuditEntry): AuditEntryView {
  let summary: string;
  switch (e.kind) {
    case "enclave-started":
      summary = `an enclave instance started (signing key ${(e as AuditEntry<"enclave-started">).data.signingKey.slice(0, 12)}…, platform ${(e as AuditEntry<"enclave-started">).data.evidence.platform}), its evidence verified`;
      break;
    case "contract-accepted":
      summary = `contract ${(e as AuditEntry<"contract-accepted">).data.contract.slice(0, 16)}… accepted`;
      break;
    case "grant": {
      const d = (e as AuditEntry<"grant">).data;
      summary = `${d.party} granted ${d.dataset} (ciphertext ${d.ciphertextDigest.slice(0, 12)}…)`;
      break;
    }
    case "dataset-loaded": {
      const d = (e as AuditEntry<"dataset-loaded">).data;
      summary = `${d.dataset} loaded: ${d.rows} rows`;
      break;
    }
    case "query-run": {
      const d = (e as AuditEntry<"query-run">).data;
      summary = `${d.query} run by ${d.requester}; results for ${Object.keys(d.resultDigests).join(", ") || "nobody"}${d.epsilon ? `; epsilon ${d.epsilon} charged to each` : ""}`;
      break;
    }
    default:
      summary = e.kind;
  }
  return { seq: e.seq, time: e.time, kind: e.kind, summary, data: e.data };
}

function attestationSummary(
  state: AttestationState,
  result: VerificationResult,
  held: string | null | undefined,
  ours: string,
): string {
  switch (state) {
    case "verified":
      return `The enclave is genuine, runs an accepted image and holds this contract (${ours.slice(0, 16)}…). Its keys may be used.`;
    case "no-contract":
      return "The enclave is genuine and runs an accepted image, but holds no contract yet: sign and submit the contract, then attest again. Nothing is sent to it before.";
    default: {
      if (
        held &&
        held !== ours &&
        result.checks.filter((c) => !c.ok).every((c) => /binding|contract/i.test(c.name))
      ) {
        return `The enclave holds another contract (${held.slice(0, 16)}…), not this one (${ours.slice(0, 16)}…). Nothing will be sent to it.`;
      }
      const failed = result.checks
        .filter((c) => !c.ok)
        .map((c) => `${c.name}${c.detail ? ` (${c.detail})` : ""}`);
      return `Attestation REFUSED: ${failed.join("; ") || result.errors.map((e) => e.code).join(", ") || "the evidence did not verify"}. Nothing will be sent to this enclave.`;
    }
  }
}

function suppressionNote(kind: string, k: number, groups: string | undefined, guard: boolean): string {
  if (kind === "aggregation") {
    return (
      `Exact counts. A group with fewer than ${k} distinct people in any dataset the query reads is not released` +
      `${guard ? `, nor one whose people differ from an earlier release's by fewer than ${k}` : ""}. ` +
      "The enclave does not say how many groups it held back: a group missing here is small, or empty."
    );
  }
  if (groups === "public") {
    return "Every group the contract declares is shown, whatever the data holds; every number carries differential-privacy noise (bars show its 95 % interval).";
  }
  if (groups === "single")
    return "One row; every number carries differential-privacy noise (bars show its 95 % interval).";
  return `A group is released only when its noisy count of people reaches ${k}; groups below are not released and not counted. Every number carries differential-privacy noise (bars show its 95 % interval).`;
}

function parseQuality(bytes: Uint8Array): Record<string, unknown> | undefined {
  try {
    const v = JSON.parse(new TextDecoder().decode(bytes)) as unknown;
    return typeof v === "object" && v !== null && !Array.isArray(v)
      ? (v as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** Claims are plain JSON, except bigints some decoders return: text for the page. */
function jsonSafe(v: unknown): unknown {
  return JSON.parse(JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? x.toString() : x)));
}
