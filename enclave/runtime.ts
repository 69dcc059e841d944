/**
 * The enclave: one instance, one key set, at most one contract. Every operation of the enclave
 * API (docs/PROTOCOL.md §7) is a method here; server.ts only moves bytes and maps errors.
 */
import type { Readable } from "node:stream";
import { base64url } from "jose";
import { bindingData } from "../attestation/binding.js";
import { fromHex } from "../attestation/bytes.js";
import { UsageError } from "../attestation/errors.js";
import { bundleEvidence, type EvidenceBundle } from "../attestation/evidence.js";
import type { Platform } from "../attestation/result.js";
import type { AuditEntry, AuditHead } from "../protocol/audit/entry.js";
import type { Contract } from "../protocol/contract/types.js";
import { EnvelopeError } from "../protocol/jose/errors.js";
import { DATASET_ID, HEX64, isPlainObject, keysProblem } from "../protocol/jose/lib/shape.js";
import type {
  GrantBody,
  IngestResponseBody,
  QueryBody,
  QueryResponseBody,
  RequestPayload,
} from "../protocol/jose/messages.js";
import { ReplayGuard } from "../protocol/jose/replay-guard.js";
import { verifyRequest } from "../protocol/jose/verify-request.js";
import { AuditChain } from "./audit-chain.js";
import { ciphertextPieces } from "./ciphertext-stream.js";
import { ActiveContract } from "./contract-state.js";
import { AuditRollbackError, ContractStateError, NoContractError } from "./errors.js";
import { Grants } from "./grants.js";
import { SealShares, sealedDigest } from "./guard-seal.js";
import { EnclaveKeyring } from "./keys.js";
import { loadGranted, sealQualityReport } from "./load.js";
import { type LoadProgress, Loads } from "./loads.js";
import type { EvidenceProvider } from "./platform/provider.js";
import { QueryRunner } from "./queries.js";
import { identifyRequester } from "./requester.js";
import { RestoreGate } from "./restore-gate.js";
import { selfPolicy } from "./self-policy.js";
import { type EngineOptions, openEngine, type SqlEngine } from "./sql/engine.js";

const NONCE_HEX = /^(?:[0-9a-f]{2}){16,64}$/;

/** A grant or query request is small; anything near this is not one. */
const MAX_JWE_CHARS = 512 * 1024;

export interface StartOptions {
  provider: EvidenceProvider;
  engineOptions?: EngineOptions;
  clock?: () => Date;
  /**
   * A query's answer leaves no earlier than this many milliseconds after its run started,
   * rounded up to a multiple of it (enclave/queries.ts). The enclave process defaults to
   * DEFAULT_RELEASE_QUANTUM_MS (enclave/main.ts); in-process embeddings (tests, benches) to 0.
   */
  releaseQuantumMs?: number;
}

/** The production release quantum (`--release-quantum-ms`). */
export const DEFAULT_RELEASE_QUANTUM_MS = 1000;

export interface Health {
  ok: true;
  platform: Platform;
  simulated: boolean;
  contractDigest: string | null;
  head: AuditHead;
}

/** What POST /v1/requests returns: the signed response, and results for a query. */
export interface RequestReply {
  response: string;
  results?: Record<string, string>;
  /** base64 of the guard history this run sealed; its digest is in the run's audit entry. */
  sealedHistory?: string;
  /** A grant that repeats a load (loads.ts): its ingest is answered without reading a byte. */
  repeat?: true;
}

interface Serving {
  active: ActiveContract;
  /** Which parties vouched for a restored log (restore-gate.ts). */
  gate: RestoreGate;
  shares: SealShares;
  guard: ReplayGuard;
  grants: Grants;
  queries: QueryRunner;
  /** Loads in progress, versions and the last load's answer per dataset (loads.ts). */
  loads: Loads;
}

/**
 * The sealed guard histories a restored chain names, by the seq of the query-run entry whose
 * `guard` digest each matches; blobs the chain does not name are dropped (the host's labels are
 * not trusted: each blob is hashed here).
 */
function sealedHistoriesOf(
  entries: readonly AuditEntry[],
  blobs: readonly string[],
): Map<number, Uint8Array> {
  const byDigest = new Map<string, Uint8Array>();
  for (const b64 of blobs) {
    const blob = new Uint8Array(Buffer.from(b64, "base64"));
    byDigest.set(sealedDigest(blob), blob);
  }
  const out = new Map<number, Uint8Array>();
  for (const e of entries) {
    const digest = e.kind === "query-run" ? (e as AuditEntry<"query-run">).data.guard : undefined;
    const blob = digest === undefined ? undefined : byDigest.get(digest);
    if (blob) out.set(e.seq, blob);
  }
  return out;
}

export class Enclave {
  #serving: Serving | undefined;
  /** Set while a contract is being admitted or the log restored: the two exclude each other. */
  #busy = false;
  /** Sealed guard histories handed over with a restored chain, by query-run entry seq. */
  #sealedHistories = new Map<number, Uint8Array>();

  private constructor(
    readonly keys: EnclaveKeyring,
    private readonly provider: EvidenceProvider,
    private readonly engine: SqlEngine,
    private readonly chain: AuditChain,
    private readonly clock: () => Date,
    private readonly releaseQuantumMs: number,
  ) {}

  static async start(options: StartOptions): Promise<Enclave> {
    const clock = options.clock ?? (() => new Date());
    const quantum = options.releaseQuantumMs ?? 0;
    if (!Number.isSafeInteger(quantum) || quantum < 0) {
      throw new UsageError("release quantum must be a non-negative integer of milliseconds");
    }
    const keys = await EnclaveKeyring.generate();
    const engine = await openEngine(options.engineOptions);
    try {
      const chain = await AuditChain.open(
        {
          signingKey: keys.signingKey,
          keys: keys.publicKeys,
          attest: (reportData, nonce) => options.provider.getEvidence(reportData, nonce),
        },
        clock,
      );
      return new Enclave(keys, options.provider, engine, chain, clock, quantum);
    } catch (e) {
      engine.close();
      throw e;
    }
  }

  close(): void {
    this.engine.close();
  }

  health(): Health {
    return {
      ok: true,
      platform: this.provider.platform,
      simulated: this.provider.simulated,
      contractDigest: this.#serving?.active.digest ?? null,
      head: this.chain.head,
    };
  }

  /** Evidence binding this instance's keys, its contract (if any) and the verifier's nonce. */
  async evidence(nonceHex: unknown): Promise<EvidenceBundle> {
    if (typeof nonceHex !== "string" || !NONCE_HEX.test(nonceHex)) {
      throw new UsageError("nonce must be 16 to 64 bytes of lowercase hex");
    }
    const nonce = fromHex(nonceHex);
    const contractDigest = this.#serving?.active.digest ?? null;
    const keys = this.keys.publicKeys;
    const reportData = await bindingData({ keys, contractDigest, nonce });
    const evidence = await this.provider.getEvidence(reportData, nonce);
    return bundleEvidence(evidence, keys, contractDigest, nonce);
  }

  getContract(): { contract: Contract; approvals: string[]; digest: string } {
    const { active } = this.#require();
    return { contract: active.contract, approvals: [...active.approvals], digest: active.digest };
  }

  /** Admits the contract every party approved; refused as a whole, and only once per instance. */
  async acceptContract(input: unknown): Promise<{ response: string }> {
    this.#exclusive();
    try {
      const active = await ActiveContract.admit(input);
      const head = await this.chain.append("contract-accepted", { contract: active.digest });
      const shares = new SealShares();
      this.#serving = {
        active,
        gate: RestoreGate.for(
          this.chain,
          active.digest,
          active.contract.parties.map((p) => p.id),
        ),
        shares,
        guard: new ReplayGuard(),
        grants: new Grants(),
        queries: new QueryRunner(this.engine, active, active.runsIn(this.chain.entries), {
          releaseQuantumMs: this.releaseQuantumMs,
          shares,
          sealedHistories: this.#sealedHistories,
        }),
        loads: new Loads(this.engine),
      };
      return { response: await this.#sign({ digest: active.digest, head }) };
    } finally {
      this.#busy = false;
    }
  }

  /** A signed request inside a JWE to this enclave: a grant or a query. */
  async handleRequest(jwe: unknown): Promise<RequestReply> {
    const serving = this.#require();
    if (typeof jwe !== "string" || jwe.length > MAX_JWE_CHARS) throw new EnvelopeError("malformed envelope");
    const { jws } = await this.keys.openEnvelope(jwe);
    if (jws === undefined) throw new EnvelopeError("envelope does not carry a signed request");
    const request = await verifyRequest(jws, serving.active.contract, serving.guard, {
      contractDigest: serving.active.digest,
      audience: this.keys.keysDigest,
    });
    identifyRequester({
      party: request.party,
      recipient: serving.active.recipient(request.party),
      inReplyTo: request.nonce,
    });
    return request.kind === "grant"
      ? this.#grant(serving, request as RequestPayload<"grant">)
      : this.#query(serving, request as RequestPayload<"query">);
  }

  /**
   * Streams a granted ciphertext into its dataset's table (see load.ts for the atomicity). The
   * signed answer replies to the grant's nonce and carries the SHA-256 of the quality report's
   * ciphertext, so neither can be swapped. A failure's detail is sealed to the owner (requester.ts).
   * The grant is used up either way: another attempt needs a new grant. `ownsInput`: the
   * ciphertext's chunks are the load's alone (a request body's, a file stream's), nothing else
   * holds or reuses them, so they may move to the decrypt workers (load.ts).
   */
  async ingest(
    datasetId: unknown,
    digestHex: unknown,
    ciphertext: Readable | AsyncIterable<Uint8Array>,
    { ownsInput = false }: { ownsInput?: boolean } = {},
  ): Promise<{ response: string; quality: string }> {
    const serving = this.#require();
    if (typeof datasetId !== "string" || !DATASET_ID.test(datasetId)) throw new UsageError("dataset id");
    if (typeof digestHex !== "string" || !HEX64.test(digestHex)) {
      throw new UsageError("digest must be 64 lowercase hex");
    }
    const dataset = serving.active.dataset(datasetId);
    const grant = serving.grants.find(dataset.id, digestHex);
    const recipient = serving.active.recipient(dataset.owner);
    identifyRequester({ party: dataset.owner, recipient, inReplyTo: grant.nonce, dataset: dataset.id });
    try {
      // A repeated grant (same file, same version named) gets the first load's answer (loads.ts).
      const { answer, repeated } = await serving.loads.run(grant, async (into, progress) => {
        let head: AuditHead | undefined;
        const report = await loadGranted({
          engine: this.engine,
          keys: this.keys,
          dataset,
          grant,
          ownsInput,
          ciphertext: ciphertextPieces(ciphertext, (n) => {
            progress.bytes += n;
          }),
          options: {
            into,
            onRows: (n) => {
              progress.rows += n;
            },
            // The lineage entry is written before any query can read the new version.
            onCommit: async (v) => {
              head = await this.chain.append("dataset-loaded", {
                dataset: dataset.id,
                ciphertextDigest: digestHex,
                rows: v.rows,
                version: v.version,
                mode: v.mode,
                totalRows: v.totalRows,
              });
            },
          },
        });
        const version = this.engine.versions.get(dataset.id)!.at(-1)!;
        const quality = await sealQualityReport(report, recipient);
        return {
          ...version,
          dataset: dataset.id,
          ciphertextDigest: digestHex,
          qualityDigest: quality.digest,
          quality: Buffer.from(quality.ciphertext).toString("base64"),
          head: head!,
        };
      });
      const body: IngestResponseBody = {
        dataset: dataset.id,
        ciphertextDigest: digestHex,
        rows: answer.rows,
        version: answer.version,
        mode: answer.mode,
        totalRows: answer.totalRows,
        qualityDigest: answer.qualityDigest,
        // A repeat answers with the chain as it is now, which holds the load's entry.
        head: repeated ? this.chain.head : answer.head,
      };
      return { response: await this.#sign(body, grant.nonce), quality: answer.quality };
    } finally {
      serving.grants.consume(grant);
    }
  }

  /** The loads in progress: ciphertext bytes received and rows loaded so far (no data). */
  loads(): { loads: LoadProgress[] } {
    return { loads: this.#serving?.loads.progress() ?? [] };
  }

  /** Audit entries from `from` (1-based, default 1) and the head. */
  audit(from: unknown = 1): { entries: string[]; head: AuditHead } {
    if (!Number.isSafeInteger(from) || (from as number) < 1)
      throw new UsageError("from must be a positive integer");
    return { entries: this.chain.since(from as number), head: this.chain.head };
  }

  /**
   * Continues the chain a previous instance left; only before a contract is accepted. Every
   * entry is verified first (AuditChain.restore) under this instance's own platform, image and
   * roots (self-policy.ts); a refused log (ERR_AUDIT_RESTORE, naming the entry) changes nothing.
   */
  async restoreAudit(input: unknown): Promise<{ head: AuditHead }> {
    this.#exclusive();
    try {
      if (
        !isPlainObject(input) ||
        keysProblem(input, ["entries"], ["guard"]) ||
        !Array.isArray(input.entries) ||
        !input.entries.every((e) => typeof e === "string") ||
        (input.guard !== undefined &&
          (!isPlainObject(input.guard) || !Object.values(input.guard).every((v) => typeof v === "string")))
      ) {
        throw new UsageError("restore: body must be {entries: [jws...], guard?: {digest: base64}}");
      }
      const policy = selfPolicy(this.chain.ownEvidence, this.provider);
      const head = await this.chain.restore(input.entries as string[], policy, this.provider.platform);
      this.#sealedHistories = sealedHistoriesOf(
        this.chain.entries,
        Object.values((input.guard ?? {}) as Record<string, string>),
      );
      return { head };
    } finally {
      this.#busy = false;
    }
  }

  async #grant(serving: Serving, request: RequestPayload<"grant">): Promise<RequestReply> {
    const body: GrantBody = request.body;
    this.#presentHead(serving, request.party, body.auditHead);
    const dataset = serving.active.dataset(body.dataset);
    const repeat = serving.loads.admit(dataset.id, {
      ciphertextDigest: body.ciphertextDigest,
      previous: body.previous,
      mode: body.mode ?? "replace",
    });
    serving.shares.record(request.party, base64url.decode(body.sealShare));
    const grant = serving.grants.record(serving.active, request.party, body, request.nonce);
    const head = await this.chain.append("grant", {
      dataset: grant.dataset,
      party: grant.party,
      ciphertextDigest: grant.ciphertextDigest,
    });
    const reply = { dataset: grant.dataset, ciphertextDigest: grant.ciphertextDigest, head };
    // A repeat tells the host its ingest needs no bytes: the answer is the first load's.
    return { response: await this.#sign(reply, request.nonce), ...(repeat ? { repeat: true } : {}) };
  }

  async #query(serving: Serving, request: RequestPayload<"query">): Promise<RequestReply> {
    const body: QueryBody = request.body;
    this.#presentHead(serving, request.party, body.auditHead);
    const query = serving.active.query(body.queryId);
    if (query.runners.includes(request.party)) serving.gate.check(request.party, query);
    // Held for the whole run, so no version switch lands between the versions named and the read.
    const {
      versions,
      outcome,
      committed: head,
    } = await this.engine.tables.read(async () => {
      const versions = this.#versions();
      const run = await serving.queries.run(request.party, body, (o) =>
        this.chain.append("query-run", {
          query: o.queryId,
          requester: request.party,
          paramsDigest: o.paramsDigest,
          resultDigests: o.resultDigests,
          epsilon: o.epsilon,
          ...(o.debits ? { debits: o.debits } : {}),
          ...(o.sealedHistory ? { guard: sealedDigest(o.sealedHistory) } : {}),
          versions,
        }),
      );
      return { versions, ...run };
    });
    // The budget debits are on the audit chain; the response carries its head. Results are relayed
    // (and stored) by the host next to the response; receipts are small and travel inside it, so
    // the enclave's signature covers them and every recipient can fetch them with the response.
    const reply: QueryResponseBody = {
      queryId: outcome.queryId,
      requester: request.party,
      format: outcome.format,
      paramsDigest: outcome.paramsDigest,
      resultDigests: outcome.resultDigests,
      receipts: outcome.receipts,
      epsilon: outcome.epsilon,
      versions,
      head,
    };
    return {
      response: await this.#sign(reply, request.nonce),
      results: outcome.results,
      ...(outcome.sealedHistory
        ? { sealedHistory: Buffer.from(outcome.sealedHistory).toString("base64") }
        : {}),
    };
  }

  /**
   * The current version of every loaded dataset: what a query run reads (it reads only loaded
   * datasets, so this names every one it read).
   */
  #versions(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [id, lineage] of this.engine.versions) out[id] = lineage.at(-1)!.version;
    return out;
  }

  /**
   * A head a party saw, from its signed grant or query. One this chain does not contain means the
   * log given to this instance was rolled back or forked: refused. One of the restored part is
   * recorded as that party vouching for the restore.
   */
  #presentHead(serving: Serving, party: string, head: AuditHead | undefined): void {
    if (head === undefined) return;
    if (!this.chain.contains(head)) {
      throw new AuditRollbackError("audit log is behind or differs from the head the requester saw");
    }
    serving.gate.present(party, head);
  }

  #sign(body: unknown, inReplyTo?: string): Promise<string> {
    const iat = Math.floor(this.clock().getTime() / 1000);
    return this.keys.signResponse(body, { iat, ...(inReplyTo !== undefined ? { inReplyTo } : {}) });
  }

  #require(): Serving {
    if (!this.#serving) throw new NoContractError("no contract accepted");
    return this.#serving;
  }

  #exclusive(): void {
    if (this.#serving) throw new ContractStateError("a contract is already accepted");
    if (this.#busy) throw new ContractStateError("another contract operation is in progress");
    this.#busy = true;
  }
}
