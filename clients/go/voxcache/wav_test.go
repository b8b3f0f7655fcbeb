package voxcache

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"
)

// wav builds a canonical 44-byte-header PCM file around n bytes of samples.
func wav(rate, channels, bits, n int) []byte {
	b := make([]byte, 44+n)
	copy(b[0:], "RIFF")
	binary.LittleEndian.PutUint32(b[4:], uint32(36+n))
	copy(b[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(b[16:], 16)
	binary.LittleEndian.PutUint16(b[20:], 1)
	binary.LittleEndian.PutUint16(b[22:], uint16(channels))
	binary.LittleEndian.PutUint32(b[24:], uint32(rate))
	binary.LittleEndian.PutUint32(b[28:], uint32(rate*channels*bits/8))
	binary.LittleEndian.PutUint16(b[32:], uint16(channels*bits/8))
	binary.LittleEndian.PutUint16(b[34:], uint16(bits))
	copy(b[36:], "data")
	binary.LittleEndian.PutUint32(b[40:], uint32(n))
	return b
}

func TestParseWAV(t *testing.T) {
	info, err := ParseWAV(wav(24000, 1, 16, 48000))
	if err != nil {
		t.Fatal(err)
	}
	want := WAVInfo{Channels: 1, SampleRate: 24000, BitsPerSample: 16, DataBytes: 48000}
	if info != want {
		t.Errorf("info = %+v, want %+v", info, want)
	}
	if d := info.Duration(); d != time.Second {
		t.Errorf("duration = %v, want 1s", d)
	}
}

func TestParseWAVRejectsSizeMismatches(t *testing.T) {
	truncated := wav(24000, 1, 16, 100)[:120]
	padded := append(wav(24000, 1, 16, 100), 0, 0, 0, 0)
	badRIFF := wav(24000, 1, 16, 100)
	binary.LittleEndian.PutUint32(badRIFF[4:], 0xffffffff) // the streaming placeholder
	badData := wav(24000, 1, 16, 100)
	binary.LittleEndian.PutUint32(badData[40:], 98)
	notWave := wav(24000, 1, 16, 100)
	copy(notWave[8:], "AVI ")
	cases := map[string]struct {
		b    []byte
		want string
	}{
		"truncated":      {truncated, "RIFF size"},
		"trailing bytes": {padded, "RIFF size"},
		"RIFF size":      {badRIFF, "RIFF size"},
		"data size":      {badData, "chunk header"},
		"not WAVE":       {notWave, "not a RIFF/WAVE"},
		"empty":          {nil, "not a RIFF/WAVE"},
		"half frame":     {wav(24000, 1, 16, 101), "whole frames"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := ParseWAV(tc.b)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}
