/** `cleanroom query QUERY_ID`: run an approved query and decrypt this party's result. */
import { writeFile } from "node:fs/promises";
import type { Command } from "commander";
import { UsageError } from "../../../attestation/errors.js";
import { query } from "../../sdk/query.js";
import { addClientOptions, type ClientFlags, collect, openClient, run } from "../options.js";

interface QueryFlags extends ClientFlags {
  param: string[];
  format: string;
  out?: string;
}

function parseParams(list: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of list) {
    const eq = item.indexOf("=");
    if (eq < 1) throw new UsageError("--param takes name=value");
    const name = item.slice(0, eq);
    if (name in out) throw new UsageError("--param given twice");
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
    .option("--format <format>", "csv | json", "csv")
    .option("--out <file>", "write the result here (default stdout)");
  addClientOptions(cmd).action((queryId: string, f: QueryFlags) =>
    run(async () => {
      if (f.format !== "csv" && f.format !== "json") throw new UsageError("--format must be csv or json");
      const client = await openClient(f);
      const params = client.typedParams(queryId, parseParams(f.param));
      const r = await query(client, { queryId, params, format: f.format });
      const b = r.response;
      // The row count comes from this party's encrypted receipt: the host never sees it.
      const counts = r.receipt.rows !== undefined ? `${r.receipt.rows} rows, ` : "";
      process.stderr.write(`query ${b.queryId}: ${counts}epsilon ${b.epsilon}, audit head ${b.head.seq}\n`);
      if (!r.data) process.stderr.write("this party is not a recipient of the result\n");
      else if (f.out) await writeFile(f.out, r.data, { mode: 0o600 });
      else process.stdout.write(r.data);
      return 0;
    }),
  );
}
