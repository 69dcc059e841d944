/**
 * What of the enclave's output reaches the sealed image's serial console, which the hypervisor
 * (the cloud operator) reads. The guest init runs the enclave with its stdout and stderr on pipes
 * and passes each line through `consoleSink`: only lines of a fixed form that carry a bare error
 * code or the fact that the enclave listens are written; anything else (a message or a stack that
 * could quote data, a native library's output) is dropped.
 */

const CODE_LINE = /^enclave: (failed to start|fatal) \((E[A-Z0-9_]{1,64})\)$/;

/** The console's line for one line the enclave wrote (`stream` it came on), or undefined to drop it. */
export function consoleLine(stream: "stdout" | "stderr", line: string): string | undefined {
  if (stream === "stderr") {
    const m = CODE_LINE.exec(line);
    return m ? `enclave: ${m[1]} (${m[2]})` : undefined;
  }
  // The one stdout line (enclave/main.ts) holds the listen address and public keys: only its
  // arrival is reported.
  if (line.startsWith('{"listening":')) return "enclave: listening";
  return undefined;
}

/** Allowed lines are short; a longer line is dropped without being kept whole in memory. */
const MAX_LINE = 256;

/**
 * A sink for one of the enclave's streams: splits its bytes into lines (keeping at most MAX_LINE
 * bytes of a line) and calls `write` with the console line of each allowed one.
 */
export function consoleSink(
  stream: "stdout" | "stderr",
  write: (line: string) => void,
): (chunk: Uint8Array) => void {
  let line: number[] = [];
  let overlong = false;
  return (chunk) => {
    for (const byte of chunk) {
      if (byte === 0x0a) {
        const out = overlong ? undefined : consoleLine(stream, Buffer.from(line).toString("latin1"));
        if (out !== undefined) write(out);
        line = [];
        overlong = false;
      } else if (!overlong) {
        if (line.length < MAX_LINE) line.push(byte);
        else {
          overlong = true;
          line = [];
        }
      }
    }
  };
}
