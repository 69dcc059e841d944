import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { sha256, toHex } from "../../attestation/bytes.js";
import { parseNitro } from "../../attestation/nitro/index.js";
import { AWS_NITRO_ROOT_G1_DER } from "../../attestation/nitro/roots.js";
import { toDer } from "../../attestation/pem.js";
import { x509 } from "../../attestation/x509.js";
import { VECTORS, vectors } from "./helpers.js";

// Published by AWS ("Verifying the root of trust", docs.aws.amazon.com/enclaves/latest/user/verify-root.html)
// and repeated in the vectors' README and every provenance.md.
const PUBLISHED_SHA256 = "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b";

describe("pinned AWS Nitro Enclaves root G1", () => {
  it("has the fingerprint AWS publishes", async () => {
    expect(toHex(await sha256(AWS_NITRO_ROOT_G1_DER))).toBe(PUBLISHED_SHA256);
  });

  it("the fingerprint is the one the vectors' README states", () => {
    const readme = readFileSync(new URL("README.md", VECTORS), "utf8");
    expect(readme.toLowerCase()).toContain(PUBLISHED_SHA256);
  });

  it.each(vectors)("$name: equals root.pem and cabundle[0]", (v) => {
    const pem = readFileSync(new URL(`${v.name}/root.pem`, VECTORS), "utf8");
    expect(toDer(pem)).toEqual(AWS_NITRO_ROOT_G1_DER);
    expect(parseNitro(v.bytes).document.cabundle[0]).toEqual(AWS_NITRO_ROOT_G1_DER);
  });

  it("is CN=aws.nitro-enclaves, P-384, valid 2019-10-28 .. 2049-10-28", () => {
    const cert = new x509.X509Certificate(AWS_NITRO_ROOT_G1_DER as BufferSource);
    expect(cert.subjectName.getField("CN")).toEqual(["aws.nitro-enclaves"]);
    expect(cert.publicKey.algorithm).toMatchObject({ name: "ECDSA", namedCurve: "P-384" });
    expect(cert.notBefore.toISOString()).toBe("2019-10-28T13:28:05.000Z");
    expect(cert.notAfter.toISOString()).toBe("2049-10-28T14:28:05.000Z");
  });
});
