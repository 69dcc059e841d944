import fc from "fast-check";
import { it } from "vitest";
import { checkContractQueries } from "../../enclave/sql/check.js";
import { validateContract } from "../../protocol/contract/validate.js";
import { makeContract, makeParty } from "../protocol/fixtures.js";
import { contractOf, riskyQuery } from "./grammar.js";
it("reasons", async () => {
  const parties = makeContract([await makeParty("advertiser"), await makeParty("publisher")]).parties;
  const allowed = ["risky", "uu", ...Array.from({ length: 8 }, (_, i) => [`k${i}`, `v${i}`]).flat()];
  const by = new Map<string, Map<string, number>>();
  for (const q of fc.sample(riskyQuery, { numRuns: 1500, seed: 5 })) {
    let reason = "ADMITTED";
    try { validateContract(contractOf(parties, q, allowed)); await checkContractQueries(contractOf(parties, q, allowed)); } catch (e) { reason = ((e as { reason?: string }).reason ?? (e as Error).message).replace(/:.*$/, "").slice(0, 70); }
    const m = by.get(q.construct) ?? new Map(); m.set(reason, (m.get(reason) ?? 0) + 1); by.set(q.construct, m);
  }
  for (const [c, m] of [...by].sort()) console.log(c.padEnd(28), [...m].map(([r, n]) => `${n}× ${r}`).join(" | "));
}, 600000);
