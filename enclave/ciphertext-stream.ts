/**
 * An upload's ciphertext as the load reads it: pieces in order, each counted as it arrives (load
 * progress). An HTTP body (any Readable) is read from its "data" events into a bounded queue,
 * paused above `highWaterBytes` and resumed below half of it, instead of through the stream's own
 * async iterator: the body arrives in pieces of at most 64 KiB, about 35 000 per 2 GB, and the
 * iterator's per-piece work on Node's main thread is what no number of cores shortens
 * (docs/PERFORMANCE.md, "The serial part: Node's main thread"). The stream ends the pieces; its
 * error, or a close before its end, fails them after the pieces already queued; leaving early
 * destroys it.
 */
import { finished, type Readable } from "node:stream";

/** Bytes queued before the body is paused (the decrypt stage takes 4 MiB at a time). */
const HIGH_WATER_BYTES = 8 << 20;

export async function* ciphertextPieces(
  source: Readable | AsyncIterable<Uint8Array>,
  add: (bytes: number) => void,
  highWaterBytes = HIGH_WATER_BYTES,
): AsyncGenerator<Uint8Array> {
  if (!isReadable(source)) {
    for await (const piece of source) {
      add(piece.length);
      yield piece;
    }
    return;
  }
  const queue: Uint8Array[] = [];
  let head = 0;
  let queued = 0;
  let ended = false;
  let failure: unknown;
  let wake: (() => void) | undefined;
  const notify = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const onData = (piece: Uint8Array | string) => {
    // A body read as text would not be the ciphertext's bytes.
    if (typeof piece === "string") {
      failure ??= new TypeError("ciphertext stream yields text, not bytes");
      source.destroy();
    } else {
      queue.push(piece);
      queued += piece.length;
      add(piece.length);
      if (queued >= highWaterBytes) source.pause();
    }
    notify();
  };
  // finished() reports an error, and a close before "end", as the stream's failure.
  const stop = finished(source, (e) => {
    if (e) failure ??= e;
    ended = true;
    notify();
  });
  source.on("data", onData);
  try {
    for (;;) {
      if (head < queue.length) {
        const piece = queue[head]!;
        queue[head++] = EMPTY;
        queued -= piece.length;
        if (head === queue.length) {
          queue.length = 0;
          head = 0;
        }
        if (queued < highWaterBytes / 2 && source.isPaused() && !ended) source.resume();
        yield piece;
        continue;
      }
      if (failure !== undefined) throw failure;
      if (ended) return;
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
  } finally {
    source.off("data", onData);
    stop();
    if (!ended) source.destroy();
  }
}

const EMPTY = new Uint8Array(0);

function isReadable(s: Readable | AsyncIterable<Uint8Array>): s is Readable {
  return typeof (s as Readable).on === "function" && typeof (s as Readable).pause === "function";
}
