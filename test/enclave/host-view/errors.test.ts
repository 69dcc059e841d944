/**
 * What the host sees of a refusal, over real sockets (partner SDK → host → enclave, every byte of
 * the host's two sockets recorded): the code, the fixed message for that code and an opaque
 * `detail` (an age file to the party whose request failed), relayed untouched. The row, column,
 * parameter and reason are nowhere in the host's bytes or logs, while the party's SDK (and so the
 * CLI) shows them, after checking the enclave signed them for its request.
 */
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { reportError } from "../../../client/cli/output.js";
import { grant, HostError, query, uploadFile } from "../../../client/node/index.js";
import { decryptBytes } from "../../../protocol/age/stream-node.js";
import { DETAIL_BYTES } from "../../../protocol/jose/error-detail.js";
import { type Collaboration, startCollaboration } from "../../../scripts/demo/flow.js";
import { useCaseRows } from "../../../scripts/demo/usecases.js";
import { startTestStack, type TestStack } from "../../e2e/stack.js";

const tag = randomBytes(6).toString("hex");
/** The data row (1-based) whose amount is not a number. */
const BAD_ROW = 37;
const BAD_AMOUNT = `twelve${tag}`;
const PARAM = `secret_param_${tag}`;
const BAD_DATE = `CANARYdate${tag}`;

let stack: TestStack;
let room: Collaboration;

function csv(badRow?: number): string {
  const lines = [...useCaseRows("purchases", { identities: 400 })].join("").trimEnd().split("\n");
  if (badRow !== undefined) {
    const cells = lines[badRow]!.split(",");
    cells[2] = BAD_AMOUNT;
    lines[badRow] = cells.join(",");
  }
  return `${lines.join("\n")}\n`;
}

/** Uploads `text` as the advertiser's purchases and grants it; the error, if it fails. */
async function load(text: string, name: string): Promise<unknown> {
  const file = join(stack.dir, name);
  writeFileSync(file, text);
  const c = room.clients.advertiser;
  const up = await uploadFile(c, file);
  return grant(c, { dataset: "advertiser_purchases", ciphertextDigest: up.digest }).then(
    () => undefined,
    (e: unknown) => e,
  );
}

/** Every `"error":{...}` object in the host's recorded bytes, both sockets, both directions. */
function errorsOnWire(code: string): Record<string, string>[] {
  const text = Buffer.concat(stack.wire).toString("latin1");
  return [...text.matchAll(/"error":(\{[^{}]*\})/g)]
    .map((m) => JSON.parse(m[1]!) as Record<string, string>)
    .filter((e) => e.code === code);
}

const wireText = () => Buffer.concat(stack.wire).toString("latin1");
const printed = (e: unknown) => {
  let out = "";
  reportError(e, { write: (s: string) => (out += s) } as unknown as NodeJS.WriteStream);
  return out;
};

beforeAll(async () => {
  stack = await startTestStack();
  room = await startCollaboration(stack.url, stack.simDir);
});
afterAll(() => stack.stop());

describe("an ingest refused for a bad row", () => {
  let refusal: unknown;
  beforeAll(async () => {
    refusal = await load(csv(BAD_ROW), "bad.csv");
  });

  it("reaches the owner's SDK with the row, column and dataset, and the CLI prints them", () => {
    expect(refusal).toBeInstanceOf(HostError);
    expect(refusal).toMatchObject({
      status: 400,
      serverCode: "ERR_INGEST_SCHEMA",
      serverMessage: "data does not match the dataset's schema",
      detail: {
        code: "ERR_INGEST_SCHEMA",
        row: BAD_ROW,
        column: "amount",
        dataset: "advertiser_purchases",
      },
    });
    expect(printed(refusal)).toBe(
      `error ERR_HOST: host answered 400 ERR_INGEST_SCHEMA: ingest: row ${BAD_ROW} column amount does not match its type (dataset advertiser_purchases)\n`,
    );
  });

  it("gives the host only the code, the fixed message and a fixed-size age file to the owner", async () => {
    const seen = errorsOnWire("ERR_INGEST_SCHEMA");
    // Enclave → host and host → partner: the same body, relayed untouched.
    expect(seen.length).toBe(2);
    expect(new Set(seen.map((e) => JSON.stringify(e))).size).toBe(1);
    const e = seen[0]!;
    expect(Object.keys(e).sort()).toEqual(["code", "detail", "message"]);
    expect(e.message).toBe("data does not match the dataset's schema");
    const sealed = Buffer.from(e.detail!, "base64");
    expect(sealed.subarray(0, 22).toString()).toBe("age-encryption.org/v1\n");
    const keys = room.clients;
    expect((await decryptBytes(sealed, keys.advertiser.keys.ageIdentity)).length).toBe(DETAIL_BYTES);
    await expect(decryptBytes(sealed, keys.publisher.keys.ageIdentity)).rejects.toMatchObject({
      code: "ERR_AGE_NO_IDENTITY",
    });
  });

  it("puts no row, column, value or reason in the host's bytes or logs", () => {
    const wire = wireText();
    const logs = stack.logs.join("\n");
    for (const text of [`row ${BAD_ROW}`, "does not match its type", BAD_AMOUNT, `"row":`]) {
      expect(wire).not.toContain(text);
      expect(logs).not.toContain(text);
    }
  });

  it("leaves nothing loaded: the right file loads with a new grant", async () => {
    expect(await load(csv(), "good.csv")).toBeUndefined();
  });
});

describe("a query refused for its parameters", () => {
  let undeclared: unknown;
  let notADate: unknown;
  beforeAll(async () => {
    const c = room.clients.advertiser;
    undeclared = await query(c, {
      queryId: "closed-loop",
      params: { campaign: "spring24", [PARAM]: "x" },
      format: "json",
    }).catch((e: unknown) => e);
    notADate = await query(c, {
      queryId: "last-touch",
      params: { start: BAD_DATE, end: "2024-05-01" },
      format: "json",
    }).catch((e: unknown) => e);
  });

  it("names the parameter for the requester", () => {
    expect(undeclared).toMatchObject({
      serverCode: "ERR_QUERY_PARAMETER",
      detail: { code: "ERR_QUERY_PARAMETER", parameter: PARAM, message: `parameter ${PARAM}: not declared` },
    });
    expect(printed(undeclared)).toContain(`parameter ${PARAM}: not declared`);
    expect(notADate).toMatchObject({
      serverCode: "ERR_QUERY_PARAMETER",
      detail: { parameter: "start", message: "parameter start: not a valid DATE" },
    });
  });

  it("gives the host the code and the fixed message only; the name and value are nowhere in its bytes", () => {
    const seen = errorsOnWire("ERR_QUERY_PARAMETER");
    expect(seen.length).toBe(4);
    for (const e of seen) {
      expect(Object.keys(e).sort()).toEqual(["code", "detail", "message"]);
      expect(e.message).toBe("parameters do not match the query's declaration");
    }
    const wire = wireText();
    const logs = stack.logs.join("\n");
    for (const text of [PARAM, BAD_DATE, "not declared", "not a valid DATE"]) {
      expect(wire).not.toContain(text);
      expect(logs).not.toContain(text);
    }
  });
});
