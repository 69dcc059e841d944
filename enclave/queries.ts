/**
 * Running an approved query for a requester: who may run it, how often, the run itself
 * (enclave/sql binds the parameters and applies the output policy), noise and the privacy budget
 * under a DP policy (enclave/dp), and the result serialised and age-encrypted to each recipient
 * named by the contract, separately. What the host may see is only what it cannot invert
 * (protocol/audit/query-run.ts): digests of ciphertexts, a keyed parameter digest, and receipts
 * (the key and the released row count) encrypted to the parties. The answer is held until a whole number of
 * release quanta after the run started, so its timing says little about the data.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { encryptBytes } from "../protocol/age/stream-node.js";
import type { AuditEntry, BudgetDebit } from "../protocol/audit/entry.js";
import {
  ciphertextDigest,
  encodeReceipt,
  newParamsKey,
  paramsDigest,
  type QueryReceipt,
} from "../protocol/audit/query-run.js";
import { type ApprovedQuery, type DpPolicy, partyBudget } from "../protocol/contract/types.js";
import type { QueryBody } from "../protocol/jose/messages.js";
import type { ActiveContract } from "./contract-state.js";
import { epsilonCostMicros, PrivacyBudget } from "./dp/budget.js";
import { BudgetExhaustedError } from "./dp/errors.js";
import { cryptoRng, type Rng } from "./dp/random.js";
import { DatasetNotLoadedError, MaxRunsError, NotPermittedError } from "./errors.js";
import { openReleased, SealShareError, SealShares, sealReleased } from "./guard-seal.js";
import { DifferencingGuard } from "./sql/differencing.js";
import type { SqlEngine } from "./sql/engine.js";
import { QueryCheckError, QueryTimeoutError } from "./sql/errors.js";
import { datasetsRead, resultToCsv, resultToJson, runApprovedQuery } from "./sql/run.js";

export interface QueryOutcome {
  queryId: string;
  /** HMAC-SHA256 of the canonical parameters under this run's key (known to its parties only). */
  paramsDigest: string;
  /** Party id → SHA-256 of the age file in `results`, one per contract recipient. */
  resultDigests: Record<string, string>;
  format: "csv" | "json";
  /** Epsilon charged for this run (0 without DP). */
  epsilon: number;
  /** The budget debits of this run, one per recipient (DP only): the audit entry must carry them. */
  debits?: BudgetDebit[];
  /** Party id → base64 age ciphertext of the result, one per contract recipient. */
  results: Record<string, string>;
  /**
   * The people sets this run's released rows added to the differencing guard, sealed for a later
   * instance (enclave/guard-seal.ts); the host stores it, the audit entry carries its digest.
   */
  sealedHistory?: Uint8Array;
  /**
   * Party id → base64 age ciphertext of its receipt (the parameter key; the released row count
   * for a recipient), one per recipient and one for the requester.
   */
  receipts: Record<string, string>;
}

export interface QueryRunnerOptions {
  rng?: Rng;
  /** The seal shares owners granted in this instance (the guard's history is sealed under them). */
  shares?: SealShares;
  /**
   * Sealed histories of earlier instances by the seq of the query-run entry that made them,
   * already matched against that entry's digest (enclave/runtime.ts).
   */
  sealedHistories?: ReadonlyMap<number, Uint8Array>;
  /**
   * Answers (and refusals decided by the data) are released no earlier than this many
   * milliseconds after the run started, rounded up to a multiple of it; 0 releases at once.
   */
  releaseQuantumMs?: number;
}

/** When a run that started at `started` and is done at `done` may be released. */
export function releaseTime(started: number, done: number, quantumMs: number): number {
  if (!(quantumMs > 0)) return done;
  const quanta = Math.max(1, Math.ceil((done - started) / quantumMs));
  return started + quanta * quantumMs;
}

export class QueryRunner {
  /** Completed runs per query id; in-flight runs hold a reservation so maxRuns is never exceeded. */
  readonly #runs = new Map<string, number>();
  readonly #reserved = new Map<string, number>();
  /** Epsilon spent per party under this contract; debited before a DP result leaves. */
  readonly #privacy: PrivacyBudget;
  /** What each aggregation query released, per table, as people sets (never leaves the enclave). */
  readonly #guard = new DifferencingGuard();
  /**
   * Each party's total epsilon on this contract: the smallest budget any DP query declares, so no
   * query's own budget lets a party spend past what the others allow.
   */
  readonly #budget: number;
  readonly #rng: Rng;
  readonly #quantumMs: number;
  readonly #shares: SealShares;
  /** Per query, the sealed histories of earlier instances not yet opened (they need the owners' shares). */
  readonly #pending = new Map<string, Uint8Array[]>();

  /**
   * `priorRuns`: the query-run audit entries already recorded under this contract (a restored
   * chain), from which run counts and the privacy budget are rebuilt, so a restart resets neither.
   */
  constructor(
    private readonly engine: SqlEngine,
    private readonly active: ActiveContract,
    priorRuns: readonly AuditEntry<"query-run">[] = [],
    options: QueryRunnerOptions = {},
  ) {
    this.#rng = options.rng ?? cryptoRng();
    this.#quantumMs = options.releaseQuantumMs ?? 0;
    this.#shares = options.shares ?? new SealShares();
    for (const e of priorRuns) {
      this.#counted(e.data.query);
      if (e.data.guard === undefined) continue;
      // An earlier instance released rows of this query: their history is opened before its next
      // run, or, when the host did not hand it back, nothing more of the query is released.
      const sealed = options.sealedHistories?.get(e.seq);
      if (sealed) this.#pending.set(e.data.query, [...(this.#pending.get(e.data.query) ?? []), sealed]);
      else this.#guard.lost(e.data.query);
    }
    this.#privacy = PrivacyBudget.replay(priorRuns.flatMap((e) => e.data.debits ?? []));
    this.#budget = partyBudget(active.contract);
  }

  /** One more run of `queryId` counts towards its `maxRuns`. */
  #counted(queryId: string): void {
    this.#runs.set(queryId, (this.#runs.get(queryId) ?? 0) + 1);
  }

  /** True when every recipient of `query` can still be charged one run of it. */
  #affordable(query: ApprovedQuery, dp: DpPolicy): boolean {
    const cost = epsilonCostMicros(dp);
    return query.recipients.every((p) => this.#privacy.remaining(p, { budget: this.#budget }) >= cost);
  }

  /**
   * Runs `body` for `requester`. `commit` is called with the outcome before anything leaves
   * (the caller appends the audit entry there, synchronously after the DP debits, so the budget
   * and the audit chain advance together); the run counts only when it succeeds.
   *
   * Refusals decided before the run (permission, budget, maxRuns) depend only on public state and
   * answer at once. From the start of the run on, the answer or the failure is held until
   * `releaseTime`, and only then is the entry committed: the audit log, which the host can poll,
   * moves no earlier than the answer.
   */
  async run<T>(
    requester: string,
    body: QueryBody,
    commit: (outcome: QueryOutcome) => Promise<T>,
  ): Promise<{ outcome: QueryOutcome; committed: T }> {
    const query = this.active.query(body.queryId);
    if (!query.runners.includes(requester)) throw new NotPermittedError("requester may not run this query");
    const dp = query.policy.dp;
    // Every recipient learns a noisy answer, so every recipient is charged its epsilon.
    if (dp && !this.#affordable(query, dp)) throw new BudgetExhaustedError();
    const done = this.#runs.get(query.id) ?? 0;
    const reserved = this.#reserved.get(query.id) ?? 0;
    if (query.policy.maxRuns !== undefined && done + reserved >= query.policy.maxRuns) {
      throw new MaxRunsError("query has reached its maximum number of runs");
    }
    this.#reserved.set(query.id, reserved + 1);
    const started = performance.now();
    try {
      let sealed: Omit<QueryOutcome, "epsilon" | "debits">;
      try {
        sealed = await this.#execute(query, requester, body);
      } catch (e) {
        await this.#hold(started);
        throw e;
      }
      await this.#hold(started);
      // Debit before anything leaves; nothing is awaited between the check, the debits and the
      // commit call, so the debits of one run are consecutive and cannot fail halfway.
      if (dp && !this.#affordable(query, dp)) throw new BudgetExhaustedError();
      const debits = dp
        ? query.recipients.map((p) => this.#privacy.debit(p, { epsilon: dp.epsilon, budget: this.#budget }))
        : undefined;
      const outcome: QueryOutcome = {
        ...sealed,
        epsilon: debits ? debits[0]!.micros / 1e6 : 0,
        ...(debits ? { debits } : {}),
      };
      const committed = await commit(outcome);
      this.#counted(query.id);
      return { outcome, committed };
    } finally {
      this.#reserved.set(query.id, (this.#reserved.get(query.id) ?? 1) - 1);
    }
  }

  /** Waits until the release time of a run that started at `started` (monotonic ms). */
  async #hold(started: number): Promise<void> {
    const at = releaseTime(started, performance.now(), this.#quantumMs);
    for (let left = at - performance.now(); left > 0; left = at - performance.now())
      await sleep(Math.ceil(left));
  }

  /** The run itself, its result sealed to each recipient and a receipt to each party of the run. */
  async #execute(
    query: ApprovedQuery,
    requester: string,
    body: QueryBody,
  ): Promise<Omit<QueryOutcome, "epsilon" | "debits">> {
    await this.#openHistory(query);
    const result = await runApprovedQuery(this.engine, query, body.params, {
      guard: this.#guard,
      rng: this.#rng,
    }).catch((e: unknown) => {
      // Admission bound every table to a contract dataset, so an unknown one now is unloaded.
      if (e instanceof QueryCheckError && e.reason.startsWith("unknown table")) {
        throw new DatasetNotLoadedError("a dataset this query reads is not loaded");
      }
      // A run that ran out of time still counts: retrying until it does not is no free oracle.
      if (e instanceof QueryTimeoutError) this.#counted(query.id);
      throw e;
    });
    const released = result.released ?? [];
    const sealedHistory =
      released.length > 0
        ? sealReleased(await this.#sealKey(query), this.active.digest, query.id, released)
        : undefined;
    const text = body.resultFormat === "csv" ? resultToCsv(result) : resultToJson(result);
    const bytes = new TextEncoder().encode(text);
    const paramsKey = newParamsKey();
    const results: Record<string, string> = {};
    const resultDigests: Record<string, string> = {};
    const receipts: Record<string, string> = {};
    const parties = query.recipients.includes(requester)
      ? query.recipients
      : [...query.recipients, requester];
    for (const party of parties) {
      const recipient = this.active.recipient(party);
      const isRecipient = query.recipients.includes(party);
      if (isRecipient) {
        const sealed = await encryptBytes(bytes, [recipient]);
        results[party] = Buffer.from(sealed).toString("base64");
        resultDigests[party] = await ciphertextDigest(sealed);
      }
      const receipt: QueryReceipt = {
        version: 1,
        query: query.id,
        requester,
        party,
        format: body.resultFormat,
        paramsKey,
        // A requester that is not a recipient learns nothing about the answer. A recipient learns
        // the released row count (which its result shows anyway), never how many were held back.
        ...(isRecipient ? { rows: result.rows.length } : {}),
        ...(isRecipient && result.truncated ? { truncated: true as const } : {}),
      };
      receipts[party] = Buffer.from(await encryptBytes(encodeReceipt(receipt), [recipient])).toString(
        "base64",
      );
    }
    return {
      queryId: query.id,
      paramsDigest: await paramsDigest(paramsKey, body.params),
      resultDigests,
      format: body.resultFormat,
      results,
      receipts,
      ...(sealedHistory ? { sealedHistory } : {}),
    };
  }

  /** The key sealing `query`'s history: the shares of the owners of the datasets it reads. */
  async #sealKey(query: ApprovedQuery): Promise<Uint8Array> {
    const owners = (await datasetsRead(this.engine, query)).map((d) => this.active.dataset(d).owner);
    const key = this.#shares.key(this.active.digest, query.id, owners);
    // Loading a dataset takes its owner's grant, which carries the share: a loaded query has them.
    if (!key)
      throw new SealShareError("an owner of a dataset this query reads has not granted in this instance");
    return key;
  }

  /** Adds what earlier instances released of `query` to the guard, once; unreadable: frozen. */
  async #openHistory(query: ApprovedQuery): Promise<void> {
    const pending = this.#pending.get(query.id);
    if (!pending) return;
    const key = await this.#sealKey(query);
    this.#pending.delete(query.id);
    for (const blob of pending) {
      const rows = openReleased(key, this.active.digest, query.id, blob);
      if (!rows) {
        this.#guard.lost(query.id);
        return;
      }
      this.#guard.restore(query.id, rows);
    }
  }
}
