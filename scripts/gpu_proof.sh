#!/usr/bin/env bash
# One-command proof of the indextts2 path on a machine with a GPU and the real checkpoints.
# NOT RUN YET: the machines this project was built on have neither.
#
#   scripts/gpu_proof.sh CHECKPOINTS [HF_CACHE]
#
# CHECKPOINTS: `hf download IndexTeam/IndexTTS-2 --local-dir CHECKPOINTS`; HF_CACHE (default
# CHECKPOINTS/hf_cache): facebook/w2v-bert-2.0, amphion/MaskGCT semantic_codec/model.safetensors,
# funasr/campplus campplus_cn_common.bin and nvidia/bigvgan_v2_22khz_80band_256x, fetched with
# `hf download ... --cache-dir HF_CACHE` (see README, "indextts2"). Nothing is downloaded here.
#
# It starts a private Redis, the Embedder (indextts2 encoder, CUDA) and the Synthesizer
# (indextts2 backend), registers two voices (espeak-ng clips, or VOICE_A / VOICE_B wav files),
# speaks a sentence with each twice, and prints per request the RTF and whether the Embedder's
# cache answered, then the Embedder's hit/miss counters and each service's peak GPU memory
# (sampled from nvidia-smi every 0.2 s). Output WAVs land in $OUT (default ./gpu_proof_out).
set -euo pipefail
cd "$(dirname "$0")/.."
CKPT=$(realpath "${1:?usage: scripts/gpu_proof.sh CHECKPOINTS [HF_CACHE]}")
HF_CACHE=$(realpath "${2:-$CKPT/hf_cache}")
OUT=${OUT:-gpu_proof_out}
PY=${PY:-.venv/bin/python}
mkdir -p "$OUT"
command -v nvidia-smi >/dev/null || { echo "gpu_proof: nvidia-smi not found: this needs an NVIDIA GPU" >&2; exit 1; }
"$PY" -c "import indextts.infer_v2" || { echo "gpu_proof: run 'uv sync --frozen --extra indextts2' first" >&2; exit 1; }

free_port() { "$PY" -c "from services.common.redis_server import free_port; print(free_port())"; }
REDIS_PORT=$(free_port); EMB_PORT=$(free_port); SYN_PORT=$(free_port); METRICS_PORT=$(free_port)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

redis-server --port "$REDIS_PORT" --save "" --appendonly no >"$OUT/redis.log" 2>&1 & pids+=($!)
HF_HUB_OFFLINE=1 "$PY" -m services.embedder.server --port "$EMB_PORT" --metrics-port "$METRICS_PORT" \
  --redis-url "redis://127.0.0.1:$REDIS_PORT/0" --device cuda \
  --indextts2-checkpoints "$CKPT" --indextts2-hf-cache "$HF_CACHE" >"$OUT/embedder.log" 2>&1 & EMB_PID=$!; pids+=($EMB_PID)
HF_HUB_OFFLINE=1 "$PY" -m services.synthesizer.server --port "$SYN_PORT" --backend indextts2 \
  --embedder-address "127.0.0.1:$EMB_PORT" --indextts2-language en \
  --indextts2-checkpoints "$CKPT" --indextts2-hf-cache "$HF_CACHE" >"$OUT/synthesizer.log" 2>&1 & SYN_PID=$!; pids+=($SYN_PID)

# Peak GPU memory per process, from the driver (what each service really holds, context included).
( while sleep 0.2; do nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits; done ) \
  >"$OUT/gpu_samples.csv" 2>/dev/null & pids+=($!)

"$PY" - "$EMB_PORT" "$SYN_PORT" "$OUT" <<'PY'
import asyncio, io, os, subprocess, sys, time
import soundfile as sf
from voxcache import AsyncEmbedderClient, AsyncSynthesizerClient

emb_port, syn_port, out = sys.argv[1], sys.argv[2], sys.argv[3]
TEXT = "The quick brown fox jumps over the lazy dog. It was a bright and windy morning."

def clip(env: str, voice: str, sentence: str) -> bytes:
    if os.environ.get(env):
        return open(os.environ[env], "rb").read()
    return subprocess.run(["espeak-ng", "-v", voice, "--stdout", sentence], capture_output=True, check=True).stdout

async def wait_up() -> None:
    deadline = time.monotonic() + 1800  # first start: weights + nemo grammars (about a minute)
    while True:
        try:
            async with AsyncEmbedderClient(f"127.0.0.1:{emb_port}") as e, AsyncSynthesizerClient(f"127.0.0.1:{syn_port}") as s:
                await e.stats(timeout=2)
                await s.say("Hi.", voice=clip("VOICE_A", "en-us", "Warming up."), timeout=600)
                return
        except Exception as exc:  # not up yet
            if time.monotonic() > deadline:
                raise SystemExit(f"services did not come up: {exc}")
            await asyncio.sleep(5)

async def main() -> None:
    await wait_up()
    voices = {"amy": clip("VOICE_A", "en-us", "A rainbow is a division of white light into many colours."),
              "ben": clip("VOICE_B", "en-gb+m3", "Please call Stella and ask her to bring these things.")}
    async with AsyncEmbedderClient(f"127.0.0.1:{emb_port}") as emb, AsyncSynthesizerClient(f"127.0.0.1:{syn_port}") as syn:
        for name, wav in voices.items():
            await emb.register_voice(name, wav)
        for round_ in (1, 2):
            for name in voices:
                started = time.perf_counter()
                speech = await syn.say(TEXT, voice_id=name, timeout=600)
                wall = time.perf_counter() - started
                audio, rate = sf.read(io.BytesIO(speech.audio))
                seconds = len(audio) / rate
                open(f"{out}/{name}_{round_}.wav", "wb").write(speech.audio)
                print(f"{name} round {round_}: {seconds:.2f} s of audio in {wall:.2f} s, RTF {wall / seconds:.3f}, "
                      f"embedder cache hit: {speech.conditioning_cache_hit}")
        stats = await emb.stats()
        print("embedder stats:", {k: v for k, v in stats.items() if "hit" in k or "miss" in k})

asyncio.run(main())
PY

sleep 1
echo "peak GPU memory (MiB), from nvidia-smi:"
for pair in "embedder:$EMB_PID" "synthesizer:$SYN_PID"; do
  name=${pair%%:*}; pid=${pair##*:}
  peak=$(awk -F', ' -v p="$pid" '$1 == p && $2 > m { m = $2 } END { print m + 0 }' "$OUT/gpu_samples.csv")
  echo "  $name (pid $pid): $peak"
done
