/**
 * A minimal strict DER reader: definite, minimal lengths, and every element exactly inside its
 * parent. Used where a schema parser that skips what it does not match would be unsafe (a CRL
 * whose revoked entries were silently dropped would revoke nothing). Throws `fail` on anything else.
 */

export interface Tlv {
  tag: number;
  /** Offset of the tag byte. */
  start: number;
  /** Offset of the first content byte. */
  contentStart: number;
  /** Offset just after the element. */
  end: number;
}

export class DerReader {
  constructor(
    readonly bytes: Uint8Array,
    private readonly fail: (message: string) => never,
  ) {}

  /** The element at `offset`, which must end at or before `limit`. Single-byte tags only. */
  read(offset: number, limit = this.bytes.length): Tlv {
    const b = this.bytes;
    if (offset + 2 > limit) this.fail("der: truncated element");
    const tag = b[offset]!;
    if ((tag & 0x1f) === 0x1f) this.fail("der: multi-byte tag");
    const first = b[offset + 1]!;
    let len: number;
    let contentStart: number;
    if (first < 0x80) {
      len = first;
      contentStart = offset + 2;
    } else {
      const n = first & 0x7f;
      if (n === 0 || n > 4) this.fail("der: indefinite or oversized length");
      if (offset + 2 + n > limit) this.fail("der: truncated length");
      if (b[offset + 2] === 0) this.fail("der: non-minimal length");
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + b[offset + 2 + i]!;
      if (len < 0x80) this.fail("der: non-minimal length");
      contentStart = offset + 2 + n;
    }
    const end = contentStart + len;
    if (end > limit) this.fail("der: element longer than its container");
    return { tag, start: offset, contentStart, end };
  }

  /** The element that is exactly the whole input. */
  whole(tag: number): Tlv {
    const t = this.read(0);
    if (t.tag !== tag || t.end !== this.bytes.length) this.fail("der: not exactly one element");
    return t;
  }

  /** The children of a constructed element, which must fill it exactly. */
  children(parent: Tlv): Tlv[] {
    const out: Tlv[] = [];
    let at = parent.contentStart;
    while (at < parent.end) {
      const t = this.read(at, parent.end);
      out.push(t);
      at = t.end;
    }
    return out;
  }

  content(t: Tlv): Uint8Array {
    return this.bytes.subarray(t.contentStart, t.end);
  }

  raw(t: Tlv): Uint8Array {
    return this.bytes.subarray(t.start, t.end);
  }

  /** An OBJECT IDENTIFIER (0x06) in dotted form; minimal base-128 arcs, each a safe integer. */
  oid(t: Tlv): string {
    if (t.tag !== 0x06) this.fail("der: not an object identifier");
    const b = this.content(t);
    if (b.length === 0 || (b[b.length - 1]! & 0x80) !== 0) this.fail("der: malformed object identifier");
    const arcs: number[] = [];
    let v = 0;
    let start = true;
    for (const x of b) {
      if (start && x === 0x80) this.fail("der: malformed object identifier");
      if (v > (Number.MAX_SAFE_INTEGER - 0x7f) / 128) this.fail("der: object identifier arc too large");
      v = v * 128 + (x & 0x7f);
      start = (x & 0x80) === 0;
      if (start) {
        if (arcs.length === 0) arcs.push(v < 80 ? Math.floor(v / 40) : 2, v < 80 ? v % 40 : v - 80);
        else arcs.push(v);
        v = 0;
      }
    }
    return arcs.join(".");
  }

  /** UTCTime (0x17, YYMMDDHHMMSSZ; YY < 50 is 20YY) or GeneralizedTime (0x18, YYYYMMDDHHMMSSZ). */
  time(t: Tlv): Date {
    const s = new TextDecoder().decode(this.content(t));
    const utc = t.tag === 0x17 ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s) : null;
    const gen = t.tag === 0x18 ? /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s) : null;
    const m = utc ?? gen;
    if (!m) this.fail("der: malformed time");
    const yy = Number(m[1]);
    const year = utc ? (yy < 50 ? 2000 + yy : 1900 + yy) : yy;
    const [mo, d, h, mi, se] = [2, 3, 4, 5, 6].map((i) => Number(m![i]));
    const ms = Date.UTC(year, mo! - 1, d!, h!, mi!, se!);
    const back = new Date(ms);
    if (back.getUTCMonth() !== mo! - 1 || back.getUTCDate() !== d! || h! > 23 || mi! > 59 || se! > 59)
      this.fail("der: malformed time");
    return back;
  }
}
