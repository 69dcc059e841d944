/**
 * A DP collaboration driven through the Enclave class: the two use-case parties and datasets
 * (scripts/demo/usecases.ts data, 2 000 publisher users, plus one victim), queries under the
 * custom rule (differential privacy) and one under the aggregation rule for comparison, and a
 * client that loads data, runs queries, keeps the highest head it saw and opens results.
 */
import type { Enclave } from "../../enclave/runtime.js";
import type { AuditHead } from "../../protocol/audit/entry.js";
import type { QueryReceipt } from "../../protocol/audit/query-run.js";
import type { ApprovedQuery, Contract, DpPolicy } from "../../protocol/contract/types.js";
import type { QueryBody } from "../../protocol/jose/messages.js";
import { verifyResponse } from "../../protocol/jose/verify-response.js";
import { openReceipt, openResult, openWorld, type Party, sealed, serveCsv } from "../enclave/world.js";
import { exposures, hashedEmail, K, purchases, useCaseCsv } from "../sql/usecases.js";

export { hashedEmail, K };

/** The victim of the differencing attack: one shoes purchase at a timestamp no one else has. */
export const VICTIM = hashedEmail(900_000);
export const VICTIM_TS = "2024-06-30 03:33:33";
/** A timestamp no purchase has: excludes nobody. */
export const NOBODY = "1970-01-01 00:00:00";

/** The aggregation rule with the k rule alone (the differencing guard off, to show the attack). */
const aggregation = (allowedColumns: string[]) => ({
  kind: "aggregation" as const,
  minDistinctIdentities: K,
  allowedColumns,
  differencingGuard: false,
});

const custom = (allowedColumns: string[], dp: DpPolicy) => ({
  kind: "custom" as const,
  minDistinctIdentities: K,
  allowedColumns,
  dp,
});

/**
 * Distinct buyers in a category, leaving out the purchases at one timestamp (a dimension): the
 * differencing attack's query. Without `dp` it runs under the aggregation rule (exact, k only).
 */
export function buyers(id: string, dp?: Omit<DpPolicy, "groups" | "columns">): ApprovedQuery {
  return {
    id,
    sql: `SELECT count(DISTINCT p.user_id) AS buyers FROM advertiser_purchases p
WHERE p.category = $category AND p.purchase_ts <> $exclude`,
    parameters: [
      { name: "category", type: "VARCHAR" },
      { name: "exclude", type: "TIMESTAMP" },
    ],
    runners: ["advertiser", "publisher"],
    recipients: ["advertiser", "publisher"],
    policy: dp
      ? custom(["buyers"], { ...dp, groups: "single", columns: [{ name: "buyers", kind: "count-distinct" }] })
      : aggregation(["buyers"]),
  };
}

/** One user's purchases and spend: shows contribution bounding and clamping (huge epsilon). */
export const userSpend: ApprovedQuery = {
  id: "user-spend",
  sql: "SELECT count(*) AS purchases, sum(p.amount) AS spend FROM advertiser_purchases p WHERE p.user_id = $user",
  parameters: [{ name: "user", type: "VARCHAR" }],
  runners: ["advertiser"],
  recipients: ["advertiser"],
  policy: custom(["purchases", "spend"], {
    epsilon: 100_000,
    budget: 10_000_000,
    groups: "single",
    columns: [
      { name: "purchases", kind: "count" },
      { name: "spend", kind: "sum" },
    ],
    maxRowsPerIdentity: 3,
    clamp: { lower: 0, upper: 100 },
  }),
};

/** The publisher's age bands of the advertiser's buyers in a category (a subquery on the other dataset). */
const INSIGHT_SQL = `SELECT e.age_band AS age_band, count(DISTINCT e.user_id) AS overlap_users
FROM publisher_exposures e
WHERE e.user_id IN (SELECT p.user_id FROM advertiser_purchases p WHERE p.category = $category)
GROUP BY e.age_band`;

/** Audience insight with data-dependent group keys: a noisy threshold replaces the exact k cut. */
export const insightDp: ApprovedQuery = {
  id: "insight-dp",
  sql: INSIGHT_SQL,
  parameters: [{ name: "category", type: "VARCHAR" }],
  runners: ["advertiser"],
  recipients: ["advertiser"],
  policy: custom(["age_band", "overlap_users"], {
    epsilon: 1,
    budget: 10_000_000,
    groups: "private",
    columns: [{ name: "overlap_users", kind: "count-distinct" }],
    maxRowsPerIdentity: 3,
  }),
};

/** The same with declared ("public") age bands: exactly these rows, whatever the data holds. */
export const AGE_BANDS = ["18-34", "35-49", "50-64", "65+", "unknown"];
export const insightPublic: ApprovedQuery = {
  ...insightDp,
  id: "insight-public",
  policy: custom(["age_band", "overlap_users"], {
    epsilon: 1,
    budget: 10_000_000,
    groups: "public",
    domain: [{ column: "age_band", values: AGE_BANDS }],
    columns: [{ name: "overlap_users", kind: "count-distinct" }],
    maxRowsPerIdentity: 3,
  }),
};

/** The use-case data with the victim's purchase, plus `extra` purchase lines (CSV, no header). */
export function data(extra: string[] = []): { purchases: string; exposures: string } {
  const csv = useCaseCsv();
  const lines = [`${VICTIM},${VICTIM_TS},80.00,shoes`, ...extra];
  return { purchases: csv.purchases + lines.map((l) => `${l}\n`).join(""), exposures: csv.exposures };
}

/** Exact distinct buyers in `category` without user `exclude`, from the plaintext. */
export function exactBuyers(purchasesCsv: string, category: string, exclude = ""): number {
  const ids = new Set<string>();
  for (const line of purchasesCsv.trim().split("\n").slice(1)) {
    const [user, , , cat] = line.split(",");
    if (cat === category && user !== exclude) ids.add(user!);
  }
  return ids.size;
}

export interface RunReply<B = Record<string, unknown>> {
  body: B & { head: AuditHead; epsilon: number; receipts: Record<string, string> };
  rows: unknown[][];
  /** The requester's decrypted receipt: the counts travel only there. */
  receipt: QueryReceipt;
}

/** The parties' side of one enclave instance. */
export class Clients {
  private constructor(
    readonly enclave: Enclave,
    readonly contract: Contract,
    readonly advertiser: Party,
    readonly publisher: Party,
    /** Highest audit head each party has seen (what its client persists). */
    readonly heads: Map<string, AuditHead>,
  ) {}

  /** A fresh enclave with `queries` accepted by both parties (new parties unless given). */
  static async start(
    queries: ApprovedQuery[],
    parties?: { advertiser: Party; publisher: Party },
    restore?: string[],
  ): Promise<Clients> {
    const { enclave, contract, advertiser, publisher } = await openWorld(queries, undefined, {
      ...(parties ? { parties } : {}),
      ...(restore ? { restore } : {}),
    });
    return new Clients(enclave, contract, advertiser, publisher, new Map());
  }

  /** The same parties, contract and remembered heads, on a restarted enclave given `entries`. */
  async restart(entries: string[]): Promise<Clients> {
    const next = await Clients.start(
      this.contract.queries,
      { advertiser: this.advertiser, publisher: this.publisher },
      entries,
    );
    for (const [p, h] of this.heads) next.heads.set(p, h);
    return next;
  }

  /**
   * Each owner encrypts to itself and grants with the file key (works across restarts),
   * presenting its highest head as its client does, and remembers the heads of the answers.
   */
  async load(csv: { purchases: string; exposures: string }): Promise<void> {
    for (const [owner, id, text] of [
      [this.advertiser, purchases.id, csv.purchases],
      [this.publisher, exposures.id, csv.exposures],
    ] as const) {
      const seen = this.heads.get(owner.id);
      const { granted, loaded } = await serveCsv(
        this.enclave,
        this.contract,
        owner,
        id,
        text,
        seen ? { auditHead: seen } : {},
      );
      for (const jws of [granted.response, loaded.response]) {
        const { body } = await verifyResponse<{ head: AuditHead }>(
          jws,
          this.enclave.keys.publicKeys.signingKey,
        );
        this.saw(owner.id, body.head);
      }
    }
  }

  /** The highest head of a signed answer `party` verified is what it presents next (its client's state). */
  saw(party: string, head: AuditHead): void {
    const seen = this.heads.get(party);
    if (!seen || head.seq > seen.seq) this.heads.set(party, head);
  }

  /** Runs a query as `party`, presenting its highest head; returns the verified body and rows. */
  async run<B>(party: Party, queryId: string, params: QueryBody["params"]): Promise<RunReply<B>> {
    const seen = this.heads.get(party.id);
    const request: QueryBody = {
      queryId,
      params,
      resultFormat: "json",
      ...(seen ? { auditHead: seen } : {}),
    };
    const reply = await this.enclave.handleRequest(
      await sealed(this.enclave, this.contract, party, "query", request),
    );
    const { body } = await verifyResponse<RunReply<B>["body"]>(
      reply.response,
      this.enclave.keys.publicKeys.signingKey,
    );
    this.saw(party.id, body.head);
    const text = await openResult(party, reply.results![party.id]!);
    const receipt = await openReceipt(party, body.receipts[party.id]!);
    return { body, rows: (JSON.parse(text) as { rows: unknown[][] }).rows, receipt };
  }

  close(): void {
    this.enclave.close();
  }
}
