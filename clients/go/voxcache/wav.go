package voxcache

import (
	"encoding/binary"
	"fmt"
	"time"
)

// WAVInfo describes a PCM RIFF/WAVE file.
type WAVInfo struct {
	Channels      int
	SampleRate    int
	BitsPerSample int
	// DataBytes is the size of the "data" chunk: the PCM samples.
	DataBytes int
}

// Duration is the playing time of the samples.
func (w WAVInfo) Duration() time.Duration {
	frameBytes := w.Channels * w.BitsPerSample / 8
	if frameBytes == 0 || w.SampleRate == 0 {
		return 0
	}
	frames := w.DataBytes / frameBytes
	return time.Duration(frames) * time.Second / time.Duration(w.SampleRate)
}

// ParseWAV checks that b is a complete PCM WAV file and describes it.
//
// Strict on purpose: the RIFF size must equal len(b)-8 and the chunks must tile
// the file exactly, so a truncated or padded response (a header written before
// the audio length was known, say) is an error rather than a file that plays
// short or clicks.
func ParseWAV(b []byte) (WAVInfo, error) {
	var info WAVInfo
	if len(b) < 12 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return info, fmt.Errorf("voxcache: not a RIFF/WAVE file")
	}
	if size := binary.LittleEndian.Uint32(b[4:8]); int64(size) != int64(len(b))-8 {
		return info, fmt.Errorf("voxcache: RIFF size %d does not match file length %d (want %d)", size, len(b), len(b)-8)
	}
	var haveFmt, haveData bool
	for pos := 12; pos < len(b); {
		if len(b)-pos < 8 {
			return info, fmt.Errorf("voxcache: truncated chunk header at byte %d", pos)
		}
		id := string(b[pos : pos+4])
		size := int64(binary.LittleEndian.Uint32(b[pos+4 : pos+8]))
		body := int64(pos + 8)
		end := body + size + size%2 // chunks are padded to even sizes
		if body+size > int64(len(b)) {
			return info, fmt.Errorf("voxcache: %q chunk of %d bytes runs past the end of the file", id, size)
		}
		switch id {
		case "fmt ":
			if size < 16 {
				return info, fmt.Errorf("voxcache: fmt chunk too short (%d bytes)", size)
			}
			f := b[body : body+16]
			if tag := binary.LittleEndian.Uint16(f[0:2]); tag != 1 {
				return info, fmt.Errorf("voxcache: WAV format tag %d, want 1 (PCM)", tag)
			}
			info.Channels = int(binary.LittleEndian.Uint16(f[2:4]))
			info.SampleRate = int(binary.LittleEndian.Uint32(f[4:8]))
			info.BitsPerSample = int(binary.LittleEndian.Uint16(f[14:16]))
			haveFmt = true
		case "data":
			info.DataBytes = int(size)
			haveData = true
		}
		if end > int64(len(b)) { // an odd last chunk without its pad byte is tolerated
			end = int64(len(b))
		}
		pos = int(end)
	}
	if !haveFmt || !haveData {
		return info, fmt.Errorf("voxcache: WAV lacks a fmt or data chunk")
	}
	if info.Channels == 0 || info.SampleRate == 0 || info.BitsPerSample == 0 {
		return info, fmt.Errorf("voxcache: WAV fmt chunk has zero channels, rate or sample size")
	}
	if frame := info.Channels * info.BitsPerSample / 8; frame == 0 || info.DataBytes%frame != 0 {
		return info, fmt.Errorf("voxcache: data chunk of %d bytes is not whole frames", info.DataBytes)
	}
	return info, nil
}
