/** Shared fixtures: two parties with real keys, a contract between them, a simulated platform. */
import { toHex } from "../../attestation/bytes.js";
import type { EvidencePolicy } from "../../attestation/evidence.js";
import type { SimPlatform } from "../../attestation/sim/platform.js";
import {
  generatePartyKeys,
  loadPartyKeys,
  type PartyKeyFile,
  type PartyKeys,
} from "../../client/sdk/keys.js";
import type { Contract } from "../../protocol/contract/types.js";

export interface TestParty {
  id: string;
  file: PartyKeyFile;
  keys: PartyKeys;
}

export async function makeParty(id: string): Promise<TestParty> {
  const file = await generatePartyKeys();
  return { id, file, keys: await loadPartyKeys(file) };
}

export function makeContract(a: TestParty, b: TestParty): Contract {
  return {
    version: 1,
    id: "acme-news-q3",
    parties: [a, b].map((p) => ({
      id: p.id,
      name: p.id.toUpperCase(),
      signingKey: p.keys.signingKey,
      ageRecipient: p.keys.ageRecipient,
    })),
    datasets: [
      {
        id: "purchases",
        owner: a.id,
        format: "csv",
        columns: [
          { name: "email_sha256", type: "VARCHAR" },
          { name: "amount", type: "DOUBLE" },
        ],
        identityColumn: "email_sha256",
        identityFormat: "sha256-hex",
        analysis: { joinColumns: [], dimensions: ["amount"], measures: [] },
      },
      {
        id: "impressions",
        owner: b.id,
        format: "csv",
        columns: [
          { name: "email_sha256", type: "VARCHAR" },
          { name: "campaign", type: "VARCHAR" },
        ],
        identityColumn: "email_sha256",
        analysis: { joinColumns: [], dimensions: ["campaign"], measures: [] },
      },
    ],
    queries: [
      {
        id: "buyers-by-campaign",
        sql: "SELECT i.campaign AS campaign, count(DISTINCT p.email_sha256) AS buyers FROM purchases p JOIN impressions i ON i.email_sha256 = p.email_sha256 WHERE p.amount >= $min GROUP BY i.campaign",
        parameters: [{ name: "min", type: "DOUBLE" }],
        runners: [a.id, b.id],
        recipients: [a.id],
        policy: { kind: "aggregation", minDistinctIdentities: 50, allowedColumns: ["campaign", "buyers"] },
      },
    ],
  };
}

export function simPolicy(p: SimPlatform): EvidencePolicy {
  return {
    measurements: [toHex(p.measurement)],
    trustedSimRoots: [new Uint8Array(p.amd.ark.rawData)],
  };
}
