/**
 * docs/contract.schema.json against the validator (protocol/contract/validate.ts): the same
 * verdict on the demo contracts, the template `cleanroom contract init` writes and the test
 * fixtures, and on broken variants of each (every one a rule both must enforce). The template
 * itself passes the review every party reads before signing, and its sample data, hashed, passes
 * `check` against its datasets.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Ajv2020 } from "ajv/dist/2020.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { reviewContractWithDuckDb } from "../../client/node/review.js";
import { templateContract } from "../../client/sdk/contract-template.js";
import type { Contract } from "../../protocol/contract/types.js";
import { validateContract } from "../../protocol/contract/validate.js";
import { useCaseContract } from "../../scripts/demo/usecases.js";
import { makeContract, makeParty, type TestParty } from "../client/setup.js";
import { makeContract as protocolContract, makeParty as protocolParty } from "../protocol/fixtures.js";
import { cli, contractInitArgs, hashEmailsArgs } from "./main-cli.js";

const schema = JSON.parse(
  await readFile(new URL("../../docs/contract.schema.json", import.meta.url), "utf8"),
);
const validateSchema = new Ajv2020({ allErrors: true, strictTypes: true }).compile(schema);

const bySchema = (doc: unknown) => validateSchema(doc) === true;
const byValidator = (doc: unknown) => {
  try {
    validateContract(doc);
    return true;
  } catch {
    return false;
  }
};

let alice: TestParty;
let bob: TestParty;
const contracts: Record<string, Contract> = {};

beforeAll(async () => {
  [alice, bob] = await Promise.all([makeParty("advertiser"), makeParty("publisher")]);
  const party = (p: TestParty) => ({
    id: p.id,
    name: p.id,
    signingKey: p.keys.signingKey,
    ageRecipient: p.keys.ageRecipient,
  });
  contracts.demo = useCaseContract([party(alice), party(bob)]);
  contracts.template = templateContract("trial", { ...party(alice) }, { ...party(bob) });
  contracts.fixture = makeContract(alice, bob);
  contracts.protocol = protocolContract([await protocolParty("a"), await protocolParty("b")]);
});

/** Broken variants: each breaks one rule the schema states. */
const breakages: [string, (c: Contract) => void][] = [
  ["unknown top-level field", (c) => Object.assign(c, { extra: 1 })],
  ["version 2", (c) => Object.assign(c, { version: 2 })],
  ["contract id with upper case", (c) => Object.assign(c, { id: "Acme" })],
  ["a private key in a party", (c) => Object.assign(c.parties[0]!.signingKey, { d: "AAAA" })],
  ["a curve other than P-256", (c) => Object.assign(c.parties[0]!.signingKey, { crv: "P-384" })],
  ["a bad age recipient", (c) => Object.assign(c.parties[0]!, { ageRecipient: "age1xyz" })],
  ["a dataset id with a dash", (c) => Object.assign(c.datasets[0]!, { id: "a-b" })],
  ["an unknown column type", (c) => Object.assign(c.datasets[0]!.columns[0]!, { type: "TEXT" })],
  ["an unknown identity format", (c) => Object.assign(c.datasets[0]!, { identityFormat: "md5" })],
  ["no columns", (c) => Object.assign(c.datasets[0]!, { columns: [] })],
  ["k below the floor", (c) => Object.assign(c.queries[0]!.policy, { minDistinctIdentities: 5 })],
  ["maxRuns 0", (c) => Object.assign(c.queries[0]!.policy, { maxRuns: 0 })],
  ["an unknown rule", (c) => Object.assign(c.queries[0]!.policy, { kind: "free" })],
  [
    "custom without dp",
    (c) => {
      c.queries[0]!.policy = { ...c.queries[0]!.policy, kind: "custom" };
      delete c.queries[0]!.policy.dp;
    },
  ],
  ["a bidirectional override in a name", (c) => Object.assign(c.parties[0]!, { name: "Ac\u202eme" })],
  ["a control character in SQL", (c) => Object.assign(c.queries[0]!, { sql: "SELECT 1\u0007" })],
  [
    "a parameter of an unknown type",
    (c) => c.queries[0]!.parameters.push({ name: "x", type: "INTEGER" as never }),
  ],
  [
    "a reserved parameter name",
    (c) => c.queries[0]!.parameters.push({ name: "__cleanroom_x", type: "BIGINT" }),
  ],
  ["an empty runner list", (c) => Object.assign(c.queries[0]!, { runners: [] })],
];

describe("docs/contract.schema.json agrees with the validator", () => {
  it("accepts every demo and test contract", () => {
    for (const [name, c] of Object.entries(contracts)) {
      expect(byValidator(c), name).toBe(true);
      expect(bySchema(c), `${name}: ${JSON.stringify(validateSchema.errors)}`).toBe(true);
    }
  });

  it.each(breakages)("refuses %s, as the validator does", (_name, breakIt) => {
    for (const c of Object.values(contracts)) {
      const broken = structuredClone(c);
      breakIt(broken);
      expect(byValidator(broken)).toBe(false);
      expect(bySchema(broken)).toBe(false);
    }
  });

  it("dp settings: a public domain is required with public groups and refused without", () => {
    const c = structuredClone(contracts.demo!);
    const q = c.queries.find((x) => x.policy.dp)!;
    const dp = q.policy.dp!;
    const noDomain = structuredClone(c);
    delete noDomain.queries.find((x) => x.id === q.id)!.policy.dp!.domain;
    expect([byValidator(noDomain), bySchema(noDomain)]).toEqual([false, false]);
    const privateWithDomain = structuredClone(c);
    privateWithDomain.queries.find((x) => x.id === q.id)!.policy.dp = { ...dp, groups: "private" };
    expect([byValidator(privateWithDomain), bySchema(privateWithDomain)]).toEqual([false, false]);
  });
});

describe("the template", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "cleanroom-template-"));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("passes the review: every query admitted", async () => {
    const review = await reviewContractWithDuckDb(contracts.template!);
    expect(review.queries.map((q) => [q.id, q.status])).toEqual(
      contracts.template!.queries.map((q) => [q.id, "admitted"]),
    );
  });

  it("contract init writes it with the parties' keys (key file or published public keys), and sample data that checks once hashed", async () => {
    const f = (n: string) => join(dir, n);
    expect((await cli("keygen", "--out", f("adv.key"))).code).toBe(0);
    const pub = await cli("keygen", "--out", f("pub.key"));
    const { writeFile } = await import("node:fs/promises");
    await writeFile(f("pub.public.json"), pub.out);
    const init = await cli(
      ...contractInitArgs({ acme: f("adv.key"), news: f("pub.public.json") }, f("contract.json")),
      "--sample-data",
      "--people",
      "300",
    );
    expect(init.code, init.err).toBe(0);
    const written = JSON.parse(await readFile(f("contract.json"), "utf8"));
    expect(bySchema(written)).toBe(true);
    expect(written.parties.map((p: { id: string }) => p.id)).toEqual(["acme", "news"]);
    expect(written.parties[1].ageRecipient).toBe(JSON.parse(pub.out).ageRecipient);
    for (const [raw, dataset] of [
      ["advertiser_purchases.emails.csv", "advertiser_purchases"],
      ["publisher_exposures.emails.csv", "publisher_exposures"],
    ] as const) {
      const args = ["--contract", f("contract.json"), "--dataset", dataset];
      expect((await cli("check", f(raw), ...args)).code).toBe(1);
      const hashed = f(`${dataset}.csv`);
      const h = await cli(...hashEmailsArgs(f(raw), hashed));
      expect(h.code, h.err).toBe(0);
      const ok = await cli("check", hashed, ...args);
      expect(ok.code, ok.out).toBe(0);
    }
    const twice = await cli(...contractInitArgs({ a: f("adv.key"), b: f("pub.key") }, f("contract.json")));
    expect(twice.err).toBe(
      `error ERR_IO: ${f("contract.json")} already exists; choose another name or remove it first\n`,
    );
  });
});
