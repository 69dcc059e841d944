import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { EvidenceFormatError, UsageError } from "../../attestation/errors.js";
import {
  type CertTableEntry,
  certsFromTable,
  encodeCertTable,
  GUID_ARK,
  GUID_ASK,
  GUID_VCEK,
  GUID_VLEK,
  parseCertTable,
} from "../../attestation/snp/certtable.js";

const guidArb = fc.uuid().filter((g) => g !== "00000000-0000-0000-0000-000000000000");
const entriesArb = fc.uniqueArray(
  fc.record({ guid: guidArb, data: fc.uint8Array({ minLength: 1, maxLength: 64 }) }),
  { selector: (e) => e.guid, maxLength: 6 },
);

function entry(guidHex: string, offset: number, length: number): Uint8Array {
  const b = new Uint8Array(24);
  b.set(Buffer.from(guidHex.replaceAll("-", ""), "hex"));
  new DataView(b.buffer).setUint32(16, offset, true);
  new DataView(b.buffer).setUint32(20, length, true);
  return b;
}
const table = (...parts: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts));
const ZERO = new Uint8Array(24);

describe("certificate table", () => {
  it("GUIDs are stored in RFC 4122 byte order (as AMD's sev-tool and virtee/sev write them)", () => {
    const t = encodeCertTable([{ guid: GUID_VCEK, data: new Uint8Array([1]) }]);
    expect(Buffer.from(t.subarray(0, 16)).toString("hex")).toBe("63da758de6644564adc5f4b93be8accd");
  });

  it("round trip (fast-check)", () => {
    fc.assert(
      fc.property(entriesArb, (entries) => {
        expect(parseCertTable(encodeCertTable(entries))).toEqual(entries);
      }),
    );
  });

  it("trailing zero padding after the data is accepted (kernel buffers are page sized)", () => {
    const t = encodeCertTable([{ guid: GUID_ASK, data: new Uint8Array([7, 8]) }]);
    const padded = new Uint8Array(4096);
    padded.set(t);
    expect(parseCertTable(padded)).toEqual([{ guid: GUID_ASK, data: new Uint8Array([7, 8]) }]);
  });

  it("mutations raise only EvidenceFormatError (fast-check)", () => {
    fc.assert(
      fc.property(entriesArb, fc.nat(), fc.integer({ min: 0, max: 255 }), (entries, at, v) => {
        const t = encodeCertTable(entries);
        const m = t.slice();
        if (m.length > 0) m[at % m.length] = v;
        try {
          parseCertTable(m);
        } catch (e) {
          expect(e).toBeInstanceOf(EvidenceFormatError);
        }
        try {
          parseCertTable(t.subarray(0, at % (t.length + 1)));
        } catch (e) {
          expect(e).toBeInstanceOf(EvidenceFormatError);
        }
      }),
    );
  });

  const refused: [string, Uint8Array][] = [
    ["empty", new Uint8Array()],
    ["no terminator", entry(GUID_VCEK, 24, 1)],
    ["offset inside the table", table(entry(GUID_VCEK, 0, 4), ZERO)],
    ["past the end", table(entry(GUID_VCEK, 48, 10), ZERO, new Uint8Array(9))],
    ["zero length", table(entry(GUID_VCEK, 48, 0), ZERO, new Uint8Array(4))],
    ["overlap", table(entry(GUID_VCEK, 72, 4), entry(GUID_ASK, 74, 4), ZERO, new Uint8Array(8))],
    ["duplicate GUID", table(entry(GUID_VCEK, 72, 1), entry(GUID_VCEK, 73, 1), ZERO, new Uint8Array(2))],
    ["zero GUID with data", table(entry("00000000000000000000000000000000", 48, 1), ZERO, new Uint8Array(1))],
    ["offset overflow", table(entry(GUID_VCEK, 0xffffffff, 2), ZERO)],
  ];
  for (const [label, bytes] of refused) {
    it(`refuses: ${label}`, () => expect(() => parseCertTable(bytes)).toThrow(EvidenceFormatError));
  }

  it("encode refuses bad input", () => {
    expect(() => encodeCertTable([{ guid: "nope", data: new Uint8Array(1) }])).toThrow(UsageError);
    expect(() => encodeCertTable([{ guid: GUID_ARK, data: new Uint8Array() }])).toThrow(UsageError);
    const twice: CertTableEntry[] = [
      { guid: GUID_ARK, data: new Uint8Array(1) },
      { guid: GUID_ARK.toUpperCase(), data: new Uint8Array(1) },
    ];
    expect(() => encodeCertTable(twice)).toThrow(UsageError);
  });

  it("certsFromTable picks the roles and ignores unknown GUIDs", () => {
    const d = (n: number) => new Uint8Array([n]);
    const entries = parseCertTable(
      encodeCertTable([
        { guid: GUID_VLEK, data: d(1) },
        { guid: GUID_ASK, data: d(2) },
        { guid: GUID_ARK, data: d(3) },
        { guid: "92f81bc3-5811-4d3d-97ff-d19f88dc67ea", data: d(4) },
      ]),
    );
    expect(certsFromTable(entries)).toEqual({ vlek: d(1), ask: d(2), ark: d(3) });
  });
});
