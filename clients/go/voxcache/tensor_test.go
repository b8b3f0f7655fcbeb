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
	// 1.0, -2.0, 65504 (max half), smallest subnormal 2^-24, -0, +Inf
	bits := []uint16{0x3c00, 0xc000, 0x7bff, 0x0001, 0x8000, 0x7c00}
	want := []float32{1, -2, 65504, float32(math.Ldexp(1, -24)), float32(math.Copysign(0, -1)), float32(math.Inf(1))}
	data := make([]byte, 2*len(bits))
	for i, h := range bits {
		binary.LittleEndian.PutUint16(data[2*i:], h)
	}
	got, err := Float32s(&voxcachev1.Tensor{Dtype: voxcachev1.DType_DTYPE_FLOAT16, Shape: []int64{int64(len(bits))}, Data: data})
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Errorf("half 0x%04x = %v, want %v", bits[i], got[i], want[i])
		}
	}
	nan := float16ToFloat32(0x7e00)
	if !math.IsNaN(float64(nan)) {
		t.Errorf("half NaN widened to %v", nan)
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
		SpeakerTensor: {Dtype: voxcachev1.DType_DTYPE_FLOAT32, Shape: []int64{2}, Data: le32(0.6, 0.8)},
	}}
	if v, err := Speaker(c); err != nil || len(v) != 2 || v[1] != 0.8 {
		t.Errorf("Speaker = %v, %v; want [0.6 0.8]", v, err)
	}
}
