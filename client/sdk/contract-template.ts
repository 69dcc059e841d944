/**
 * A contract to start from (`cleanroom contract init`): two parties with their own public keys,
 * an advertiser's purchases and a publisher's ad exposures keyed by hashed e-mails, and three
 * approved queries a measurement collaboration usually begins with. The parties edit it (ids,
 * columns, queries, k, budgets), review it (`cleanroom contract review`) and sign it.
 * `sampleRows` makes matching plaintext to try the whole flow with, e-mails still in the clear,
 * so that `cleanroom hash-ids` is part of the trial as it is of the real thing.
 */
import type {
  ApprovedQuery,
  ColumnType,
  Contract,
  Dataset,
  Measure,
  Party,
} from "../../protocol/contract/types.js";
import type { PartyPublicKeys } from "./keys.js";

export const TEMPLATE_DATASETS = {
  purchases: "advertiser_purchases",
  exposures: "publisher_exposures",
} as const;

/** The column that holds raw e-mails in the sample files, before `hash-ids` makes it `user_id`. */
export const SAMPLE_EMAIL_COLUMN = "email";

export interface TemplateParty extends PartyPublicKeys {
  id: string;
  name?: string;
}

/** The template's k: every query's output rows count at least this many distinct people. */
export const TEMPLATE_K = 50;

/**
 * A CSV dataset keyed by hashed e-mails in `user_id`, then `columns` (name: type), each a
 * dimension unless `measures` names it.
 */
function hashedCsv(
  id: string,
  owner: string,
  columns: Record<string, ColumnType>,
  measures: Measure[] = [],
): Dataset {
  return {
    id,
    owner,
    format: "csv",
    columns: [
      { name: "user_id", type: "VARCHAR" },
      ...Object.entries(columns).map(([name, type]) => ({ name, type })),
    ],
    identityColumn: "user_id",
    identityFormat: "sha256-hex",
    analysis: {
      joinColumns: [],
      dimensions: Object.keys(columns).filter((c) => !measures.some((m) => m.column === c)),
      measures,
    },
  };
}

/** The advertiser's purchases: when, how much (counted, summed, averaged), of what category. */
export const purchasesDataset = (owner: string): Dataset =>
  hashedCsv(
    TEMPLATE_DATASETS.purchases,
    owner,
    { purchase_ts: "TIMESTAMP", amount: "DOUBLE", category: "VARCHAR" },
    [{ column: "amount", aggregates: ["count", "sum", "avg"] }],
  );

/** The publisher's ad exposures: when, campaign, channel, arm and the person's segment, then `traits`. */
export const exposuresDataset = (owner: string, traits: Record<string, ColumnType> = {}): Dataset =>
  hashedCsv(TEMPLATE_DATASETS.exposures, owner, {
    exposure_ts: "TIMESTAMP",
    campaign: "VARCHAR",
    channel: "VARCHAR",
    arm: "VARCHAR",
    segment: "VARCHAR",
    ...traits,
  });

const { purchases, exposures } = TEMPLATE_DATASETS;

/** Audience overlap: publisher users per segment, and how many of them are advertiser customers. */
export const audienceOverlapQuery = (runners: string[], recipients: string[]): ApprovedQuery => ({
  id: "audience-overlap",
  sql: `SELECT e.segment AS segment,
       count(DISTINCT e.user_id) AS publisher_users,
       count(DISTINCT p.user_id) AS overlap_users
FROM ${exposures} e
LEFT JOIN ${purchases} p ON p.user_id = e.user_id
GROUP BY e.segment`,
  parameters: [],
  runners,
  recipients,
  policy: {
    kind: "aggregation",
    minDistinctIdentities: TEMPLATE_K,
    allowedColumns: ["segment", "publisher_users", "overlap_users"],
  },
});

/**
 * Last-touch attribution, run and received by `advertiser`: each purchase credited to the channel
 * of the last earlier exposure. The correlated subquery is outside the aggregation grammar, so it
 * runs under the custom rule: per person, at most 3 purchases, each clamped to [0, 200], noised
 * (epsilon 1 per run, a budget of 10), over the declared channels.
 */
export const lastTouchQuery = (advertiser: string): ApprovedQuery => ({
  id: "last-touch",
  sql: `SELECT e.channel AS channel,
       count(*) AS conversions,
       sum(p.amount) AS revenue
FROM ${purchases} p
JOIN ${exposures} e
  ON e.user_id = p.user_id
  AND e.exposure_ts = (SELECT max(x.exposure_ts) FROM ${exposures} x
                       WHERE x.user_id = p.user_id AND x.exposure_ts <= p.purchase_ts)
WHERE p.purchase_ts >= $start AND p.purchase_ts < $end
GROUP BY e.channel`,
  parameters: [
    { name: "start", type: "DATE" },
    { name: "end", type: "DATE" },
  ],
  runners: [advertiser],
  recipients: [advertiser],
  policy: {
    kind: "custom",
    minDistinctIdentities: TEMPLATE_K,
    allowedColumns: ["channel", "conversions", "revenue"],
    dp: {
      epsilon: 1,
      budget: 10,
      groups: "public",
      domain: [{ column: "channel", values: ["ctv", "display", "social"] }],
      maxRowsPerIdentity: 3,
      clamp: { lower: 0, upper: 200 },
      columns: [
        { name: "conversions", kind: "count" },
        { name: "revenue", kind: "sum", decimals: 2 },
      ],
    },
  },
});

/** `q` with a description for the parties who review it (kept after its id). */
const described = ({ id, ...q }: ApprovedQuery, description: string): ApprovedQuery => ({
  id,
  description,
  ...q,
});

/**
 * The template for `advertiser` (owns the purchases) and `publisher` (owns the exposures). Both
 * run and receive the closed-loop measurement (at most 100 runs); the publisher runs the audience
 * overlap and both receive it; the advertiser runs last-touch attribution under differential
 * privacy (epsilon 1 per run, a budget of 10).
 */
export function templateContract(id: string, advertiser: TemplateParty, publisher: TemplateParty): Contract {
  const party = (p: TemplateParty): Party => ({
    id: p.id,
    name: p.name ?? p.id,
    signingKey: { kty: p.signingKey.kty, crv: p.signingKey.crv, x: p.signingKey.x, y: p.signingKey.y },
    ageRecipient: p.ageRecipient,
  });
  const a = advertiser.id;
  const p = publisher.id;
  return {
    version: 1,
    id,
    parties: [party(advertiser), party(publisher)],
    datasets: [purchasesDataset(a), exposuresDataset(p)],
    queries: [
      {
        id: "closed-loop",
        description: "conversion within 30 days of exposure, exposed arm against control arm",
        sql: `SELECT e.arm AS arm,
       count(DISTINCT e.user_id) AS users,
       count(DISTINCT p.user_id) AS converters
FROM ${exposures} e
LEFT JOIN ${purchases} p
  ON p.user_id = e.user_id AND p.purchase_ts >= e.exposure_ts
  AND p.purchase_ts < e.exposure_ts + INTERVAL 30 DAY
WHERE e.campaign = $campaign
GROUP BY e.arm`,
        parameters: [{ name: "campaign", type: "VARCHAR" }],
        runners: [a, p],
        recipients: [a, p],
        policy: {
          kind: "aggregation",
          minDistinctIdentities: TEMPLATE_K,
          allowedColumns: ["arm", "users", "converters"],
          maxRuns: 100,
        },
      },
      described(
        audienceOverlapQuery([p], [a, p]),
        "publisher users per segment, and how many of them are advertiser customers",
      ),
      described(
        lastTouchQuery(a),
        "each purchase credited to the channel of the last exposure before it, with noise",
      ),
    ],
  };
}

/** A small deterministic generator (mulberry32): sample data must repeat from run to run. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

const SEGMENTS = ["sports", "news", "finance", "lifestyle"];
const CHANNELS = ["ctv", "display", "social"];

const time = (day: number, hour: number): string =>
  new Date(Date.UTC(2024, 3, 1 + day, hour)).toISOString().replace("T", " ").replace(".000Z", "");

/** Some addresses as people type them: the same person, the same hash after normalisation. */
const email = (i: number, r: () => number): string =>
  r() < 0.2 ? ` Person${i}@Example.com` : `person${i}@example.com`;

/**
 * Sample CSV lines (header first) for one template dataset, with e-mails in the clear in the
 * `email` column: `people` publisher users, 70 % in the exposed arm of campaign "spring24", 1-3
 * exposures each in April 2024; purchases by 40 % of exposed and 20 % of control users after
 * their first exposure, and by customers the publisher does not know.
 */
export function* sampleRows(
  dataset: keyof typeof TEMPLATE_DATASETS,
  people: number,
  seed = 1,
): Generator<string> {
  const r = random(seed * 2 + (dataset === "purchases" ? 1 : 0));
  if (dataset === "exposures") {
    yield `${SAMPLE_EMAIL_COLUMN},exposure_ts,campaign,channel,arm,segment\n`;
    for (let i = 0; i < people; i++) {
      const arm = i % 10 < 7 ? "exposed" : "control";
      const segment = SEGMENTS[i % SEGMENTS.length]!;
      const first = i % 20;
      const n = 1 + (i % 3);
      for (let j = 0; j < n; j++) {
        const channel = CHANNELS[Math.floor(r() * CHANNELS.length)]!;
        yield `${email(i, r)},${time(first + j * 2, 10 + j)},spring24,${channel},${arm},${segment}\n`;
      }
    }
    return;
  }
  yield `${SAMPLE_EMAIL_COLUMN},purchase_ts,amount,category\n`;
  for (let i = 0; i < people; i++) {
    const exposed = i % 10 < 7;
    if (r() >= (exposed ? 0.4 : 0.2)) continue;
    const category = r() < 0.5 ? "shoes" : "apparel";
    yield `${email(i, r)},${time((i % 20) + 5, 15)},${(20 + r() * 180).toFixed(2)},${category}\n`;
  }
  for (let i = people; i < Math.floor(people * 1.5); i++) {
    yield `${email(i, r)},${time(Math.floor(r() * 25), 12)},${(10 + r() * 90).toFixed(2)},shoes\n`;
  }
}
