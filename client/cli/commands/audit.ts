/**
 * `cleanroom audit verify`: verify the enclave-signed, hash-chained log against the signing keys
 * this party accepted through attestation and the highest head it has seen. Online (--url with
 * the client options) or offline (--file LOG --url URL reads only the state directory).
 */
import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import { UsageError } from "../../../attestation/errors.js";
import type { VerifiedAuditLog } from "../../../protocol/audit/verify.js";
import { auditEntries, auditVerify, verifyAuditWithState } from "../../sdk/audit.js";
import { HostClient } from "../../sdk/http.js";
import { HostState } from "../../sdk/state.js";
import {
  addHostOptions,
  addPolicyOptions,
  type ClientFlags,
  openClient,
  run,
  stateStore,
} from "../options.js";

interface AuditFlags extends Partial<ClientFlags> {
  url: string;
  file?: string;
  json?: boolean;
}

function print(log: VerifiedAuditLog, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(log, null, 2)}\n`);
    return;
  }
  for (const e of log.entries)
    process.stdout.write(`${e.seq}\t${e.time}\t${e.kind}\t${JSON.stringify(e.data)}\n`);
  process.stdout.write(`✓ ${log.entries.length} entries verified; head ${log.head.seq} ${log.head.hash}\n`);
}

export function registerAuditCommand(program: Command): void {
  const audit = program.command("audit").description("the enclave's audit log");
  const verify = audit
    .command("verify")
    .description("verify the audit log (online, or offline with --file)")
    .option("--file <log>", "verify this stored log offline ({entries:[...]} or a JSON array)")
    .option("--contract <file>", "the contract (online mode)")
    .option("--key <file>", "this party's key file (online mode)")
    .option("--json", "print the verified entries as JSON");
  addPolicyOptions(addHostOptions(verify)).action((f: AuditFlags) =>
    run(async () => {
      let log: VerifiedAuditLog;
      if (f.file) {
        let doc: unknown;
        try {
          doc = JSON.parse(await readFile(f.file, "utf8"));
        } catch (e) {
          if (e instanceof SyntaxError) throw new UsageError("--file: not JSON");
          throw e;
        }
        const state = await HostState.open(stateStore(f), new HostClient(f.url).baseUrl);
        log = await verifyAuditWithState(auditEntries(doc), state);
      } else {
        if (!f.contract || !f.key)
          throw new UsageError("online audit needs --contract and --key (or use --file)");
        log = await auditVerify(await openClient(f as ClientFlags));
      }
      print(log, f.json ?? false);
      return 0;
    }),
  );
}
