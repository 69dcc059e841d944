import { exportJWK, generateKeyPair } from "jose";
import type { Contract } from "../../protocol/contract/types.js";

export interface TestParty {
  id: string;
  privateKey: CryptoKey;
  publicJwk: JsonWebKey;
}

export async function makeParty(id: string): Promise<TestParty> {
  const { privateKey, publicKey } = await generateKeyPair("ES256");
  return { id, privateKey, publicJwk: (await exportJWK(publicKey)) as JsonWebKey };
}

/** Real age recipients (from age-keygen), only their shape matters here. */
const RECIPIENTS = [
  "age1j0u373e9g5lu0stwpptt9njeg0edd4hzset4vty7t432cuafhugqvly5jp",
  "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p",
];

/** A valid two-party contract: an advertiser and a publisher joining on hashed emails. */
export function makeContract(parties: TestParty[]): Contract {
  const [a, b] = parties as [TestParty, TestParty];
  return {
    version: 1,
    id: "acme-news-q3",
    parties: parties.map((p, i) => ({
      id: p.id,
      name: `Party ${i}`,
      signingKey: p.publicJwk,
      ageRecipient: RECIPIENTS[i % RECIPIENTS.length]!,
    })),
    datasets: [
      {
        id: "purchases",
        owner: a.id,
        format: "csv",
        columns: [
          { name: "email_sha256", type: "VARCHAR" },
          { name: "amount", type: "DOUBLE" },
          { name: "day", type: "DATE" },
        ],
        identityColumn: "email_sha256",
        identityFormat: "sha256-hex",
        analysis: {
          joinColumns: [],
          dimensions: ["day"],
          measures: [{ column: "amount", aggregates: ["count", "sum", "avg"] }],
        },
      },
      {
        id: "impressions",
        owner: b.id,
        format: "parquet",
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
        id: "conversions-by-campaign",
        description: "Purchases after an impression, per campaign",
        sql: "SELECT i.campaign AS campaign, count(DISTINCT p.email_sha256) AS buyers, sum(p.amount) AS revenue FROM purchases p JOIN impressions i ON i.email_sha256 = p.email_sha256 WHERE p.day >= $since GROUP BY i.campaign",
        parameters: [{ name: "since", type: "DATE" }],
        runners: [a.id, b.id],
        recipients: [a.id],
        policy: {
          kind: "custom",
          minDistinctIdentities: 50,
          allowedColumns: ["campaign", "buyers", "revenue"],
          maxRuns: 100,
          dp: {
            epsilon: 0.5,
            budget: 5,
            groups: "private",
            columns: [
              { name: "buyers", kind: "count-distinct" },
              { name: "revenue", kind: "sum", decimals: 2 },
            ],
            maxRowsPerIdentity: 10,
            clamp: { lower: 0, upper: 1000 },
          },
        },
      },
      {
        id: "overlap-by-campaign",
        sql: "SELECT i.campaign AS campaign, count(DISTINCT p.email_sha256) AS overlap_users FROM purchases p JOIN impressions i ON i.email_sha256 = p.email_sha256 GROUP BY i.campaign",
        parameters: [],
        runners: [b.id],
        recipients: [b.id],
        policy: {
          kind: "aggregation",
          minDistinctIdentities: 10,
          allowedColumns: ["campaign", "overlap_users"],
        },
      },
    ],
  };
}

/** Deep copy, so tests can mutate freely. */
export function clone<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}
