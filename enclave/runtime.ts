/**
 * The enclave: one instance, one key set, at most one contract. Every operation of the enclave
 * API (docs/PROTOCOL.md §7) is a method here; server.ts only moves bytes and maps errors.
 */
import type { Readable } from "node:stream";
import { bindingData } from "../attestation/binding.js";
import { fromHex } from "../attestation/bytes.js";
import { UsageError } from "../attestation/errors.js";
import { bundleEvidence, type EvidenceBundle } from "../attestation/evidence.js";
import type { Platform } from "../attestation/result.js";
import { encryptBytes } from "../protocol/age/stream-node.js";
import type { AuditHead } from "../protocol/audit/entry.js";
import type { Contract } from "../protocol/contract/types.js";
import { EnvelopeError } from "../protocol/jose/errors.js";
import { DATASET_ID, HEX64, isPlainObject, keysProblem } from "../protocol/jose/lib/shape.js";
import type { GrantBody, QueryBody, QueryResponseBody, RequestPayload } from "../protocol/jose/messages.js";
import { ReplayGuard } from "../protocol/jose/replay-guard.js";
import { verifyRequest } from "../protocol/jose/verify-request.js";
import { AuditChain } from "./audit-chain.js";
import { ActiveContract } from "./contract-state.js";
import { AlreadyLoadedError, AuditRollbackError, ContractStateError, NoContractError } from "./errors.js";
import { Grants } from "./grants.js";
import { EnclaveKeyring } from "./keys.js";
import { loadGranted } from "./load.js";
import type { EvidenceProvider } from "./platform/provider.js";
import { QueryRunner } from "./queries.js";
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
}

interface Serving {
  active: ActiveContract;
  guard: ReplayGuard;
  grants: Grants;
  queries: QueryRunner;
  loading: Set<string>;
}

export class Enclave {
  #serving: Serving | undefined;
  /** Set while a contract is being admitted or the log restored: the two exclude each other. */
  #busy = false;

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
      const chain = await AuditChain.open(keys, clock);
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
      this.#serving = {
        active,
        guard: new ReplayGuard(),
        grants: new Grants(),
        queries: new QueryRunner(this.engine, active, active.runsIn(this.chain.entries), {
          releaseQuantumMs: this.releaseQuantumMs,
        }),
        loading: new Set(),
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
    });
    return request.kind === "grant"
      ? this.#grant(serving, request as RequestPayload<"grant">)
      : this.#query(serving, request as RequestPayload<"query">);
  }

  /** Streams a granted ciphertext into its dataset's table; see load.ts for the atomicity. */
  async ingest(
    datasetId: unknown,
    digestHex: unknown,
    ciphertext: Readable | AsyncIterable<Uint8Array>,
  ): Promise<{ response: string; quality: string }> {
    const serving = this.#require();
    if (typeof datasetId !== "string" || !DATASET_ID.test(datasetId)) throw new UsageError("dataset id");
    if (typeof digestHex !== "string" || !HEX64.test(digestHex)) {
      throw new UsageError("digest must be 64 lowercase hex");
    }
    const dataset = serving.active.dataset(datasetId);
    if (this.engine.datasets.has(dataset.id) || serving.loading.has(dataset.id)) {
      throw new AlreadyLoadedError("dataset already loaded or loading");
    }
    const grant = serving.grants.find(dataset.id, digestHex);
    serving.loading.add(dataset.id);
    try {
      const report = await loadGranted({ engine: this.engine, keys: this.keys, dataset, grant, ciphertext });
      serving.grants.consume(grant);
      const head = await this.chain.append("dataset-loaded", {
        dataset: dataset.id,
        ciphertextDigest: digestHex,
        rows: report.rowsAccepted,
      });
      const quality = await encryptBytes(new TextEncoder().encode(JSON.stringify(report)), [
        serving.active.recipient(dataset.owner),
      ]);
      const body = { dataset: dataset.id, ciphertextDigest: digestHex, rows: report.rowsAccepted, head };
      return {
        response: await this.#sign(body, grant.nonce),
        quality: Buffer.from(quality).toString("base64"),
      };
    } finally {
      serving.loading.delete(dataset.id);
    }
  }

  /** Audit entries from `from` (1-based, default 1) and the head. */
  audit(from: unknown = 1): { entries: string[]; head: AuditHead } {
    if (!Number.isSafeInteger(from) || (from as number) < 1)
      throw new UsageError("from must be a positive integer");
    return { entries: this.chain.since(from as number), head: this.chain.head };
  }

  /** Continues the chain a previous instance left; only before a contract is accepted. */
  async restoreAudit(input: unknown): Promise<{ head: AuditHead }> {
    this.#exclusive();
    try {
      if (
        !isPlainObject(input) ||
        keysProblem(input, ["entries"]) ||
        !Array.isArray(input.entries) ||
        !input.entries.every((e) => typeof e === "string")
      ) {
        throw new UsageError("restore: body must be {entries: [jws...]}");
      }
      return { head: await this.chain.restore(input.entries as string[]) };
    } finally {
      this.#busy = false;
    }
  }

  async #grant(serving: Serving, request: RequestPayload<"grant">): Promise<RequestReply> {
    const body: GrantBody = request.body;
    const dataset = serving.active.dataset(body.dataset);
    if (this.engine.datasets.has(dataset.id)) throw new AlreadyLoadedError("dataset already loaded");
    const grant = serving.grants.record(serving.active, request.party, body, request.nonce);
    const head = await this.chain.append("grant", {
      dataset: grant.dataset,
      party: grant.party,
      ciphertextDigest: grant.ciphertextDigest,
    });
    const reply = { dataset: grant.dataset, ciphertextDigest: grant.ciphertextDigest, head };
    return { response: await this.#sign(reply, request.nonce) };
  }

  async #query(serving: Serving, request: RequestPayload<"query">): Promise<RequestReply> {
    const body: QueryBody = request.body;
    // A party that saw a head this chain does not contain was shown a log this one rolled back.
    if (body.auditHead && !this.chain.contains(body.auditHead)) {
      throw new AuditRollbackError("audit log is behind or differs from the head the requester saw");
    }
    const { outcome, committed: head } = await serving.queries.run(request.party, body, (o) =>
      this.chain.append("query-run", {
        query: o.queryId,
        requester: request.party,
        paramsDigest: o.paramsDigest,
        resultDigests: o.resultDigests,
        epsilon: o.epsilon,
        ...(o.debits ? { debits: o.debits } : {}),
      }),
    );
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
      head,
    };
    return { response: await this.#sign(reply, request.nonce), results: outcome.results };
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
