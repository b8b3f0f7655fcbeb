"""ECAPA over a padded batch, giving each clip the embedding it gets alone.

SpeechBrain's ECAPA masks padding where it pools (SE blocks, attentive statistics), but its
convolutions pad "same" by *reflecting* at the end of the tensor: alone, a clip's last
frames see their own reflection; in a batch, a shorter clip's last frames see the padding
instead, and through ~65 frames of dilated receptive field that moved one real clip's
embedding to cosine 0.978 (5 s batch, 3.5 s clip). So each convolution's padding is
rebuilt per clip: positions past a clip's last valid frame take that clip's reflection,
exactly as `F.pad(mode="reflect")` would give it alone. For a batch of one full-length clip
this is the same tensor SpeechBrain builds, so single-clip results do not change.

The valid frame counts travel beside the module call in a thread-local (model workers
share one module), set by `LengthAwareEcapa.forward` from the relative lengths, so the
ONNX export traces the same per-clip padding as tensor operations.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import torch
from speechbrain.nnet.CNN import Conv1d, get_padding_elem


def valid_frames(lens: torch.Tensor, frames: int) -> torch.Tensor:
    """Valid frames per clip from relative lengths, counted as SpeechBrain's masks count them."""
    return torch.ceil(lens * frames - 1e-3).long().clamp(min=1, max=frames)


def relative_lengths(clip_frames: list[int], frames: int) -> list[float]:
    """Relative lengths that every SpeechBrain mask and `valid_frames` turn back into `clip_frames`.

    Masks keep frame t when t < len * frames and the normaliser averages round(len * frames)
    frames, so a shorter clip gets (n - 0.25) / frames: both give exactly n, with room for
    float32 rounding. A full-length clip keeps 1.0, as SpeechBrain's own single-clip call.
    """
    return [1.0 if n >= frames else (n - 0.25) / frames for n in clip_frames]


class LengthAwareEcapa(torch.nn.Module):
    """`embedding_model(feats, lens)` with per-clip reflection padding in every convolution."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self._local = threading.local()
        for module in inner.modules():
            if isinstance(module, Conv1d) and module.padding == "same" and module.padding_mode == "reflect":
                module._manage_padding = self._padder(module)  # type: ignore[method-assign]

    def forward(self, feats: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
        self._local.frames = valid_frames(lens, feats.shape[1])
        try:
            return self.inner(feats, lens)
        finally:
            self._local.frames = None

    def _padder(self, conv: Conv1d) -> Callable[..., torch.Tensor]:
        original = conv._manage_padding

        def pad(x: torch.Tensor, kernel_size: int, dilation: int, stride: int) -> torch.Tensor:
            frames: Any = getattr(self._local, "frames", None)
            if frames is None or stride != 1:
                return original(x, kernel_size, dilation, stride)
            left, right = get_padding_elem(conv.in_channels, stride, kernel_size, dilation)
            return reflect_per_clip(x, frames, left, right)

        return pad


def reflect_per_clip(x: torch.Tensor, frames: torch.Tensor, left: int, right: int) -> torch.Tensor:
    """`x` [B, C, T] padded by `left`/`right`, each clip reflected at its own last valid frame.

    Positions beyond a clip's reflection are filler (masked downstream): they read frame 0.
    """
    length = x.shape[-1]
    position = torch.arange(-left, length + right, device=x.device)
    last = frames.to(x.device).view(-1, 1) - 1
    source = torch.where(position < 0, -position, position).unsqueeze(0).expand(last.shape[0], -1)
    source = torch.where(source > last, 2 * last - source, source).clamp(min=0, max=length - 1)
    return torch.gather(x, 2, source.unsqueeze(1).expand(-1, x.shape[1], -1))
