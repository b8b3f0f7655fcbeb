package voxcache

import (
	"encoding/binary"
	"math"
	"strings"
	"testing"

	"github.com/voxcache/voxcache/clients/go/voxcachev1"
)

func le32(values ...float32) []byte {
	b := make([]byte, 4*len(values))
	for i, v := range values {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return b
}

func TestFloat32sDecodesLittleEndianRowMajor(t *testing.T) {
	want := []float32{1, -2.5, 3.25, 0, float32(math.Inf(1)), 1e-30}
	got, err := Float32s(&voxcachev1.Tensor{Dtype: voxcachev1.DType_DTYPE_FLOAT32, Shape: []int64{2, 3}, Data: le32(want...)})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("got %d values, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("element %d = %v, want %v", i, got[i], want[i])
		}
	}
}

func TestFloat32sScalarAndEmpty(t *testing.T) {
	scalar, err := Float32s(&voxcachev1.Tensor{Dtype: voxcachev1.DType_DTYPE_FLOAT32, Data: le32(7)})
	if err != nil || len(scalar) != 1 || scalar[0] != 7 {
		t.Errorf("scalar: got %v, %v; want [7]", scalar, err)
	}
	empty, err := Float32s(&voxcachev1.Tensor{Dtype: voxcachev1.DType_DTYPE_FLOAT32, Shape: []int64{0, 192}})
	if err != nil || len(empty) != 0 {
		t.Errorf("shape (0, 192): got %v, %v; want no values", empty, err)
	}
}

func TestFloat32sWidensFloat16(t *testing.T) {
	// 1.0, -2.0, 65504 (max half), smallest subnormal 2^-24, -0, +Inf, in a (2, 3) tensor
	bits := []uint16{0x3c00, 0xc000, 0x7bff, 0x0001, 0x8000, 0x7c00}
	want := []float32{1, -2, 65504, float32(math.Ldexp(1, -24)), float32(math.Copysign(0, -1)), float32(math.Inf(1))}
	data := make([]byte, 2*len(bits))
	for i, h := range bits {
		binary.LittleEndian.PutUint16(data[2*i:], h)
	}
	got, err := Float32s(&voxcachev1.Tensor{Dtype: voxcachev1.DType_DTYPE_FLOAT16, Shape: []int64{2, 3}, Data: data})
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Errorf("half 0x%04x = %v, want %v", bits[i], got[i], want[i])
		}
	}
	// Sized as float16, not float32: three halves need 6 bytes.
	if _, err := Float32s(&voxcachev1.Tensor{Dtype: voxcachev1.DType_DTYPE_FLOAT16, Shape: []int64{3}, Data: le32(1)}); err == nil ||
		!strings.Contains(err.Error(), "needs 6 bytes") {
		t.Errorf("three halves in 4 bytes: error %v, want a size error", err)
	}
}

func TestFloat16ToFloat32KnownValues(t *testing.T) {
	cases := []struct {
		half uint16
		want uint32 // float32 bits
		what string
	}{
		{0x0000, 0x00000000, "+0"},
		{0x8000, 0x80000000, "-0"},
		{0x0001, 0x33800000, "smallest subnormal 2^-24"},
		{0x8001, 0xb3800000, "-2^-24"},
		{0x0200, 0x38000000, "subnormal 2^-15"},
		{0x03ff, 0x387fc000, "largest subnormal 1023 * 2^-24"},
		{0x0400, 0x38800000, "smallest normal 2^-14"},
		{0x3555, 0x3eaaa000, "0.333251953125"},
		{0x3bff, 0x3f7fe000, "largest below 1"},
		{0x3c00, 0x3f800000, "1.0"},
		{0x3c01, 0x3f802000, "1 + 2^-10"},
		{0xbc00, 0xbf800000, "-1.0"},
		{0x4248, 0x40490000, "3.140625"},
		{0x7bff, 0x477fe000, "65504, the largest half"},
		{0xfbff, 0xc77fe000, "-65504"},
		{0x7c00, 0x7f800000, "+Inf"},
		{0xfc00, 0xff800000, "-Inf"},
		{0x7e00, 0x7fc00000, "quiet NaN"},
		{0xfe00, 0xffc00000, "negative quiet NaN"},
		{0x7e01, 0x7fc02000, "NaN with a payload"},
	}
	for _, c := range cases {
		if got := math.Float32bits(Float16ToFloat32(c.half)); got != c.want {
			t.Errorf("%s: half 0x%04x -> float32 bits 0x%08x (%v), want 0x%08x (%v)",
				c.what, c.half, got, math.Float32frombits(got), c.want, math.Float32frombits(c.want))
		}
	}
	for _, h := range []uint16{0x7c01, 0x7dff, 0x7fff, 0xfc01, 0xffff} {
		if f := Float16ToFloat32(h); !math.IsNaN(float64(f)) {
			t.Errorf("half 0x%04x (a NaN) -> %v", h, f)
		}
	}
}

// halfValue is the reference: the value of a binary16 pattern from the textbook formula,
// in float64 arithmetic, without bit manipulation of the result.
func halfValue(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	exp, mant := int(h>>10&0x1f), float64(h&0x3ff)
	switch {
	case exp == 31 && mant == 0:
		return math.Inf(int(sign))
	case exp == 31:
		return math.NaN()
	case exp == 0:
		return sign * mant * math.Pow(2, -24)
	default:
		return sign * (1 + mant/1024) * math.Pow(2, float64(exp-15))
	}
}

// toHalf is an independent encoder for values that binary16 represents exactly.
func toHalf(f float32) uint16 {
	var sign uint16
	if math.Signbit(float64(f)) {
		sign = 0x8000
	}
	v := math.Abs(float64(f))
	switch {
	case math.IsInf(v, 0):
		return sign | 0x7c00
	case v == 0:
		return sign
	case v < math.Pow(2, -14):
		return sign | uint16(v/math.Pow(2, -24))
	}
	frac, exp := math.Frexp(v) // v = frac * 2^exp, frac in [0.5, 1)
	return sign | uint16(exp-1+15)<<10 | uint16((frac*2-1)*1024)
}

func TestFloat16ToFloat32EveryPattern(t *testing.T) {
	data := make([]byte, 2*65536)
	for h := 0; h < 65536; h++ {
		binary.LittleEndian.PutUint16(data[2*h:], uint16(h))
	}
	decoded, err := Float32s(&voxcachev1.Tensor{Dtype: voxcachev1.DType_DTYPE_FLOAT16, Shape: []int64{256, 256}, Data: data})
	if err != nil {
		t.Fatal(err)
	}
	failures := 0
	for h := 0; h < 65536 && failures < 10; h++ {
		got, want := decoded[h], halfValue(uint16(h))
		if math.IsNaN(want) {
			if !math.IsNaN(float64(got)) {
				t.Errorf("half 0x%04x: %v, want NaN", h, got)
				failures++
			}
			continue
		}
		if float64(got) != want || math.Signbit(float64(got)) != math.Signbit(want) {
			t.Errorf("half 0x%04x: %v, want %v", h, got, want)
			failures++
		}
		if back := toHalf(got); back != uint16(h) {
			t.Errorf("half 0x%04x -> %v -> half 0x%04x, want the pattern back", h, got, back)
			failures++
		}
	}
}

func TestFloat32sRejectsInconsistentTensors(t *testing.T) {
	cases := []struct {
		name   string
		tensor *voxcachev1.Tensor
		want   string
	}{
		{"unspecified dtype", &voxcachev1.Tensor{Shape: []int64{1}, Data: le32(1)}, "unsupported tensor dtype"},
		{"too few bytes", &voxcachev1.Tensor{Dtype: voxcachev1.DType_DTYPE_FLOAT32, Shape: []int64{192}, Data: le32(1, 2)}, "needs 768 bytes"},
		{"too many bytes", &voxcachev1.Tensor{Dtype: voxcachev1.DType_DTYPE_FLOAT32, Shape: []int64{1}, Data: le32(1, 2)}, "needs 4 bytes"},
		{"ragged bytes", &voxcachev1.Tensor{Dtype: voxcachev1.DType_DTYPE_FLOAT32, Shape: []int64{1}, Data: []byte{0, 0, 0}}, "needs 4 bytes"},
		{"negative dim", &voxcachev1.Tensor{Dtype: voxcachev1.DType_DTYPE_FLOAT32, Shape: []int64{-1, -4}}, "negative dimension"},
		{"huge shape", &voxcachev1.Tensor{Dtype: voxcachev1.DType_DTYPE_FLOAT32, Shape: []int64{1 << 40, 1 << 40}}, "exceeds"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Float32s(tc.tensor)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestSpeakerNeedsTheSpeakerTensor(t *testing.T) {
	if _, err := Speaker(&voxcachev1.Conditioning{Encoder: "ecapa"}); err == nil {
		t.Error("Speaker accepted conditioning without a speaker tensor")
	}
	c := &voxcachev1.Conditioning{Tensors: map[string]*voxcachev1.Tensor{
		TensorSpeaker: {Dtype: voxcachev1.DType_DTYPE_FLOAT32, Shape: []int64{2}, Data: le32(0.6, 0.8)},
	}}
	if v, err := Speaker(c); err != nil || len(v) != 2 || v[1] != 0.8 {
		t.Errorf("Speaker = %v, %v; want [0.6 0.8]", v, err)
	}
}

func TestTensorFloat32sReadsNamedTensors(t *testing.T) {
	half := make([]byte, 4)
	binary.LittleEndian.PutUint16(half[0:], 0x3800) // 0.5
	binary.LittleEndian.PutUint16(half[2:], 0xc400) // -4
	c := &voxcachev1.Conditioning{Encoder: "indextts2", Tensors: map[string]*voxcachev1.Tensor{
		TensorStyle:  {Dtype: voxcachev1.DType_DTYPE_FLOAT16, Shape: []int64{1, 2}, Data: half},
		TensorRefMel: {Dtype: voxcachev1.DType_DTYPE_FLOAT32, Shape: []int64{1, 1, 2}, Data: le32(1)},
	}}
	if v, err := TensorFloat32s(c, TensorStyle); err != nil || len(v) != 2 || v[0] != 0.5 || v[1] != -4 {
		t.Errorf("style = %v, %v; want [0.5 -4]", v, err)
	}
	if _, err := TensorFloat32s(c, TensorRefMel); err == nil || !strings.Contains(err.Error(), `tensor "ref_mel"`) {
		t.Errorf("ref_mel with half its bytes: error %v, want one naming the tensor", err)
	}
	if _, err := TensorFloat32s(c, TensorEmoCondEmb); err == nil || !strings.Contains(err.Error(), `"indextts2" has no "emo_cond_emb"`) {
		t.Errorf("missing emo_cond_emb: error %v, want one naming encoder and tensor", err)
	}
}

func TestTensorNames(t *testing.T) {
	// The names the Embedder's encoders write; a typo here would miss every tensor.
	got := []string{TensorSpeaker, TensorSpkCondEmb, TensorStyle, TensorPromptCondition, TensorRefMel, TensorEmoCondEmb}
	want := []string{"speaker", "spk_cond_emb", "style", "prompt_condition", "ref_mel", "emo_cond_emb"}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("constant %d = %q, want %q", i, got[i], want[i])
		}
	}
}
