import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isCleanroomError } from "../../attestation/errors.js";
import {
  formatHeader,
  formatHeaderMacInput,
  MAX_HEADER_BYTES,
  parseHeader,
  type Stanza,
} from "../../protocol/age/header.js";
import { HeaderReader } from "../../protocol/age/header-reader.js";

const enc = new TextEncoder();
const FORMAT = { code: "ERR_AGE_FORMAT" };
const MAC = "A".repeat(43);
const SHARE = "XEl0dJ6y3C7KZkgmgWUicg63EyXJiwBJW8PdYJ/cYBE";
const BODY = "qRS0AMjdjPvZ/WT08U2KL4G+PIooA3hy38SvLpvaC1E";

const header = (lines: string[]) => enc.encode(lines.join("\n"));
const valid = (...stanzaLines: string[]) =>
  header(["age-encryption.org/v1", ...stanzaLines, `--- ${MAC}`, ""]);

const arg = fc.stringMatching(/^[\x21-\x7e]{1,12}$/);
const stanza: fc.Arbitrary<Stanza> = fc.record({
  args: fc.array(arg, { minLength: 1, maxLength: 4 }),
  // Include lengths that fill whole 64-column lines (multiples of 48 bytes).
  body: fc.oneof(
    fc.uint8Array({ maxLength: 200 }),
    fc.integer({ min: 0, max: 4 }).chain((k) => fc.uint8Array({ minLength: 48 * k, maxLength: 48 * k })),
  ),
});

describe("age header parse/format", () => {
  it("parses the spec's example header", () => {
    const bytes = valid(`-> X25519 ${SHARE}`, BODY);
    const { header: h, length } = parseHeader(bytes);
    expect(length).toBe(bytes.length);
    expect(h.stanzas).toHaveLength(1);
    expect(h.stanzas[0]!.args).toEqual(["X25519", SHARE]);
    expect(h.stanzas[0]!.body).toHaveLength(32);
    expect(h.mac).toEqual(new Uint8Array(32));
    expect(new TextDecoder().decode(h.macInput)).toBe(
      `age-encryption.org/v1\n-> X25519 ${SHARE}\n${BODY}\n---`,
    );
  });

  it("round-trips any stanzas, and re-encodes parsed bytes identically", () => {
    fc.assert(
      fc.property(
        fc.array(stanza, { minLength: 1, maxLength: 5 }),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ maxLength: 40 }),
        (stanzas, mac, payload) => {
          const bytes = formatHeader(formatHeaderMacInput(stanzas), mac);
          const withPayload = new Uint8Array([...bytes, ...payload]);
          const { header: h, length } = parseHeader(withPayload);
          expect(length).toBe(bytes.length);
          expect(h.stanzas.map((s) => ({ args: [...s.args], body: s.body }))).toEqual(
            stanzas.map((s) => ({ args: [...s.args], body: s.body })),
          );
          expect(h.mac).toEqual(mac);
          expect(formatHeader(formatHeaderMacInput(h.stanzas), h.mac)).toEqual(bytes);
        },
      ),
    );
  });

  it.each([
    ["unknown version", header(["age-encryption.org/v2", `-> X25519 ${SHARE}`, BODY, `--- ${MAC}`, ""])],
    ["not age", header(["hello world", ""])],
    ["armored", header(["-----BEGIN AGE ENCRYPTED FILE-----", ""])],
    ["CRLF", enc.encode(`age-encryption.org/v1\r\n-> X25519 ${SHARE}\r\n${BODY}\r\n--- ${MAC}\r\n`)],
    ["no stanza", header(["age-encryption.org/v1", `--- ${MAC}`, ""])],
    ["missing final LF", header(["age-encryption.org/v1", `-> X25519 ${SHARE}`, BODY, `--- ${MAC}`])],
    ["missing MAC line", header(["age-encryption.org/v1", `-> X25519 ${SHARE}`, BODY, ""])],
    ["body line over 64 columns", valid("-> X", "A".repeat(68))],
    ["full body line without final short line", valid("-> X", "A".repeat(64))],
    ["padded base64", valid("-> X", "AA==")],
    ["non-zero trailing bits", valid("-> X", "AB")],
    ["impossible base64 length", valid("-> X", "AAAAA")],
    ["space in body", valid("-> X", "AA AA")],
    ["empty argument", valid("-> X25519  abc", "")],
    ["no space after arrow", valid("->X25519", "")],
    ["arrow without argument", valid("-> ", "")],
    ["non-ASCII byte", valid("-> X\u00e9", "")],
    ["NUL byte", valid("-> X\u0000", "")],
    ["MAC without space", header(["age-encryption.org/v1", "-> X", "", `---${MAC}`, ""])],
    ["short MAC", header(["age-encryption.org/v1", "-> X", "", `--- ${MAC.slice(1)}`, ""])],
    ["long MAC", header(["age-encryption.org/v1", "-> X", "", `--- ${MAC}AA`, ""])],
    ["extra MAC field", header(["age-encryption.org/v1", "-> X", "", `--- ${MAC} x`, ""])],
  ])("refuses %s", (_name, bytes) => {
    expect(() => parseHeader(bytes)).toThrow(expect.objectContaining(FORMAT));
  });

  it("bounds the header size", () => {
    const many = Array.from({ length: 1000 }, () => [`-> X25519 ${SHARE}`, BODY]).flat();
    const big = valid(...many);
    expect(big.length).toBeGreaterThan(MAX_HEADER_BYTES);
    expect(() => parseHeader(big)).toThrow(expect.objectContaining(FORMAT));
    expect(parseHeader(big, big.length).header.stanzas).toHaveLength(1000);
    // The stream reader gives up at the limit, however the input is split.
    const reader = new HeaderReader();
    expect(() => {
      for (let o = 0; o < big.length; o += 4096) reader.push(big.subarray(o, o + 4096));
    }).toThrow(expect.objectContaining(FORMAT));
  });

  it("refuses formatting what it would not parse", () => {
    expect(() => formatHeaderMacInput([])).toThrow(expect.objectContaining(FORMAT));
    expect(() => formatHeaderMacInput([{ args: ["a b"], body: new Uint8Array(0) }])).toThrow(
      expect.objectContaining(FORMAT),
    );
    expect(() => formatHeaderMacInput([{ args: [], body: new Uint8Array(0) }])).toThrow(
      expect.objectContaining(FORMAT),
    );
  });
});

describe("HeaderReader (stream framing)", () => {
  it("frames the header the same way whatever the piece sizes, keeping what follows", () => {
    fc.assert(
      fc.property(
        fc.array(stanza, { minLength: 1, maxLength: 4 }),
        fc.uint8Array({ maxLength: 100 }),
        fc.integer({ min: 1, max: 97 }),
        (stanzas, payload, pieceSize) => {
          const hdr = formatHeader(formatHeaderMacInput(stanzas), new Uint8Array(32));
          const all = new Uint8Array([...hdr, ...payload]);
          const reader = new HeaderReader();
          let framed: ReturnType<HeaderReader["push"]>;
          const rest: number[] = [];
          for (let o = 0; o < all.length; o += pieceSize) {
            const piece = all.subarray(o, o + pieceSize);
            if (framed) rest.push(...piece);
            else {
              framed = reader.push(piece);
              if (framed) for (const r of framed.rest) rest.push(...r);
            }
          }
          expect(framed).toBeDefined();
          expect(framed!.header).toEqual(parseHeader(hdr).header);
          expect(new Uint8Array(rest)).toEqual(payload);
        },
      ),
    );
  });

  it("fails fast on input that is not age", () => {
    expect(() => new HeaderReader().push(enc.encode("PK\u0003\u0004 zip\n..."))).toThrow(
      expect.objectContaining(FORMAT),
    );
  });

  it("reports an input that ends inside the header", () => {
    const reader = new HeaderReader();
    expect(reader.push(valid(`-> X25519 ${SHARE}`, BODY).subarray(0, 50))).toBeUndefined();
    expect(() => reader.end()).toThrow(expect.objectContaining(FORMAT));
  });

  it("raises only typed errors on arbitrary header-like text", () => {
    const line = fc.oneof(
      fc.constant("age-encryption.org/v1"),
      fc.constant(`-> X25519 ${SHARE}`),
      fc.constant(BODY),
      fc.constant(`--- ${MAC}`),
      fc.stringMatching(/^[-> A-Za-z0-9+/=\r\t]{0,70}$/),
    );
    fc.assert(
      fc.property(fc.array(line, { maxLength: 8 }), fc.boolean(), (lines, lf) => {
        const bytes = enc.encode(lines.join("\n") + (lf ? "\n" : ""));
        try {
          parseHeader(bytes);
        } catch (e) {
          expect(isCleanroomError(e) && e.code === "ERR_AGE_FORMAT").toBe(true);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
