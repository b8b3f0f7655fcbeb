package dev.voxcache.client;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import org.junit.Test;

public class WavTest {
  /** A canonical 44-byte-header PCM file around n bytes of samples. */
  private static byte[] wav(int rate, int channels, int bits, int n) {
    ByteBuffer b = ByteBuffer.allocate(44 + n).order(ByteOrder.LITTLE_ENDIAN);
    b.put("RIFF".getBytes(StandardCharsets.US_ASCII)).putInt(36 + n);
    b.put("WAVEfmt ".getBytes(StandardCharsets.US_ASCII)).putInt(16);
    b.putShort((short) 1).putShort((short) channels).putInt(rate).putInt(rate * channels * bits / 8);
    b.putShort((short) (channels * bits / 8)).putShort((short) bits);
    b.put("data".getBytes(StandardCharsets.US_ASCII)).putInt(n);
    return b.array();
  }

  @Test
  public void parsesACanonicalFile() {
    Wav.Info info = Wav.parse(wav(24000, 1, 16, 48000));
    assertEquals(1, info.channels);
    assertEquals(24000, info.sampleRate);
    assertEquals(16, info.bitsPerSample);
    assertEquals(48000, info.dataBytes);
    assertEquals(1.0, info.durationSeconds(), 0);
  }

  @Test
  public void rejectsSizeMismatches() {
    assertThrows(IllegalArgumentException.class, () -> Wav.parse(Arrays.copyOf(wav(24000, 1, 16, 100), 120)));
    assertThrows(IllegalArgumentException.class, () -> Wav.parse(Arrays.copyOf(wav(24000, 1, 16, 100), 148)));
    byte[] placeholder = wav(24000, 1, 16, 100);
    ByteBuffer.wrap(placeholder).order(ByteOrder.LITTLE_ENDIAN).putInt(4, 0xffffffff);
    assertThrows(IllegalArgumentException.class, () -> Wav.parse(placeholder));
    byte[] shortData = wav(24000, 1, 16, 100);
    ByteBuffer.wrap(shortData).order(ByteOrder.LITTLE_ENDIAN).putInt(40, 98);
    assertThrows(IllegalArgumentException.class, () -> Wav.parse(shortData));
    assertThrows(IllegalArgumentException.class, () -> Wav.parse(new byte[0]));
    IllegalArgumentException halfFrame =
        assertThrows(IllegalArgumentException.class, () -> Wav.parse(wav(24000, 1, 16, 101)));
    assertTrue(halfFrame.getMessage().contains("whole frames"));
  }
}
