/**
 * `cleanroom measure` reads numbers and hex as sev-snp-measure (Python 3) does. The tables were
 * produced by CPython 3.11.7 (`int(s)`, `int(s, 0)`, `bytes.fromhex(s)`); when python3 is on the
 * PATH the same functions are also compared with it on random strings.
 */
import { execFileSync } from "node:child_process";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { toHex } from "../../attestation/bytes.js";
import { pythonFromHex, pythonInt } from "../../attestation/measure/pyparse.js";
import { hasTool, needsTool, skipUnless } from "../tools.js";

/** [input, int(input) or null for ValueError, int(input, 0) or null] */
const INT: [string, string | null, string | null][] = [
  ["4", "4", "4"],
  ["04", "4", null],
  ["0004", "4", null],
  [" 4 ", "4", "4"],
  ["\t4\n", "4", "4"],
  ["+4", "4", "4"],
  ["-1", "-1", "-1"],
  ["0", "0", "0"],
  ["00", "0", "0"],
  ["0_0", "0", "0"],
  ["4_0", "40", "40"],
  ["4__0", null, null],
  ["_4", null, null],
  ["4_", null, null],
  ["4.0", null, null],
  ["1e1", null, null],
  ["0x4", null, "4"],
  ["0X4", null, "4"],
  ["0x_4", null, "4"],
  ["0x__4", null, null],
  ["0x", null, null],
  ["0o17", null, "15"],
  ["0O17", null, "15"],
  ["0b101", null, "5"],
  ["0B1_01", null, "5"],
  ["010", "10", null],
  ["0_7", "7", null],
  [" 0x1f ", null, "31"],
  ["- 4", null, null],
  ["4 4", null, null],
  ["", null, null],
  ["  ", null, null],
  ["\u0664", "4", "4"],
  ["\u00a04\u2003", "4", "4"],
  ["\uff14", "4", "4"],
  ["\ud835\udfd9", "1", "1"],
  ["\u00b2", null, null],
  ["65", "65", "65"],
  ["0x41", null, "65"],
  ["0x800f12", null, "8392466"],
  ["0x0800f12", null, "8392466"],
  ["0800f12", null, null],
  ["0xA00F11", null, "10489617"],
  ["0x21", null, "33"],
  ["33", "33", "33"],
  ["0x1_0", null, "16"],
  ["1_000", "1000", "1000"],
  ["0x10000000000000000", null, "18446744073709551616"],
  ["4\u001c", null, null],
  ["\u001c4", null, null],
  ["0x-1", null, null],
  ["-0x1", null, "-1"],
  ["+0b1", null, "1"],
  ["\u0663\u0662", "32", "32"],
];

/** [input, bytes.fromhex(input).hex() or null for ValueError] */
const HEX: [string, string | null][] = [
  ["ab", "ab"],
  ["AB", "ab"],
  ["ab cd", "abcd"],
  ["a bcd", null],
  [" ab\t\ncd\u000b\f\r", "abcd"],
  ["0xab", null],
  ["abc", null],
  ["", ""],
  ["  ", ""],
  ["ab\u00a0cd", null],
  ["zz", null],
  ["ab cd ", "abcd"],
  ["ab\u001ccd", null],
];

const show = (v: bigint | undefined): string | null => (v === undefined ? null : v.toString());

describe("Python int() and bytes.fromhex() as sev-snp-measure applies them", () => {
  it.each(INT)("int(%j) = %s, int(x, 0) = %s", (s, base10, base0) => {
    expect(show(pythonInt(s, 10))).toBe(base10);
    expect(show(pythonInt(s, 0))).toBe(base0);
  });

  it.each(HEX)("bytes.fromhex(%j) = %s", (s, hex) => {
    const got = pythonFromHex(s);
    expect(got === undefined ? null : toHex(got)).toBe(hex);
  });

  it("more than 4300 decimal digits is refused (max_str_digits); hex has no such limit", () => {
    expect(pythonInt("1".repeat(4300), 10)).toBeDefined();
    expect(pythonInt("1".repeat(4301), 10)).toBeUndefined();
    expect(pythonInt(`0x${"1".repeat(5000)}`, 0)).toBeDefined();
  });
});

// int()'s max_str_digits limit, which the tables above show, arrived in CPython 3.11.
const python311 =
  hasTool("python3") &&
  execFileSync("python3", ["-c", "import sys; print(sys.version_info >= (3, 11))"], {
    encoding: "utf8",
  }).trim() === "True";

describe("the same against the local python3, on random strings", () => {
  needsTool("python3");

  it("agrees on 3000 random strings", (ctx) => {
    skipUnless(ctx, python311, "needs python3 3.11 or later (int max_str_digits)");
    const alphabet = [
      ..."0123456789_+- xXoObBeE.aAfF\t\n\x0b\x0c\r\x1c",
      "\u0664",
      "\u00a0",
      "\u2003",
      "\uff11",
      "\u00b2",
    ];
    const strings = fc.sample(
      fc
        .tuple(
          fc.constantFrom("", "0x", "0o", "0b", "0", "-", " "),
          fc.array(fc.constantFrom(...alphabet), { maxLength: 8 }),
        )
        .map(([p, cs]) => p + cs.join("")),
      { numRuns: 3000, seed: 7 },
    );
    const script = [
      "import json, sys",
      "out = []",
      "for s in json.load(sys.stdin):",
      "    r = []",
      "    for b in (10, 0):",
      "        try: r.append(str(int(s, b)))",
      "        except ValueError: r.append(None)",
      "    try: r.append(bytes.fromhex(s).hex())",
      "    except ValueError: r.append(None)",
      "    out.append(r)",
      "print(json.dumps(out))",
    ].join("\n");
    const answers = JSON.parse(
      execFileSync("python3", ["-c", script], { input: JSON.stringify(strings), encoding: "utf8" }),
    ) as (string | null)[][];
    const hex = (b: Uint8Array | undefined) => (b === undefined ? null : toHex(b));
    const mismatches = strings.filter((s, i) => {
      const [a, b, h] = answers[i]!;
      return show(pythonInt(s, 10)) !== a || show(pythonInt(s, 0)) !== b || hex(pythonFromHex(s)) !== h;
    });
    expect(mismatches).toEqual([]);
  });
});
