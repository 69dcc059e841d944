import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseCsv } from "../../client/sdk/csv.js";
import { hashCsv, normalizeEmail, normalizePhone, sha256Hex } from "../../client/sdk/hash-ids.js";

describe("email normalisation", () => {
  it.each([
    ["John_Smith@Example.COM", "john_smith@example.com"],
    ["  \tjane.doe@example.org \n", "jane.doe@example.org"],
    ["Jane.Doe+news@Gmail.com", "janedoe@gmail.com"],
    ["j.a.n.e@googlemail.com", "jane@googlemail.com"],
    ["jane+a+b@gmail.com", "jane@gmail.com"],
    // Dots and +tags are significant outside Google's domains.
    ["jane.doe+news@example.com", "jane.doe+news@example.com"],
  ])("%j → %j", (input, expected) => {
    expect(normalizeEmail(input)).toBe(expected);
  });

  it("applies the gmail rule only when asked", () => {
    expect(normalizeEmail("Jane.Doe+x@gmail.com", { gmailRule: false })).toBe("jane.doe+x@gmail.com");
  });

  it.each(["", "no-at-sign", "a@b", "a b@example.com", "@example.com", "a@@example.com", "+tag@gmail.com"])(
    "refuses %j",
    (input) => {
      expect(() => normalizeEmail(input)).toThrow(expect.objectContaining({ code: "ERR_NORMALIZE" }));
    },
  );

  it("hashes as the platforms publish (Meta's example)", async () => {
    expect(await sha256Hex(normalizeEmail(" John_Smith@gmail.com "))).toBe(
      "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f",
    );
  });
});

describe("phone normalisation", () => {
  it.each([
    ["+1 (650) 555-1212", {}, "+16505551212"],
    ["(650) 555-1212", { defaultCountryCode: "1" }, "+16505551212"],
    ["650.555.1212", { defaultCountryCode: "+1" }, "+16505551212"],
    ["+44 20 7946 0958", {}, "+442079460958"],
    ["020 7946 0958", { defaultCountryCode: "44" }, "+442079460958"],
    ["0044 20-7946-0958", {}, "+442079460958"],
    ["06 1234 5678", { defaultCountryCode: "39" }, "+390612345678"],
    ["+49 (0)30/123456", {}, "+4930123456"],
    ["+44 (0)20 7946 0958", {}, "+442079460958"],
  ])("%j %j → %j", (input, o, expected) => {
    expect(normalizePhone(input, o)).toBe(expected);
  });

  it.each([
    ["650 555 1212", {}],
    ["+1 650 CALL NOW", {}],
    ["12", { defaultCountryCode: "1" }],
    ["+1234567890123456", {}],
    ["5551212", { defaultCountryCode: "1234" }],
  ])("refuses %j %j", (input, o) => {
    expect(() => normalizePhone(input, o)).toThrow(expect.objectContaining({ code: "ERR_NORMALIZE" }));
  });
});

describe("idempotence", () => {
  const local = fc
    .stringMatching(/^[A-Za-z0-9._+-]{1,20}$/)
    .filter((s) => !/^[.+]/.test(s) && !s.startsWith("+"));
  const domain = fc.constantFrom("gmail.com", "GoogleMail.com", "example.com", "Mail.Example.ORG");
  const ws = fc.constantFrom("", " ", "\t", "  \n");

  it("normalising an email twice changes nothing", () => {
    fc.assert(
      fc.property(ws, local, domain, ws, fc.boolean(), (a, l, d, b, gmailRule) => {
        let once: string;
        try {
          once = normalizeEmail(`${a}${l}@${d}${b}`, { gmailRule });
        } catch {
          return; // not every generated local part is an address (e.g. only dots after the rule)
        }
        expect(normalizeEmail(once, { gmailRule })).toBe(once);
      }),
    );
  });

  it("normalising a phone number twice changes nothing", () => {
    const sep = fc.constantFrom("", " ", "-", ".", "/");
    const groups = fc.array(fc.stringMatching(/^[0-9]{1,4}$/), { minLength: 2, maxLength: 4 });
    fc.assert(
      fc.property(
        fc.constantFrom("+", "00", ""),
        fc.stringMatching(/^[1-9][0-9]{0,2}$/),
        groups,
        sep,
        (prefix, cc, g, s) => {
          const input = prefix === "" ? g.join(s) : `${prefix}${cc}${s}${g.join(s)}`;
          let once: string;
          try {
            once = normalizePhone(input, { defaultCountryCode: cc });
          } catch {
            return; // too short or too long for E.164
          }
          expect(once).toMatch(/^\+[1-9][0-9]{6,14}$/);
          expect(normalizePhone(once, { defaultCountryCode: cc })).toBe(once);
        },
      ),
    );
  });
});

async function collect(chunks: string[], column: string, kind: "email" | "phone"): Promise<string> {
  let out = "";
  for await (const piece of hashCsv(chunks, { column, kind, defaultCountryCode: "1" })) out += piece;
  return out;
}

describe("hashCsv", () => {
  const input =
    'id,email,note\r\n1, Jane.Doe@Gmail.com ,"says ""hi"", twice"\r\n2,,empty\r\n3,bob@example.com,"multi\nline"\r\n';

  it("replaces only the named column, keeping quoting and empty cells", async () => {
    const out = parseCsv(await collect([input], "email", "email"));
    expect(out).toEqual([
      ["id", "email", "note"],
      ["1", await sha256Hex("janedoe@gmail.com"), 'says "hi", twice'],
      ["2", "", "empty"],
      ["3", await sha256Hex("bob@example.com"), "multi\nline"],
    ]);
  });

  it("gives the same output however the input is split into chunks", async () => {
    const whole = await collect([input], "email", "email");
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(fc.integer({ min: 1, max: input.length - 1 }), { maxLength: 8 }),
        async (cuts) => {
          const points = [0, ...cuts.sort((a, b) => a - b), input.length];
          const chunks = points.slice(1).map((end, i) => input.slice(points[i], end));
          expect(await collect(chunks, "email", "email")).toBe(whole);
        },
      ),
      { numRuns: 50 },
    );
  });

  it("names the record and column of a value that does not normalise, and a missing column", async () => {
    await expect(collect(["phone\n+16505551212\nnot a phone\n"], "phone", "phone")).rejects.toMatchObject({
      code: "ERR_NORMALIZE",
      message: "record 3, column phone: not a phone number",
    });
    await expect(collect(["a,b\n1,2\n"], "email", "email")).rejects.toMatchObject({
      code: "ERR_CSV",
      row: 1,
      message: "csv record 1: header has no column email (columns: a, b)",
    });
    await expect(collect(['email\n"unterminated\n'], "email", "email")).rejects.toMatchObject({
      code: "ERR_CSV",
    });
  });
});
