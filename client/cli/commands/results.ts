/**
 * `cleanroom results list|get`: every recipient's way to its results, whoever ran the query.
 * `list` shows the runs the host keeps a result of this party's for, each checked against the
 * enclave's signature; `get ID` fetches one, checks it against the signed digest and decrypts it.
 */
import type { Command } from "commander";
import { UsageError } from "../../../attestation/errors.js";
import { fetchResult } from "../../sdk/query.js";
import { listResults, markFetched } from "../../sdk/results.js";
import { addClientOptions, type ClientFlags, openClient, run } from "../options.js";
import { printJson, say } from "../output.js";
import { outputFormat, resultBytes, runFacts, writeResult } from "../result-output.js";

interface ListFlags extends ClientFlags {
  new?: boolean;
  limit: string;
}

interface GetFlags extends ClientFlags {
  query?: string;
  format: string;
  out?: string;
}

export function registerResultsCommand(program: Command): void {
  const results = program.command("results").description("the results of query runs this party receives");

  const list = results
    .command("list")
    .description("list the runs with a result for this party, newest first")
    .option("--new", "only those not fetched yet from here")
    .option("--limit <n>", "runs listed at most", "100");
  addClientOptions(list).action((f: ListFlags) =>
    run(async () => {
      const limit = Number(f.limit);
      if (!Number.isSafeInteger(limit) || limit < 1 || limit > 1000) {
        throw new UsageError("--limit must be a whole number from 1 to 1000");
      }
      const client = await openClient(f);
      await client.attestation();
      const all = await listResults(client, { limit });
      const shown = f.new ? all.filter((r) => !r.fetched) : all;
      if (f.json) {
        printJson({ party: client.partyId, results: shown });
        return 0;
      }
      if (!shown.length) {
        say(`no ${f.new ? "new " : ""}results for ${client.partyId}`);
        return 0;
      }
      for (const r of shown) {
        const what = r.verified
          ? `${r.queryId} run by ${r.requester}, epsilon ${r.epsilon}, audit head ${r.head?.seq}`
          : "(not signed by an enclave this party attested)";
        const when = r.signedAt ? new Date(r.signedAt * 1000).toISOString() : r.stored;
        process.stdout.write(`${r.id}  ${when}  ${r.fetched ? "fetched" : "new    "}  ${what}\n`);
      }
      return 0;
    }, f.json),
  );

  const get = results
    .command("get")
    .description("fetch one result, check it against the enclave's signed digest and decrypt it")
    .argument("[id]", "a result id (cleanroom results list, or printed by cleanroom query)")
    .option("--query <id>", "without ID: the newest result of this query for this party")
    .option("--format <format>", "csv | json (numbers typed) | parquet (needs --out)", "csv")
    .option("--out <file>", "write the result here (default stdout)");
  addClientOptions(get).action((given: string | undefined, f: GetFlags) =>
    run(async () => {
      const format = outputFormat(f.format);
      if (format === "parquet" && !f.out)
        throw new UsageError("--format parquet writes a file: give --out FILE");
      if (given !== undefined && !/^[0-9a-f]{32}$/.test(given)) {
        throw new UsageError(`result id ${given}: 32 hex characters, as cleanroom results list shows them`);
      }
      const client = await openClient(f);
      if (f.query !== undefined) client.approvedQuery(f.query);
      let id = given;
      if (id === undefined) {
        const newest = (await listResults(client)).find(
          (r) => r.verified && (f.query === undefined || r.queryId === f.query),
        );
        if (!newest) {
          throw new UsageError(
            `no result${f.query ? ` of query ${f.query}` : ""} for party ${client.partyId} at this host yet`,
          );
        }
        id = newest.id;
      }
      const r = await fetchResult(client, id);
      if (!r.data) throw new UsageError(`result ${id}: party ${client.partyId} is not one of its recipients`);
      await markFetched(client.state, client.partyId, id);
      if (f.out) await writeResult(f.out, await resultBytes(r, format));
      if (f.json) {
        printJson({ ...runFacts(r, !f.out), ...(f.out ? { out: f.out } : {}) });
        return 0;
      }
      const b = r.response;
      say(
        `result ${id}: query ${b.queryId} run by ${b.requester}, epsilon ${b.epsilon}, audit head ${b.head.seq}`,
      );
      if (f.out) say(`result written to ${f.out}`);
      else process.stdout.write(await resultBytes(r, format));
      return 0;
    }, f.json),
  );
}
