#!/bin/sh
# Runs the example programs on the test data and checks their outputs:
#   facelink-sender   frames.rgb -> .flk   == the Python API's packets, byte for byte
#   facelink-receiver .flk -> raw frames   == the Python API's decoded frames, byte for byte
#   facelink-roundtrip (C++ RAII wrapper)  runs and writes a PPM of the right size
# usage: examples.sh BUILD_DIR TESTDATA_DIR   (PYTHON: the facelink environment's python)
set -eu
BUILD=$1
DATA=$2
PYTHON=${PYTHON:-python3}
meta() { sed -n "s/^$1 //p" "$DATA/meta.txt"; }
fail() { echo "examples: FAIL: $*" >&2; exit 1; }

# usage errors exit 2, unreadable input exits 1 (no Python needed for either)
rc=0; "$BUILD/facelink-sender" in.rgb out.flk 2>/dev/null || rc=$?
[ "$rc" = 2 ] || fail "facelink-sender without --size exited $rc, expected 2"
rc=0; "$BUILD/facelink-receiver" "$DATA/meta.txt" /dev/null 2>/dev/null || rc=$?
[ "$rc" = 1 ] || fail "facelink-receiver on a non-.flk file exited $rc, expected 1"

if [ "$(meta models)" != 1 ]; then
    echo "examples: SKIPPED ($(meta reason))"
    exit 0
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
W=$(meta width); H=$(meta height)

"$BUILD/facelink-sender" --size "${W}x${H}" --fps "$(meta fps_num)/$(meta fps_den)" \
    --session-id "$(meta session_id)" --created-us "$(meta created_us)" "$DATA/frames.rgb" "$TMP/out.flk"
"$PYTHON" - "$TMP/out.flk" "$DATA/packets.bin" <<'EOF' || fail "facelink-sender's stream differs from the Python API's"
import struct, sys
from facelink.bitstream import read_flk
got = list(read_flk(sys.argv[1]))
blob = open(sys.argv[2], "rb").read()
want, i = [], 0
while i < len(blob):
    (n,) = struct.unpack_from("<I", blob, i)
    want.append(blob[i + 4 : i + 4 + n])
    i += 4 + n
sys.exit(0 if [bytes(p) for p in got] == want else 1)
EOF
echo "examples: facelink-sender output == Python API packets"

"$BUILD/facelink-receiver" "$TMP/out.flk" "$TMP/out.rgb"
cmp -s "$TMP/out.rgb" "$DATA/decoded.rgb" || fail "facelink-receiver's frames differ from the Python API's"
"$BUILD/facelink-receiver" --format bgr24 "$TMP/out.flk" - > "$TMP/out.bgr"
[ "$(wc -c < "$TMP/out.bgr")" = "$(wc -c < "$DATA/decoded.rgb")" ] || fail "facelink-receiver --format bgr24 size"
echo "examples: facelink-receiver output == Python API frames"

"$BUILD/facelink-roundtrip" "$(meta portrait_path)" "$TMP/last.ppm" --frames 4
PW=$(($(meta portrait_width) - 16)); PH=$(($(meta portrait_height) - 16))
head -c 2 "$TMP/last.ppm" | grep -q P6 || fail "facelink-roundtrip wrote no PPM"
[ "$(wc -c < "$TMP/last.ppm")" -gt $((PW * PH * 3)) ] || fail "facelink-roundtrip PPM too small"
echo "examples: facelink-roundtrip ok"
