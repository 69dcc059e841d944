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
      },
    ],
    queries: [
      {
        id: "conversions-by-campaign",
        description: "Purchases after an impression, per campaign",
        sql: "SELECT campaign, count(DISTINCT p.email_sha256) AS buyers, sum(amount) AS revenue FROM purchases p JOIN impressions i USING (email_sha256) WHERE day >= $since GROUP BY campaign",
        parameters: [{ name: "since", type: "DATE" }],
        runners: [a.id, b.id],
        recipients: [a.id],
        policy: {
          kind: "aggregate",
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
        id: "overlap-rows",
        sql: "SELECT email_sha256 FROM purchases JOIN impressions USING (email_sha256)",
        parameters: [],
        runners: [b.id],
        recipients: [b.id],
        policy: { kind: "row-level", minDistinctIdentities: 1, allowedColumns: ["email_sha256"] },
      },
    ],
  };
}

/** Deep copy, so tests can mutate freely. */
export function clone<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}
