package dev.voxcache.client;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/** Validates the PCM RIFF/WAVE audio the Synthesizer returns. */
public final class Wav {
  /** What a valid file holds. */
  public static final class Info {
    public final int channels;
    public final int sampleRate;
    public final int bitsPerSample;
    /** Size of the "data" chunk: the PCM samples. */
    public final int dataBytes;

    Info(int channels, int sampleRate, int bitsPerSample, int dataBytes) {
      this.channels = channels;
      this.sampleRate = sampleRate;
      this.bitsPerSample = bitsPerSample;
      this.dataBytes = dataBytes;
    }

    public double durationSeconds() {
      return (double) (dataBytes / (channels * bitsPerSample / 8)) / sampleRate;
    }
  }

  private Wav() {}

  /**
   * Checks that {@code bytes} is a complete PCM WAV file and describes it.
   *
   * <p>Strict on purpose: the RIFF size must equal the length minus 8 and the chunks must tile
   * the file exactly, so a truncated or padded response is an error rather than audio that
   * plays short or clicks.
   *
   * @throws IllegalArgumentException naming the first inconsistency
   */
  public static Info parse(byte[] bytes) {
    ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
    if (bytes.length < 12 || !tag(bytes, 0).equals("RIFF") || !tag(bytes, 8).equals("WAVE")) {
      throw new IllegalArgumentException("not a RIFF/WAVE file");
    }
    long riffSize = Integer.toUnsignedLong(b.getInt(4));
    if (riffSize != bytes.length - 8L) {
      throw new IllegalArgumentException(String.format(
          "RIFF size %d does not match file length %d (want %d)", riffSize, bytes.length, bytes.length - 8L));
    }
    Info format = null;
    int dataBytes = -1;
    for (int pos = 12; pos < bytes.length; ) {
      if (bytes.length - pos < 8) {
        throw new IllegalArgumentException("truncated chunk header at byte " + pos);
      }
      String id = tag(bytes, pos);
      long size = Integer.toUnsignedLong(b.getInt(pos + 4));
      long body = pos + 8L;
      if (body + size > bytes.length) {
        throw new IllegalArgumentException("'" + id + "' chunk of " + size + " bytes runs past the end of the file");
      }
      if (id.equals("fmt ")) {
        if (size < 16) {
          throw new IllegalArgumentException("fmt chunk too short (" + size + " bytes)");
        }
        int formatTag = Short.toUnsignedInt(b.getShort((int) body));
        if (formatTag != 1) {
          throw new IllegalArgumentException("WAV format tag " + formatTag + ", want 1 (PCM)");
        }
        format = new Info(
            Short.toUnsignedInt(b.getShort((int) body + 2)),
            b.getInt((int) body + 4),
            Short.toUnsignedInt(b.getShort((int) body + 14)),
            0);
      } else if (id.equals("data")) {
        dataBytes = (int) size;
      }
      // Chunks are padded to even sizes; an odd last chunk without its pad byte is tolerated.
      pos = (int) Math.min(body + size + (size & 1), bytes.length);
    }
    if (format == null || dataBytes < 0) {
      throw new IllegalArgumentException("WAV lacks a fmt or data chunk");
    }
    int frame = format.channels * format.bitsPerSample / 8;
    if (format.sampleRate <= 0 || frame == 0) {
      throw new IllegalArgumentException("WAV fmt chunk has zero channels, rate or sample size");
    }
    if (dataBytes % frame != 0) {
      throw new IllegalArgumentException("data chunk of " + dataBytes + " bytes is not whole frames");
    }
    return new Info(format.channels, format.sampleRate, format.bitsPerSample, dataBytes);
  }

  private static String tag(byte[] bytes, int at) {
    return new String(bytes, at, 4, StandardCharsets.US_ASCII);
  }
}
