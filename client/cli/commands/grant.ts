/**
 * `cleanroom grant`: let the attested enclave decrypt and load one uploaded file of a dataset
 * this party owns. --dataset defaults to the party's only dataset, --digest to its last upload.
 * Prints what was loaded and the quality report for people (stdout), or one JSON document.
 */
import type { Command } from "commander";
import { UsageError } from "../../../attestation/errors.js";
import { grant, type LoadProgress } from "../../sdk/grant.js";
import { lastUpload } from "../../sdk/uploads.js";
import { addClientOptions, type ClientFlags, datasetOf, openClient, run } from "../options.js";
import { printJson, say } from "../output.js";

interface GrantFlags extends ClientFlags {
  dataset?: string;
  digest?: string;
  replace?: string;
  append?: string;
}

/** --replace N / --append N: the version the load builds on, and how. */
function versionOf(f: GrantFlags): { previous: number; mode: "replace" | "append" } | undefined {
  if (f.replace !== undefined && f.append !== undefined)
    throw new UsageError("give --replace or --append, not both");
  const given = f.replace ?? f.append;
  if (given === undefined) return undefined;
  const previous = Number(given);
  if (!Number.isSafeInteger(previous) || previous < 1) {
    throw new UsageError(
      `--${f.replace !== undefined ? "replace" : "append"} takes the version it builds on (1, 2, …; cleanroom status shows it)`,
    );
  }
  return { previous, mode: f.replace !== undefined ? "replace" : "append" };
}

/** A line on stderr, rewritten in place on a terminal, while the enclave loads. */
function loadProgress(json: boolean): ((p: LoadProgress) => void) | undefined {
  if (json || !process.stderr.isTTY) return undefined;
  return (p) => {
    const pct = p.total > 0 ? Math.floor((p.bytes / p.total) * 100) : 0;
    process.stderr.write(
      `\rloading version ${p.version}: ${pct} % of ${(p.total / 1e6).toFixed(1)} MB, ${p.rows} rows`,
    );
  };
}

/** The quality report as lines: counts, then the columns with missing values. */
export function qualityLines(q: Record<string, unknown>): string[] {
  const n = (v: unknown) => (typeof v === "number" ? v : 0);
  const identity = (q.identity ?? {}) as Record<string, unknown>;
  const lines = [
    `rows loaded ${n(q.rowsAccepted)}, rejected ${n(q.rowsRejected)}, dropped without ${identity.column ?? "identity"} ${n(q.droppedNullIdentity)}`,
    `identities repeated on more than one row: ${n(identity.duplicates)}`,
  ];
  const nulls = Object.entries((q.nullRate ?? {}) as Record<string, unknown>).filter(([, r]) => n(r) > 0);
  if (nulls.length) {
    lines.push(`empty values: ${nulls.map(([c, r]) => `${c} ${(n(r) * 100).toFixed(1)} %`).join(", ")}`);
  }
  return lines;
}

export function registerGrantCommand(program: Command): void {
  const cmd = program
    .command("grant")
    .description("grant the enclave the key of an uploaded file of a dataset this party owns")
    .option("--dataset <id>", "dataset id in the contract (default: the only one this party owns)")
    .option("--digest <hex>", "SHA-256 of the uploaded age file (default: this party's last upload of it)")
    .option("--replace <version>", "replace this loaded version of the dataset with the file")
    .option("--append <version>", "append the file's rows to this loaded version of the dataset");
  addClientOptions(cmd).action((f: GrantFlags) =>
    run(async () => {
      const builds = versionOf(f);
      const client = await openClient(f);
      const dataset = datasetOf(client.contract, client.partyId, f.dataset);
      if (dataset.owner !== client.partyId) {
        throw new UsageError(
          `dataset ${dataset.id} is owned by ${dataset.owner}; party ${client.partyId} grants its own datasets only`,
        );
      }
      let digest = f.digest?.toLowerCase();
      let file: string | undefined;
      if (digest === undefined) {
        const last = await lastUpload(client.state, dataset.id);
        if (!last) {
          throw new UsageError(
            `missing --digest: no upload of dataset ${dataset.id} to ${client.host.baseUrl} is recorded here (cleanroom upload FILE --dataset ${dataset.id})`,
          );
        }
        digest = last.digest;
        file = last.file;
        if (!f.json) say(`granting the last upload of ${dataset.id}: ${last.file} (${digest})`);
      }
      if (!/^[0-9a-f]{64}$/.test(digest))
        throw new UsageError(`--digest must be 64 hex characters, not ${digest}`);
      // Said before the enclave is asked: a reset host or a mistyped digest has nothing to load.
      if (!(await client.host.hasBlob(digest))) {
        throw new UsageError(
          `the host stores no file ${digest}${file ? ` (uploaded from ${file})` : ""}: upload it (again) with cleanroom upload FILE --dataset ${dataset.id}`,
        );
      }
      const onProgress = loadProgress(f.json ?? false);
      const r = await grant(client, {
        dataset: dataset.id,
        ciphertextDigest: digest,
        ...builds,
        ...(onProgress ? { onProgress } : {}),
      });
      if (onProgress) process.stderr.write("\n");
      let quality: Record<string, unknown> | undefined;
      if (r.quality) {
        try {
          quality = JSON.parse(new TextDecoder().decode(r.quality)) as Record<string, unknown>;
        } catch {
          quality = undefined;
        }
      }
      if (f.json) {
        printJson({
          dataset: r.dataset,
          ciphertextDigest: r.ciphertextDigest,
          rows: r.rows ?? null,
          ...(r.version !== undefined ? { version: r.version, mode: r.mode, totalRows: r.totalRows } : {}),
          head: r.head,
          quality: quality ?? null,
        });
        return 0;
      }
      const out = (line: string) => process.stdout.write(`${line}\n`);
      const version =
        r.version !== undefined ? `, version ${r.version} (${r.mode}, ${r.totalRows} rows in all)` : "";
      out(
        `granted ${r.dataset} ${r.ciphertextDigest}${r.rows !== undefined ? `: ${r.rows} rows loaded` : ""}${version}; audit head ${r.head.seq}`,
      );
      if (quality) for (const line of qualityLines(quality)) out(`  ${line}`);
      return 0;
    }, f.json),
  );
}
