const CHUNK_SIZE = 64 * 1024;

/** Options for {@linkcode rangeStream}: the bytes to send. */
export interface RangeStreamOptions {
  /** Offset of the first byte. */
  start: number;
  /** How many bytes. */
  length: number;
}

/**
 * Streams `length` bytes of an open file from `start`, reading one chunk per
 * pull so a large file is never held in memory. The stream owns the file: it
 * closes it when the range is sent, on a read error, and when the consumer
 * cancels (a client that disconnects).
 */
export function rangeStream(
  file: Deno.FsFile,
  options: RangeStreamOptions,
): ReadableStream<Uint8Array> {
  const { start, length } = options;
  let remaining = length;
  let positioned = false;
  let open = true;
  const close = () => {
    if (open) {
      open = false;
      file.close();
    }
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        if (remaining <= 0) {
          close();
          controller.close();
          return;
        }
        if (!positioned) {
          await file.seek(start, Deno.SeekMode.Start);
          positioned = true;
        }
        const buf = new Uint8Array(Math.min(CHUNK_SIZE, remaining));
        const n = await file.read(buf);
        if (n === null) {
          throw new RangeError(
            `File ended with "${remaining}" bytes of the range unsent`,
          );
        }
        remaining -= n;
        controller.enqueue(buf.subarray(0, n));
        if (remaining === 0) {
          close();
          controller.close();
        }
      } catch (err) {
        close();
        controller.error(err);
      }
    },
    cancel() {
      close();
    },
  }, { highWaterMark: 0 });
}
