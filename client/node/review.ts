/**
 * The contract review on Node: each approved query parsed by DuckDB's own parser (the one the
 * enclave uses: json_serialize_sql on an in-memory instance with no external access, the SQL
 * passed as a bound value), then protocol/rules/review.ts builds the report.
 */
import type { ApprovedQuery, Contract } from "../../protocol/contract/types.js";
import { type ContractReview, reviewContract } from "../../protocol/rules/review.js";
import type { ParsedSql } from "../../protocol/rules/tree.js";
import { contractDigestHex } from "../sdk/contract.js";
import { withLocalDuckDb } from "./duckdb.js";

/** Parse trees of `sqls`, in order. Non-SELECT or malformed SQL comes back with error: true. */
export async function parseSqlWithDuckDb(sqls: readonly string[]): Promise<ParsedSql[]> {
  return withLocalDuckDb(
    async (conn) => {
      const out: ParsedSql[] = [];
      for (const sql of sqls) {
        const result = await conn.runAndReadAll("SELECT json_serialize_sql($1::VARCHAR)", [sql]);
        // query_location offsets can exceed 2^53 (a "none" marker) and mean nothing here.
        const text = String(result.getRows()[0]?.[0] ?? "").replace(
          /"query_location":\d+/g,
          '"query_location":0',
        );
        out.push(JSON.parse(text) as ParsedSql);
      }
      return out;
    },
    { enable_external_access: "false" },
  );
}

/** Reviews `contract` (protocol/rules/review.ts), with its digest, parsing its SQL with DuckDB. */
export async function reviewContractWithDuckDb(contract: Contract): Promise<ContractReview> {
  const trees = await parseSqlWithDuckDb(contract.queries.map((q) => q.sql));
  const byQuery = new Map<ApprovedQuery, ParsedSql>(contract.queries.map((q, i) => [q, trees[i]!]));
  const { contract: id, ...review } = reviewContract(contract, (q) => byQuery.get(q) ?? { error: true });
  return { contract: id, digest: await contractDigestHex(contract), ...review };
}
