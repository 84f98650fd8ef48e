#!/bin/sh
# Runs the example programs on the test data and checks their outputs:
#   facelink-sender   frames.rgb -> .flk   == the Python API's packets, byte for byte
#   facelink-receiver .flk -> raw frames   == the Python API's decoded frames, byte for byte
#   signed: facelink-sender --key          == seal_packets() of the Python API's stream, byte for byte;
#           facelink-receiver --trust      verifies it (exit 0), refuses it untrusted or unsigned
#           (exit 3), takes it with --insecure, and flags a flipped byte (exit 3)
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

"$BUILD/facelink-receiver" --insecure "$TMP/out.flk" "$TMP/out.rgb"
cmp -s "$TMP/out.rgb" "$DATA/decoded.rgb" || fail "facelink-receiver's frames differ from the Python API's"
"$BUILD/facelink-receiver" --insecure --format bgr24 "$TMP/out.flk" - > "$TMP/out.bgr"
[ "$(wc -c < "$TMP/out.bgr")" = "$(wc -c < "$DATA/decoded.rgb")" ] || fail "facelink-receiver --format bgr24 size"
echo "examples: facelink-receiver output == Python API frames"

if [ "$(meta signed)" = 1 ]; then
    # the same frames, signed: byte for byte seal_packets() of the Python API's stream
    "$BUILD/facelink-sender" --size "${W}x${H}" --fps "$(meta fps_num)/$(meta fps_den)" \
        --session-id "$(meta session_id)" --created-us "$(meta created_us)" \
        --key "$DATA/keys/signer.key" --seal-interval "$(meta seal_interval)" "$DATA/frames.rgb" "$TMP/signed.flk"
    "$PYTHON" - "$TMP/signed.flk" "$DATA/signed.bin" <<'EOF' || fail "facelink-sender --key: stream differs from seal_packets()"
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
    echo "examples: facelink-sender --key output == Python API signed packets"
    mkdir -m 700 "$TMP/nobody"
    "$BUILD/facelink-receiver" --trust "$DATA/trust" "$TMP/signed.flk" "$TMP/signed.rgb" 2> "$TMP/log" \
        || { cat "$TMP/log" >&2; fail "facelink-receiver --trust refused a trusted, intact stream"; }
    grep -q "signed stream, verified" "$TMP/log" || fail "facelink-receiver --trust: no 'verified' line"
    [ "$(wc -c < "$TMP/signed.rgb")" = "$(wc -c < "$DATA/decoded.rgb")" ] || fail "facelink-receiver --trust: frame count"
    rc=0; "$BUILD/facelink-receiver" --trust "$TMP/nobody" "$TMP/signed.flk" /dev/null 2> "$TMP/log" || rc=$?
    [ "$rc" = 3 ] && grep -q "is not trusted" "$TMP/log" || fail "untrusted signer: exit $rc, expected 3 (refused)"
    rc=0; "$BUILD/facelink-receiver" --trust "$DATA/trust" "$TMP/out.flk" /dev/null 2> "$TMP/log" || rc=$?
    [ "$rc" = 3 ] && grep -q "not signed" "$TMP/log" || fail "unsigned stream without --insecure: exit $rc, expected 3"
    "$BUILD/facelink-receiver" --trust "$TMP/nobody" --insecure "$TMP/signed.flk" /dev/null 2> "$TMP/log" \
        || fail "--insecure refused an untrusted signer's intact stream"
    grep -q "untrusted signer" "$TMP/log" || fail "--insecure: untrusted signer not flagged"
    # flip the last byte of the file (the final seal's signature): the End span fails
    "$PYTHON" -c 'import sys; b = bytearray(open(sys.argv[1], "rb").read()); b[-1] ^= 1; open(sys.argv[2], "wb").write(b)' \
        "$TMP/signed.flk" "$TMP/tampered.flk"
    rc=0; "$BUILD/facelink-receiver" --trust "$DATA/trust" "$TMP/tampered.flk" /dev/null 2> "$TMP/log" || rc=$?
    [ "$rc" = 3 ] && grep -q "failed verification" "$TMP/log" || fail "tampered stream: exit $rc, expected 3"
    echo "examples: facelink-receiver verifies (trusted ok; untrusted, unsigned, tampered refused; --insecure ok)"
fi

"$BUILD/facelink-roundtrip" "$(meta portrait_path)" "$TMP/last.ppm" --frames 4
PW=$(($(meta portrait_width) - 16)); PH=$(($(meta portrait_height) - 16))
head -c 2 "$TMP/last.ppm" | grep -q P6 || fail "facelink-roundtrip wrote no PPM"
[ "$(wc -c < "$TMP/last.ppm")" -gt $((PW * PH * 3)) ] || fail "facelink-roundtrip PPM too small"
echo "examples: facelink-roundtrip ok"
