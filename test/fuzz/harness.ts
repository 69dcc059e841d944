/**
 * The hardening harness shared by the fuzz, attack, fault and load suites: one switch between
 * the reduced CI form and the full `npm run fuzz` form, a fuzz runner that allows only typed
 * errors (from a per-target allow-list of codes) within a per-case time bound and a heap-growth
 * bound and puts every accepted case to the target's oracle, and the figures every suite reports
 * (printed, and appended as JSON lines to $CLEANROOM_FIGURES for scripts/fuzz/main.ts).
 */
import { appendFileSync } from "node:fs";
import { isDeepStrictEqual } from "node:util";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import fc from "fast-check";
import { isCleanroomError } from "../../attestation/errors.js";

/** `CLEANROOM_HARDENING=full` (set by `npm run fuzz`) runs every suite at full size. */
export const FULL = process.env["CLEANROOM_HARDENING"] === "full";

/** `full` in the full run, `ci` inside `npm test`. */
export const size = (ci: number, full: number): number => (FULL ? full : ci);

/**
 * The fast-check seed of every fuzz run: $CLEANROOM_FUZZ_SEED when set; otherwise fixed in
 * `npm test` (the same cases each time) and drawn anew by `npm run fuzz`. Every report carries
 * it, so any run can be repeated.
 */
export const SEED = fuzzSeed(process.env["CLEANROOM_FUZZ_SEED"]);

function fuzzSeed(env: string | undefined): number {
  if (env !== undefined) {
    if (
      !/^-?[0-9]{1,10}$/.test(env) ||
      !Number.isSafeInteger(Number(env)) ||
      Math.abs(Number(env)) > 2 ** 31
    ) {
      throw new Error("CLEANROOM_FUZZ_SEED must be a 32-bit integer");
    }
    return Number(env);
  }
  return FULL ? (Date.now() ^ (Math.random() * 2 ** 31)) | 0 : 20_240_417;
}

export interface Figure {
  suite: "fuzz" | "attacks" | "faults" | "load" | "host-abuse";
  name: string;
  [figure: string]: string | number | boolean;
}

export function report(figure: Figure): void {
  const line = JSON.stringify(figure);
  console.log(`[hardening] ${line}`);
  const file = process.env["CLEANROOM_FIGURES"];
  if (file) appendFileSync(file, `${line}\n`);
}

export const heapMiB = (): number => process.memoryUsage().heapUsed / 2 ** 20;

// A real GC before each heap reading, so growth means retained memory, not garbage.
setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

function settle(): void {
  gc();
  gc();
}

export interface FuzzTarget<T, O = unknown> {
  name: string;
  arbitrary: fc.Arbitrary<T>;
  /** Runs the product code on one input; may return or throw. */
  run(input: T): O | Promise<O>;
  /** Errors the target may throw besides CleanroomError subclasses (none by default). */
  accept?: (e: unknown) => boolean;
  /** When given, a refusal with a code outside this list fails the case. */
  codes?: readonly string[];
  /** For product code that answers a refusal as a value: its error code, or undefined when accepted. */
  refusal?: (output: O) => string | undefined;
  /**
   * Checks every accepted case: throws when `output` is not what `input` must decode to. For a
   * mutated signed input that is the original itself (see `sameAsSeed`).
   */
  oracle?: (input: T, output: O) => void;
}

export interface FuzzOptions {
  numRuns: number;
  /** Longest one case may take. */
  perCaseMs?: number;
  /** Largest heap growth over the whole run. */
  maxHeapGrowthMiB?: number;
  /** Default SEED. */
  seed?: number;
}

export interface FuzzFigures {
  seed: number;
  cases: number;
  accepted: number;
  refused: number;
  codes: Record<string, number>;
  slowestMs: number;
  heapGrowthMiB: number;
  peakHeapMiB: number;
}

class Hang extends Error {}

/**
 * Runs `numRuns` cases. A case passes when, within `perCaseMs`, the target either refuses it (a
 * CleanroomError or an error `accept` allows, with a code in `codes` when that is given) or
 * accepts it and the oracle agrees; anything else fails with fast-check's shrunk counterexample.
 * Heap growth is measured after a full GC.
 */
export async function fuzz<T, O>(target: FuzzTarget<T, O>, o: FuzzOptions): Promise<FuzzFigures> {
  const perCaseMs = o.perCaseMs ?? 2_000;
  const seed = o.seed ?? SEED;
  const figures: FuzzFigures = {
    seed,
    cases: 0,
    accepted: 0,
    refused: 0,
    codes: {},
    slowestMs: 0,
    heapGrowthMiB: 0,
    peakHeapMiB: 0,
  };
  // fast-check builds some generator tables on first use (tens of MiB for any-code-point strings):
  // draw a few inputs first, so the heap reading measures what the product retains.
  fc.sample(target.arbitrary, { numRuns: 20, seed });
  settle();
  const before = heapMiB();
  let peak = before;
  await fc.assert(
    fc.asyncProperty(target.arbitrary, async (input) => {
      figures.cases += 1;
      const started = performance.now();
      let timer: NodeJS.Timeout | undefined;
      const refuse = (code: string) => {
        if (target.codes && !target.codes.includes(code)) {
          throw new Error(`${target.name}: refused with ${code}, not one of ${target.codes.join(", ")}`);
        }
        figures.refused += 1;
        figures.codes[code] = (figures.codes[code] ?? 0) + 1;
      };
      let output: { value: O } | undefined;
      try {
        output = {
          value: await Promise.race([
            Promise.resolve().then(() => target.run(input)),
            new Promise<never>((_, reject) => {
              timer = setTimeout(() => reject(new Hang()), perCaseMs);
            }),
          ]),
        };
      } catch (e) {
        if (e instanceof Hang) throw new Error(`${target.name}: case exceeded ${perCaseMs} ms`);
        if (!(isCleanroomError(e) || target.accept?.(e))) throw e;
        refuse((e as { code?: string }).code ?? "other");
      } finally {
        clearTimeout(timer);
      }
      if (output) {
        const code = target.refusal?.(output.value);
        if (code !== undefined) refuse(code);
        else {
          target.oracle?.(input, output.value);
          figures.accepted += 1;
        }
      }
      const ms = performance.now() - started;
      // A synchronous parser that loops cannot be raced; its duration is checked afterwards.
      if (ms > perCaseMs) throw new Error(`${target.name}: case took ${Math.round(ms)} ms`);
      figures.slowestMs = Math.max(figures.slowestMs, ms);
      if ((figures.cases & 1023) === 0) peak = Math.max(peak, heapMiB());
    }),
    { numRuns: o.numRuns, seed },
  );
  settle();
  const after = heapMiB();
  figures.heapGrowthMiB = Math.round((after - before) * 10) / 10;
  figures.peakHeapMiB = Math.round(Math.max(peak, after));
  figures.slowestMs = Math.round(figures.slowestMs * 10) / 10;
  if (o.maxHeapGrowthMiB !== undefined && after - before > o.maxHeapGrowthMiB) {
    throw new Error(`${target.name}: heap grew ${figures.heapGrowthMiB} MiB`);
  }
  return figures;
}

/**
 * The oracle for signed inputs. Canonical encodings give each signed value exactly one text, so
 * an accepted text must be one of the `seeds` (name → [text, what it decodes to]) itself, and
 * decode to exactly what that seed decodes to; any other accepted text is a tampering let through.
 */
export function sameAsSeed<O>(target: string, seeds: readonly (readonly [string, O])[]) {
  return (text: string, output: O): void => {
    const seed = seeds.find(([t]) => t === text);
    if (!seed) throw new Error(`${target}: accepted a mutated signed input: ${JSON.stringify(text)}`);
    if (!isDeepStrictEqual(output, seed[1])) {
      throw new Error(`${target}: the original input decoded to something else: ${JSON.stringify(output)}`);
    }
  };
}

const B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/**
 * Other spellings of a compact JWS or JWE that lenient base64url decoders (jose's among them)
 * read as the same bytes: each part's last character with other values in its unused low bits,
 * "=" padding, and ASCII whitespace inside a part. Every one is a text its signer never made.
 */
export function respellings(compact: string): string[] {
  const parts = compact.split(".");
  const out: string[] = [];
  const with_ = (i: number, part: string) => parts.map((p, j) => (j === i ? part : p)).join(".");
  for (const [i, p] of parts.entries()) {
    const unused = p.length % 4 === 2 ? 4 : p.length % 4 === 3 ? 2 : 0;
    const last = B64URL.indexOf(p.at(-1) ?? "");
    if (last >= 0) {
      for (let k = 1; k < 1 << unused; k++) out.push(with_(i, p.slice(0, -1) + B64URL[last ^ k]!));
    }
    if (p.length % 4 !== 0) out.push(with_(i, p + "=".repeat(4 - (p.length % 4))));
    if (p.length > 1) {
      out.push(with_(i, `${p.slice(0, 1)} ${p.slice(1)}`));
      out.push(with_(i, `${p}\n`));
    }
  }
  return out;
}

/** Byte strings near `seeds`: random bytes, flipped/overwritten bytes, truncations, splices, growth. */
export function bytesNear(seeds: Uint8Array[], maxLength = 8192): fc.Arbitrary<Uint8Array> {
  const seed = fc.constantFrom(...seeds);
  const edit = fc.record({ at: fc.nat(), value: fc.integer({ min: 0, max: 255 }), xor: fc.boolean() });
  return fc.oneof(
    { weight: 1, arbitrary: fc.uint8Array({ maxLength }) },
    {
      weight: 4,
      arbitrary: fc.tuple(seed, fc.array(edit, { minLength: 1, maxLength: 8 })).map(([s, edits]) => {
        const out = s.slice();
        for (const e of edits) {
          const i = e.at % Math.max(1, out.length);
          if (out.length) out[i] = e.xor ? out[i]! ^ (e.value || 1) : e.value;
        }
        return out;
      }),
    },
    { weight: 2, arbitrary: fc.tuple(seed, fc.nat()).map(([s, n]) => s.slice(0, n % (s.length + 1))) },
    {
      weight: 2,
      arbitrary: fc
        .tuple(seed, fc.nat(), fc.nat(), fc.uint8Array({ maxLength: 64 }))
        .map(([s, a, b, ins]) => {
          const i = a % (s.length + 1);
          const j = Math.min(s.length, i + (b % 64));
          const out = new Uint8Array(i + ins.length + s.length - j);
          out.set(s.subarray(0, i));
          out.set(ins, i);
          out.set(s.subarray(j), i + ins.length);
          return out;
        }),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(seed, fc.uint8Array({ minLength: 1, maxLength: 256 }))
        .map(([s, tail]) => new Uint8Array([...s, ...tail])),
    },
  );
}

/** Strings near `seeds`, by the same edits on their UTF-8 bytes plus character-level edits. */
export function textNear(seeds: string[], maxLength = 8192): fc.Arbitrary<string> {
  const enc = new TextEncoder();
  const dec = new TextDecoder();
  return fc.oneof(
    {
      weight: 3,
      arbitrary: bytesNear(
        seeds.map((s) => enc.encode(s)),
        maxLength,
      ).map((b) => dec.decode(b)),
    },
    {
      weight: 2,
      arbitrary: fc
        .tuple(fc.constantFrom(...seeds), fc.nat(), fc.nat(), fc.string({ unit: "binary", maxLength: 16 }))
        .map(([s, a, b, ins]) => {
          const i = a % (s.length + 1);
          return s.slice(0, i) + ins + s.slice(Math.min(s.length, i + (b % 8)));
        }),
    },
    { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 512 }) },
  );
}

/** JSON values near `seed`: a subtree replaced by any JSON value, removed, or given an extra key. */
export function jsonNear(seed: unknown): fc.Arbitrary<unknown> {
  const paths: (string | number)[][] = [];
  const walk = (v: unknown, path: (string | number)[]) => {
    paths.push(path);
    if (Array.isArray(v)) {
      for (const [i, x] of v.entries()) walk(x, [...path, i]);
    } else if (v !== null && typeof v === "object")
      for (const [k, x] of Object.entries(v)) walk(x, [...path, k]);
  };
  walk(seed, []);
  const edit = fc.record({
    path: fc.constantFrom(...paths),
    op: fc.constantFrom("replace", "remove", "extra"),
    value: fc.jsonValue({ maxDepth: 3 }),
    key: fc.string({ maxLength: 8 }),
  });
  return fc.array(edit, { minLength: 1, maxLength: 4 }).map((edits) => {
    let root: unknown = structuredClone(seed);
    for (const e of edits) {
      if (e.path.length === 0) {
        if (e.op === "replace") root = e.value;
        continue;
      }
      let parent: unknown = root;
      for (const k of e.path.slice(0, -1)) parent = (parent as Record<string | number, unknown> | null)?.[k];
      if (parent === null || typeof parent !== "object") continue;
      const last = e.path[e.path.length - 1]!;
      const obj = parent as Record<string | number, unknown>;
      if (e.op === "replace") obj[last] = e.value;
      else if (e.op === "remove") {
        if (Array.isArray(obj)) obj.splice(Number(last), 1);
        else delete obj[last];
      } else {
        const child = obj[last];
        if (child !== null && typeof child === "object" && !Array.isArray(child)) {
          (child as Record<string, unknown>)[e.key] = e.value;
        }
      }
    }
    return root;
  });
}
