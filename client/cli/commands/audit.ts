/**
 * `cleanroom audit verify`: verify the enclave-signed, hash-chained log. Every instance's segment
 * is trusted through the evidence its first entry embeds, checked under this party's policy
 * options (the same as `attest`); the log must hold every head this party remembers. Online
 * (--url with the client options) it must also hold the signed head of every run the host lists
 * with a result for this party, and of any stored run named with `--result ID`; offline (--file
 * LOG --url URL) it reads only the state directory.
 */
import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import { UsageError } from "../../../attestation/errors.js";
import type { VerifiedAuditLog } from "../../../protocol/audit/verify.js";
import { auditEntries, auditVerify, verifyAuditWithState } from "../../sdk/audit.js";
import { HostState } from "../../sdk/state.js";
import {
  addClientOptions,
  type ClientFlags,
  collect,
  evidencePolicy,
  hostClient,
  openClient,
  run,
  stateStore,
} from "../options.js";

interface AuditFlags extends ClientFlags {
  file?: string;
  result: string[];
}

function print(log: VerifiedAuditLog, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify({ entries: log.entries, head: log.head }, null, 2)}\n`);
    return;
  }
  for (const e of log.entries)
    process.stdout.write(`${e.seq}\t${e.time}\t${e.kind}\t${JSON.stringify(summary(e))}\n`);
  process.stdout.write(`✓ ${log.entries.length} entries verified; head ${log.head.seq} ${log.head.hash}\n`);
}

/** An "enclave-started" entry's evidence is long and says nothing to a reader: the platform stands for it. */
function summary(e: VerifiedAuditLog["entries"][number]): unknown {
  if (e.kind !== "enclave-started") return e.data;
  const d = e.data as { signingKey: string; keysDigest: string; evidence: { platform: string } };
  return { signingKey: d.signingKey, keysDigest: d.keysDigest, platform: d.evidence.platform };
}

export function registerAuditCommand(program: Command): void {
  const audit = program.command("audit").description("the enclave's audit log");
  const verify = audit
    .command("verify")
    .description("verify the audit log and every instance's evidence in it (online, or offline with --file)")
    .option("--file <log>", "verify this stored log offline ({entries:[...]} or a JSON array)")
    .option("--result <id>", "also check the signed head of this stored query run (repeatable)", collect, []);
  addClientOptions(verify).action((f: AuditFlags) =>
    run(async () => {
      let log: VerifiedAuditLog;
      if (f.file) {
        let doc: unknown;
        try {
          doc = JSON.parse(await readFile(f.file, "utf8"));
        } catch (e) {
          if (e instanceof SyntaxError) throw new UsageError(`--file ${f.file}: not JSON`);
          throw e;
        }
        if (f.result.length) throw new UsageError("--result needs the host: leave out --file");
        const state = await HostState.open(stateStore(f), hostClient(f).baseUrl);
        log = await verifyAuditWithState(auditEntries(doc), state, await evidencePolicy(f));
      } else {
        log = await auditVerify(await openClient(f), { results: f.result, listed: true });
      }
      print(log, f.json ?? false);
      return 0;
    }, f.json),
  );
}
