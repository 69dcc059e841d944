import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { sha256, toHex } from "../../attestation/bytes.js";
import { parseCertificate, toDer } from "../../attestation/snp/certs.js";
import { PINNED_ROOTS } from "../../attestation/snp/roots.js";
import { loadVector, SNP_DIR, VECTOR_NAMES } from "./vectors.js";

/** The SHA-256 pins listed in the vectors' README ("Pinned roots" section). */
function readmePins(): Map<string, string> {
  const text = readFileSync(`${SNP_DIR}README.md`, "utf8");
  const pins = new Map<string, string>();
  for (const m of text.matchAll(/((?:ARK|SEV)-[A-Za-z-]+) ([0-9a-f]{64})/g)) pins.set(m[1]!, m[2]!);
  return pins;
}

const cn = (subject: Uint8Array): string => {
  const s = new TextDecoder("latin1").decode(subject);
  return /(ARK-\w+|SEV-VLEK-\w+|SEV-\w+)/.exec(s)![1]!;
};

describe("pinned AMD roots", () => {
  const pins = readmePins();
  const all = PINNED_ROOTS.flatMap((r) => [
    { product: r.product, role: "ARK", pem: r.ark },
    ...r.intermediates.map((i) => ({ product: r.product, role: i.kind, pem: i.pem })),
  ]);

  it("README lists nine pins", () => expect(pins.size).toBe(9));

  for (const c of all) {
    it(`${c.product} ${c.role} matches the README SHA-256 pin`, async () => {
      const der = toDer(c.pem);
      const name = cn(parseCertificate(der).subject);
      const want =
        c.role === "ARK"
          ? `ARK-${c.product}`
          : c.role === "ASK"
            ? `SEV-${c.product}`
            : `SEV-VLEK-${c.product}`;
      expect(name).toBe(want);
      expect(toHex(await sha256(der))).toBe(pins.get(want));
    });
  }

  it("every vector's ark.pem is byte-identical to a pinned ARK", () => {
    const pinned = PINNED_ROOTS.map((r) => toHex(toDer(r.ark)));
    for (const n of VECTOR_NAMES) expect(pinned).toContain(toHex(toDer(loadVector(n).ark)));
  });
});
