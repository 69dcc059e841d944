/**
 * The sealed image's serial console gets only what scripts/image/console.ts allows of the
 * enclave's output: bare error codes and "listening"; messages, stacks and anything else are dropped.
 */
import { describe, expect, it } from "vitest";
import { consoleLine, consoleSink } from "../../scripts/image/console.js";

describe("enclave output on the console", () => {
  it("passes the code-only lines and the fact of listening", () => {
    expect(consoleLine("stderr", "enclave: fatal (ERR_INTERNAL)")).toBe("enclave: fatal (ERR_INTERNAL)");
    expect(consoleLine("stderr", "enclave: failed to start (EADDRINUSE)")).toBe(
      "enclave: failed to start (EADDRINUSE)",
    );
    const listening = JSON.stringify({ listening: "0.0.0.0:7000", platform: "sev-snp", keys: { x: 1 } });
    expect(consoleLine("stdout", listening)).toBe("enclave: listening");
  });

  it("drops messages, stacks, and code lines that carry anything more", () => {
    for (const line of [
      "Error: Conversion Error: could not convert string 'alice@example.com' to INT32",
      "    at Object.run (/opt/cleanroom/main.js:1:1)",
      "enclave: fatal (ERR_INTERNAL) row 7",
      "enclave: fatal (alice@example.com)",
      "enclave: fatal (ERR_INTERNAL)\u0000",
      "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory",
      "",
    ]) {
      expect(consoleLine("stderr", line)).toBeUndefined();
    }
    // The code form on stdout, or the listening line on stderr, is not what either stream carries.
    expect(consoleLine("stdout", "enclave: fatal (ERR_INTERNAL)")).toBeUndefined();
    expect(consoleLine("stderr", '{"listening":"x"}')).toBeUndefined();
  });

  it("splits a stream into lines across chunks and drops an overlong line without keeping it", () => {
    const out: string[] = [];
    const sink = consoleSink("stderr", (l) => out.push(l));
    const text = [
      "secret row value alice@example.com",
      "enclave: fatal (ERR_QUERY_FAILED)",
      `enclave: fatal (ERR_INTERNAL)${"x".repeat(10_000)}`,
      "enclave: failed to start (ERR_PLATFORM)",
    ].join("\n");
    const bytes = new TextEncoder().encode(`${text}\n`);
    for (let i = 0; i < bytes.length; i += 7) sink(bytes.subarray(i, i + 7));
    expect(out).toEqual(["enclave: fatal (ERR_QUERY_FAILED)", "enclave: failed to start (ERR_PLATFORM)"]);
  });
});
