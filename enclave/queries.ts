/**
 * Running an approved query for a requester: who may run it, how often, the run itself
 * (enclave/sql binds the parameters and applies the output policy), and the result serialised,
 * digested and age-encrypted to each recipient named by the contract, separately.
 */
import { createHash } from "node:crypto";
import { encryptBytes } from "../protocol/age/stream-node.js";
import { canonicalDigest } from "../protocol/contract/digest.js";
import type { QueryBody } from "../protocol/jose/messages.js";
import type { ActiveContract } from "./contract-state.js";
import { DatasetNotLoadedError, DpUnsupportedError, MaxRunsError, NotPermittedError } from "./errors.js";
import type { SqlEngine } from "./sql/engine.js";
import { QueryCheckError } from "./sql/errors.js";
import { resultToCsv, resultToJson, runApprovedQuery } from "./sql/run.js";

export interface QueryOutcome {
  queryId: string;
  paramsDigest: string;
  resultDigest: string;
  format: "csv" | "json";
  rows: number;
  groupsSuppressed: number;
  epsilon: number;
  /** Party id → base64 age ciphertext of the result, one per contract recipient. */
  results: Record<string, string>;
}

export class QueryRunner {
  /** Completed runs per query id; in-flight runs hold a reservation so maxRuns is never exceeded. */
  readonly #runs: Map<string, number>;
  readonly #reserved = new Map<string, number>();

  constructor(
    private readonly engine: SqlEngine,
    private readonly active: ActiveContract,
    priorRuns: Map<string, number> = new Map(),
  ) {
    this.#runs = new Map(priorRuns);
  }

  /**
   * Runs `body` for `requester`. `commit` is called with the outcome before anything leaves
   * (the caller appends the audit entry there); the run counts only when it succeeds.
   */
  async run<T>(
    requester: string,
    body: QueryBody,
    commit: (outcome: QueryOutcome) => Promise<T>,
  ): Promise<{ outcome: QueryOutcome; committed: T }> {
    const query = this.active.query(body.queryId);
    if (!query.runners.includes(requester)) throw new NotPermittedError("requester may not run this query");
    // Noise and budgets are not implemented here: running without them would break the policy.
    if (query.policy.dp)
      throw new DpUnsupportedError("differential privacy is not supported by this runtime");
    const done = this.#runs.get(query.id) ?? 0;
    const reserved = this.#reserved.get(query.id) ?? 0;
    if (query.policy.maxRuns !== undefined && done + reserved >= query.policy.maxRuns) {
      throw new MaxRunsError("query has reached its maximum number of runs");
    }
    this.#reserved.set(query.id, reserved + 1);
    try {
      const result = await runApprovedQuery(this.engine, query, body.params).catch((e: unknown) => {
        // Admission bound every table to a contract dataset, so an unknown one now is unloaded.
        if (e instanceof QueryCheckError && e.reason === "unknown table") {
          throw new DatasetNotLoadedError("a dataset this query reads is not loaded");
        }
        throw e;
      });
      const text = body.resultFormat === "csv" ? resultToCsv(result) : resultToJson(result);
      const bytes = new TextEncoder().encode(text);
      const results: Record<string, string> = {};
      for (const party of query.recipients) {
        const sealed = await encryptBytes(bytes, [this.active.recipient(party)]);
        results[party] = Buffer.from(sealed).toString("base64");
      }
      const outcome: QueryOutcome = {
        queryId: query.id,
        paramsDigest: (await canonicalDigest(body.params)).hex,
        resultDigest: createHash("sha256").update(bytes).digest("hex"),
        format: body.resultFormat,
        rows: result.rows.length,
        groupsSuppressed: result.groupsSuppressed,
        epsilon: 0,
        results,
      };
      const committed = await commit(outcome);
      this.#runs.set(query.id, (this.#runs.get(query.id) ?? 0) + 1);
      return { outcome, committed };
    } finally {
      this.#reserved.set(query.id, (this.#reserved.get(query.id) ?? 1) - 1);
    }
  }
}
