/**
 * `cleanroom status`: what this party can establish about the clean room right now (attested
 * enclave, contract and approvals, datasets loaded, runs and privacy budget left, uptime), from
 * fresh evidence and the verified audit chain (client/sdk/status.ts).
 */
import type { Command } from "commander";
import { type CleanroomStatus, cleanroomStatus } from "../../sdk/status.js";
import { addClientOptions, type ClientFlags, openClient, run } from "../options.js";
import { printJson } from "../output.js";

function duration(seconds: number): string {
  const d = Math.floor(seconds / 86_400);
  const h = Math.floor((seconds % 86_400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  return d ? `${d}d ${h}h ${m}m` : h ? `${h}h ${m}m` : `${m}m ${seconds % 60}s`;
}

const eps = (x: number) => Number(x.toFixed(6)).toString();

export function statusLines(s: CleanroomStatus, url: string): string[] {
  const e = s.enclave;
  const image = e.measurement
    ? `measurement ${e.measurement}`
    : e.pcrs
      ? `PCR0 ${e.pcrs["0"] ?? "?"}`
      : "image not reported";
  const lines = [
    `clean room  ${url}`,
    `contract    ${s.contract.id} (digest ${s.contract.digest})`,
    `enclave     ${e.platform}${e.simulated ? " (simulated)" : ""}, ${image}`,
    `            ${e.startedAt ? `up ${duration(e.uptimeSeconds ?? 0)} (since ${e.startedAt})` : "start not on the audit chain"}`,
    `approvals   ${s.approvals.map((a) => `${a.party} ✓`).join(", ")}`,
    "datasets",
  ];
  const w = Math.max(...s.datasets.map((d) => d.id.length), ...s.queries.map((q) => q.id.length));
  for (const d of s.datasets) {
    lines.push(
      `  ${d.id.padEnd(w)}  ${
        d.loaded
          ? `loaded: ${d.rows} rows${d.version !== undefined ? `, version ${d.version} (${d.mode})` : ""}, file ${d.ciphertextDigest}, at ${d.loadedAt}`
          : `not loaded (owner ${d.owner}: cleanroom upload, then cleanroom grant)`
      }`,
    );
  }
  lines.push("queries");
  for (const q of s.queries) {
    lines.push(
      `  ${q.id.padEnd(w)}  ${q.runs} run${q.runs === 1 ? "" : "s"}, ${q.maxRuns === null ? "no run limit" : `${q.runsLeft} of ${q.maxRuns} left`}`,
    );
  }
  if (s.budgets.length) {
    lines.push("privacy budget (epsilon)");
    for (const b of s.budgets)
      lines.push(`  ${b.party}: ${eps(b.left)} of ${eps(b.budget)} left (${eps(b.spent)} spent)`);
  }
  lines.push(
    `audit       ${s.audit.entries} entries verified, head ${s.audit.head.seq} ${s.audit.head.hash}`,
  );
  return lines;
}

export function registerStatusCommand(program: Command): void {
  const cmd = program
    .command("status")
    .description(
      "attest, then show datasets loaded, approvals, runs and privacy budget left, the enclave's uptime",
    );
  addClientOptions(cmd).action((f: ClientFlags) =>
    run(async () => {
      const client = await openClient(f);
      const s = await cleanroomStatus(client);
      const url = client.host.baseUrl.replace(/\/api\/v1$/, "");
      if (f.json) printJson({ url, ...s });
      else for (const line of statusLines(s, url)) process.stdout.write(`${line}\n`);
      return 0;
    }, f.json),
  );
}
