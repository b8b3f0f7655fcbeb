// Package voxcache holds small typed helpers over the generated stubs in
// voxcachev1: decoding Tensor payloads and validating the WAV audio the
// Synthesizer returns. The stubs themselves are generated (scripts/codegen.sh)
// and never edited by hand.
package voxcache

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/voxcache/voxcache/clients/go/voxcachev1"
)

// Well-known names in Conditioning.tensors, by encoder. Shapes are row-major; T is the
// reference's length in w2v-BERT frames (about 50 per second), T' in 22.05 kHz mel frames
// (about 86 per second). IndexTTS2 bundles may be stored as float16 (the Embedder's
// --indextts2-float16); Float32s and TensorFloat32s widen them to float32.
const (
	// TensorSpeaker is ECAPA's speaker vector: float32 (192,), L2-normalised.
	TensorSpeaker = "speaker"
	// TensorSpkCondEmb is IndexTTS2's semantic speaker conditioning: (1, T, 1024),
	// w2v-BERT 2.0 hidden layer 17, normalised.
	TensorSpkCondEmb = "spk_cond_emb"
	// TensorStyle is IndexTTS2's CAMPPlus style vector: (1, 192).
	TensorStyle = "style"
	// TensorPromptCondition is IndexTTS2's s2mel prompt: (1, T', 512).
	TensorPromptCondition = "prompt_condition"
	// TensorRefMel is IndexTTS2's reference log-mel spectrogram: (1, 80, T').
	TensorRefMel = "ref_mel"
	// TensorEmoCondEmb is IndexTTS2's emotion conditioning, shaped like TensorSpkCondEmb.
	// Optional: without it the Synthesizer uses TensorSpkCondEmb.
	TensorEmoCondEmb = "emo_cond_emb"
)

// MaxTensorElements bounds the memory a malformed message can make a reader
// allocate; it matches the Python SDK's limit.
const MaxTensorElements = 64 * 1024 * 1024

// Float32s decodes a tensor into its elements in row-major order.
//
// The wire layout is raw little-endian bytes (see tensor.proto), so the byte
// length must equal product(shape) * itemsize; a tensor that disagrees with its
// own shape is rejected rather than truncated. DTYPE_FLOAT16 is widened to
// float32 exactly (every binary16 value is representable in binary32).
func Float32s(t *voxcachev1.Tensor) ([]float32, error) {
	var itemSize int
	switch t.GetDtype() {
	case voxcachev1.DType_DTYPE_FLOAT32:
		itemSize = 4
	case voxcachev1.DType_DTYPE_FLOAT16:
		itemSize = 2
	default:
		return nil, fmt.Errorf("voxcache: unsupported tensor dtype %v; expected FLOAT32 or FLOAT16", t.GetDtype())
	}
	count, err := NumElements(t.GetShape())
	if err != nil {
		return nil, err
	}
	data := t.GetData()
	if len(data) != count*itemSize {
		return nil, fmt.Errorf("voxcache: tensor of shape %v needs %d bytes of %v, got %d",
			t.GetShape(), count*itemSize, t.GetDtype(), len(data))
	}
	out := make([]float32, count)
	for i := range out {
		if itemSize == 4 {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
		} else {
			out[i] = Float16ToFloat32(binary.LittleEndian.Uint16(data[2*i:]))
		}
	}
	return out, nil
}

// TensorFloat32s decodes the tensor called name (one of the Tensor* constants) in c,
// FLOAT32 or FLOAT16, as float32 values in row-major order; the shape is
// c.GetTensors()[name].GetShape(). A missing tensor is an error naming the encoder.
func TensorFloat32s(c *voxcachev1.Conditioning, name string) ([]float32, error) {
	t, ok := c.GetTensors()[name]
	if !ok {
		return nil, fmt.Errorf("voxcache: conditioning from encoder %q has no %q tensor", c.GetEncoder(), name)
	}
	values, err := Float32s(t)
	if err != nil {
		return nil, fmt.Errorf("voxcache: tensor %q: %w", name, err)
	}
	return values, nil
}

// NumElements is product(shape); an empty shape is a scalar (one element).
// Negative dimensions and counts over MaxTensorElements are errors, which also
// rules out overflow in the multiplication.
func NumElements(shape []int64) (int, error) {
	count := int64(1)
	for _, dim := range shape {
		if dim < 0 {
			return 0, fmt.Errorf("voxcache: negative dimension in tensor shape %v", shape)
		}
		if dim != 0 && count > MaxTensorElements/dim {
			return 0, fmt.Errorf("voxcache: tensor shape %v exceeds %d elements", shape, MaxTensorElements)
		}
		count *= dim
	}
	return int(count), nil
}

// Float16ToFloat32 widens an IEEE 754 binary16 bit pattern (as read with
// binary.LittleEndian.Uint16 from a FLOAT16 tensor) to float32. The result is exact:
// signed zeros, subnormals, normals and infinities keep their value, and a NaN stays a
// NaN with its payload.
func Float16ToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // infinity or NaN: keep the payload
		return math.Float32frombits(sign | 0xff<<23 | mant<<13)
	case exp != 0: // normal: rebias the exponent from 15 to 127
		return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
	case mant == 0: // signed zero
		return math.Float32frombits(sign)
	default: // subnormal: mant * 2^-24, exact in float32
		value := float32(mant) / (1 << 24)
		if sign != 0 {
			value = -value
		}
		return value
	}
}
