/**
 * `cleanroom query QUERY_ID`: run an approved query and decrypt this party's result. Parameters
 * are checked against the contract here, before anything is sent. The result id is printed so
 * that this party (and every other recipient) can fetch the result again (`cleanroom results`).
 */
import type { Command } from "commander";
import { UsageError } from "../../../attestation/errors.js";
import { query } from "../../sdk/query.js";
import { markFetched } from "../../sdk/results.js";
import { addClientOptions, type ClientFlags, collect, openClient, run } from "../options.js";
import { printJson, say } from "../output.js";
import { outputFormat, resultBytes, runFacts, writeResult } from "../result-output.js";

interface QueryFlags extends ClientFlags {
  param: string[];
  format: string;
  out?: string;
}

function parseParams(list: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of list) {
    const eq = item.indexOf("=");
    if (eq < 1) throw new UsageError(`--param takes NAME=VALUE, not ${item}`);
    const name = item.slice(0, eq);
    if (name in out) throw new UsageError(`--param ${name} given twice`);
    out[name] = item.slice(eq + 1);
  }
  return out;
}

export function registerQueryCommand(program: Command): void {
  const cmd = program
    .command("query")
    .description("run an approved query; the result is checked against the signed digest and decrypted")
    .argument("<query-id>")
    .option("--param <name=value>", "query parameter (repeatable)", collect, [])
    .option("--format <format>", "csv | json (numbers typed) | parquet (needs --out)", "csv")
    .option("--out <file>", "write the result here (default stdout)");
  addClientOptions(cmd).action((queryId: string, f: QueryFlags) =>
    run(async () => {
      const format = outputFormat(f.format);
      if (format === "parquet" && !f.out)
        throw new UsageError("--format parquet writes a file: give --out FILE");
      const client = await openClient(f);
      client.runnableQuery(queryId);
      const params = client.typedParams(queryId, parseParams(f.param));
      // The enclave's JSON carries column types, so either output format can be made from it.
      const r = await query(client, { queryId, params, format: "json" });
      await markFetched(client.state, client.partyId, r.id);
      const b = r.response;
      if (r.data && f.out) await writeResult(f.out, await resultBytes(r, format));
      if (f.json) {
        printJson({ ...runFacts(r, !f.out), ...(f.out && r.data ? { out: f.out } : {}) });
        return 0;
      }
      // The row count comes from this party's encrypted receipt: the host never sees it.
      const counts = r.receipt.rows !== undefined ? `${r.receipt.rows} rows, ` : "";
      say(`query ${b.queryId}: result ${r.id}, ${counts}epsilon ${b.epsilon}, audit head ${b.head.seq}`);
      if (r.receipt.truncated) {
        say(
          `the noisy rows exceeded the row cap: the result holds the first ${r.receipt.rows} in sorted order`,
        );
      }
      if (!r.data) say("this party is not a recipient of the result");
      else if (f.out) say(`result written to ${f.out}`);
      else process.stdout.write(await resultBytes(r, format));
      const others = client.approvedQuery(queryId).recipients.filter((p) => p !== client.partyId);
      if (others.length) say(`also for ${others.join(", ")}: cleanroom results get ${r.id}`);
      return 0;
    }, f.json),
  );
}
