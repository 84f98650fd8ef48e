/*
 * facelink.h - the FaceLink C ABI (libfacelink.so).
 *
 * FaceLink sends a talking head as ~3 kbit/s of face keypoints and re-synthesises
 * it at the receiver from one reference image.  This header lets C and C++
 * programs (kiosk shells, ROS nodes, robots) use the SDK without writing Python:
 * libfacelink.so embeds the CPython runtime and calls the `facelink.capi` module,
 * so the C API and the Python flat API share their validation, their status
 * codes and their error messages one for one.
 *
 * ---------------------------------------------------------------------------
 * Versioning
 *   FACELINK_ABI_VERSION = (MAJOR << 16) | MINOR.  A program built against this
 *   header runs with any library of the same MAJOR and a MINOR >= its own; check
 *   with FACELINK_ABI_COMPATIBLE(facelink_abi_version()).  MAJOR changes when a
 *   struct layout, a signature or a meaning changes; MINOR when functions, structs
 *   or enum values are added.  The shared object's soname is libfacelink.so.MAJOR.
 *     1.0  the first ABI.
 *     1.1  signed streams and verifying receivers: facelink_sender_security +
 *          facelink_sender_create_ex + facelink_sender_seal, facelink_receiver_security
 *          + facelink_receiver_create_ex + facelink_receiver_verification,
 *          facelink_keys_trust, and FACELINK_E_UNTRUSTED / FACELINK_E_INCOMPLETE.
 *          Every 1.0 function keeps its meaning (facelink_sender_create still sends
 *          unsigned streams, facelink_receiver_create still passes seals over).
 *     1.2  facelink_receiver_set_eye_contact (gaze redirected at the camera).
 *     1.3  facelink_encode_file_ex + facelink_encode_signing (the signing key and a fixed
 *          session, for streams byte-identical to `facelink encode`).  Bug fixes that
 *          bring the file functions to the CLI's meaning: facelink_encode_file now seals
 *          its stream (signed by this machine's local key, as `facelink encode` without
 *          --key), facelink_decode_file writes the provenance manifest beside OUTPUT and
 *          reports a stream that stops before a verified End as FACELINK_E_INCOMPLETE
 *          (report filled), and facelink_verify_file checks the signed manifest (sender,
 *          signature_valid, verdict filled).
 *   Structs added after 1.0 start with `struct_size`, set by their *_init function:
 *   later minors append fields and read them only when struct_size covers them.
 *
 * Signed streams (ABI 1.1; the format and guarantees are in docs/security.md)
 *   A sender created with a key (facelink_sender_create_ex) names its signer in the
 *   session header and emits Ed25519 seal packets, byte for byte what the Python
 *   API's seal_packets() makes of the same stream.  A receiver created with
 *   facelink_receiver_create_ex verifies them against a trust directory, like
 *   `facelink receive`: frames are returned as they arrive (provisionally, at most
 *   one seal interval ahead of their verdict) and the seal that closes their span
 *   says whether they were authentic (FACELINK_OK), not (FACELINK_E_VERIFICATION)
 *   or unverifiable because packets were lost (FACELINK_E_INCOMPLETE).  A stream
 *   without a key is unsigned: verifying receivers refuse it unless insecure.
 *
 * Status codes and errors
 *   Every function that can fail returns a facelink_status (FACELINK_OK == 0) and
 *   sets the calling thread's last error: "" on success, one line on failure,
 *   prefixed with the function's name ("facelink_sender_push: frame stride 10 is
 *   less than ...").  facelink_last_error() returns it; the string belongs to the
 *   library and stays valid on that thread until its next facelink_* call that
 *   returns a status.  Outputs are zeroed (NULL / 0) on failure unless a function
 *   says otherwise.
 *
 * Handles
 *   facelink_sender and facelink_receiver are opaque types used only through
 *   pointers.  The pointer value is a token (a process-wide handle number), never
 *   dereferenced by the library: NULL, garbage, destroyed handles and handles of
 *   the wrong kind are all detected and answered with FACELINK_E_BAD_HANDLE (no
 *   crash, no undefined behaviour).  Handle numbers are never reused within a
 *   process.  Create with *_create, release with *_destroy; destroying NULL is a
 *   no-op that returns FACELINK_OK.
 *
 * Ownership (who frees what)
 *   - Inputs (images, packets, strings) belong to the caller; the library copies
 *     what it needs before the call returns and keeps no pointer to them.
 *   - facelink_packets filled by the library: free with facelink_packets_free().
 *   - facelink_buffer filled by the library: free with facelink_buffer_free().
 *     Do not call free() on their members.  An output struct is overwritten, not
 *     freed: free it before reusing it.
 *   - facelink_frame.image.data (receiver output) is lent by the library: valid
 *     until the next call on the same receiver (from any thread) or its
 *     destruction.  Copy the pixels if you need them longer.
 *   - Strings returned as const char * (facelink_last_error, facelink_version,
 *     facelink_status_name) belong to the library; never free them.
 *
 * Threads
 *   Every function may be called from any thread, at any time, including before
 *   facelink_init() (the runtime starts on first use, exactly once).  Calls on
 *   one handle are serialised by a per-handle lock: a second caller blocks until
 *   the first returns (so share a handle between threads only if that is what you
 *   want; a frame lent by facelink_receiver_push is invalidated by the next call
 *   on that receiver from *any* thread).  Calls on different handles run
 *   concurrently wherever the work releases Python's GIL: ONNX Runtime inference
 *   (face tracking, the generator's warp), large numpy operations, video
 *   encoding/decoding in PyAV and file I/O do; Python-level bookkeeping between
 *   them runs one thread at a time.  Each call takes the GIL on entry and gives it
 *   back before returning; a thread blocked on a handle lock does not hold it.
 *   No callback ever runs on your threads.  Do not fork() after the first call
 *   without exec().
 *
 * Python runtime
 *   On first use the library starts CPython (unless the process already runs it,
 *   e.g. when loaded by Python's ctypes.CDLL, which releases the GIL around foreign
 *   calls; then it uses that interpreter) and imports facelink.capi.  The
 *   interpreter is found as follows, first match wins:
 *     1. FACELINK_PYTHON: path of a Python executable, typically a virtual
 *        environment's (e.g. /opt/facelink/.venv/bin/python3); the runtime then
 *        uses that environment's site-packages exactly like that executable.
 *     2. the executable the library was built with (make PYTHON=...), baked in.
 *   PYTHONPATH and PYTHONHOME are honoured as usual.  Signal handlers are not
 *   installed (SIGINT stays yours).  The runtime lives until the process exits.
 *   If it cannot start, every call returns FACELINK_E_PYTHON with the reason.
 *
 * Pixel buffers (facelink_image)
 *   Rows of `width` pixels in `format`, `stride` bytes apart (stride >= width *
 *   bytes per pixel), `height` rows; `size` bytes readable at `data`, at least
 *   stride * (height - 1) + width * bytes_per_pixel (stride * height always
 *   suffices).  Width and height are 1..16384.
 */
#ifndef FACELINK_H
#define FACELINK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define FACELINK_API __attribute__((visibility("default")))
#else
#define FACELINK_API
#endif

#define FACELINK_ABI_VERSION_MAJOR 1
#define FACELINK_ABI_VERSION_MINOR 3
#define FACELINK_ABI_VERSION ((FACELINK_ABI_VERSION_MAJOR << 16) | FACELINK_ABI_VERSION_MINOR)
/* non-zero if a library reporting `v` (facelink_abi_version()) serves this header */
#define FACELINK_ABI_COMPATIBLE(v) \
    ((((v) >> 16) == FACELINK_ABI_VERSION_MAJOR) && ((long)((v) & 0xFFFF) >= FACELINK_ABI_VERSION_MINOR))

/* session ids are exactly this many bytes */
#define FACELINK_SESSION_ID_SIZE 16
/* a key fingerprint: 16 hex digits and a NUL */
#define FACELINK_FINGERPRINT_SIZE 17

/* ------------------------------------------------------------------ enums */

typedef enum facelink_status {
    FACELINK_OK = 0,
    FACELINK_E_INVALID_ARGUMENT = 1, /* NULL where a value is required, value out of range, buffer too small */
    FACELINK_E_BAD_HANDLE = 2,       /* NULL, unknown, destroyed or wrong-kind handle */
    FACELINK_E_STATE = 3,            /* call out of order: push before start, anything after end, start twice */
    FACELINK_E_INVALID_PACKET = 4,   /* malformed, truncated or inconsistent packet or stream */
    FACELINK_E_NO_FACE = 5,          /* an image that must show a face (reference, target) shows none */
    FACELINK_E_INPUT = 6,            /* an input file or URI cannot be used (missing, not a video/image) */
    FACELINK_E_IO = 7,               /* operating-system error reading or writing a file */
    FACELINK_E_VERIFICATION = 8,     /* a signature, seal or watermark check failed (receivers: see facelink_receiver_push) */
    FACELINK_E_BACKEND = 9,          /* the inference backend cannot run here */
    FACELINK_E_MODEL_FETCH = 10,     /* models could not be fetched, verified or converted */
    FACELINK_E_UNSUPPORTED = 11,     /* feature not available in the installed facelink package */
    FACELINK_E_RUNTIME = 12,         /* any other FaceLink runtime failure */
    FACELINK_E_NO_MEMORY = 13,       /* out of memory (or out of handle numbers) */
    FACELINK_E_PYTHON = 14,          /* the Python runtime or the facelink package could not be started */
    FACELINK_E_INTERNAL = 15,        /* a bug: unexpected exception (set FACELINK_DEBUG=1 for a traceback) */
    /* ABI 1.1 */
    FACELINK_E_UNTRUSTED = 16,       /* a verifying receiver refused the session: unsigned, untrusted/revoked signer */
    FACELINK_E_INCOMPLETE = 17       /* a seal closed a span that lost packets: its frames cannot be verified */
} facelink_status;

/* pixel layouts, bytes in address order */
typedef enum facelink_pixel_format {
    FACELINK_PIXEL_RGB24 = 1,
    FACELINK_PIXEL_BGR24 = 2,
    FACELINK_PIXEL_RGBA32 = 3, /* alpha ignored on input, 255 on output */
    FACELINK_PIXEL_BGRA32 = 4, /* alpha ignored on input, 255 on output */
    FACELINK_PIXEL_GRAY8 = 5   /* input: R=G=B=Y; output: Y = (77 R + 150 G + 29 B + 128) >> 8 */
} facelink_pixel_format;

/* how a frame was coded */
typedef enum facelink_frame_kind {
    FACELINK_FRAME_KEY = 1,       /* self-contained */
    FACELINK_FRAME_PREDICTED = 2, /* relative to the previous frame */
    FACELINK_FRAME_NO_FACE = 3,   /* no face in this frame: the receiver holds the last image */
    FACELINK_FRAME_LOST = 4       /* its basis was lost (packet loss): the receiver holds the last image */
} facelink_frame_kind;

/* ------------------------------------------------------------------ plain types */

typedef struct facelink_image {
    const uint8_t *data; /* first byte of the first row */
    size_t size;         /* bytes readable at data */
    int32_t width;       /* pixels, 1..16384 */
    int32_t height;      /* rows, 1..16384 */
    int32_t stride;      /* bytes from one row start to the next, >= width * bytes per pixel */
    int32_t format;      /* a facelink_pixel_format */
} facelink_image;

/* Bytes owned by the library; free with facelink_buffer_free().  Text outputs are
 * NUL-terminated (the NUL is not counted in size). */
typedef struct facelink_buffer {
    uint8_t *data;
    size_t size;
} facelink_buffer;

/* A list of packets, back to back in one allocation; free with facelink_packets_free().
 * Packet i is data[offsets[i] .. offsets[i + 1]); send each as one message, in order. */
typedef struct facelink_packets {
    size_t count;     /* number of packets (may be 0) */
    uint8_t *data;    /* all packets' bytes (NULL when the total is 0) */
    size_t *offsets;  /* count + 1 entries */
} facelink_packets;

static inline const uint8_t *facelink_packet_data(const facelink_packets *p, size_t i) {
    return p->data + p->offsets[i];
}
static inline size_t facelink_packet_size(const facelink_packets *p, size_t i) {
    return p->offsets[i + 1] - p->offsets[i];
}

typedef struct facelink_sender facelink_sender;     /* opaque, see "Handles" */
typedef struct facelink_receiver facelink_receiver; /* opaque, see "Handles" */

/* ------------------------------------------------------------------ library */

/* FACELINK_ABI_VERSION of the library (no Python needed): (1 << 16) | 3 for ABI 1.3.
 * A program that uses a 1.1 function checks FACELINK_ABI_COMPATIBLE(facelink_abi_version())
 * first (a 1.0 library lacks the symbol: with lazy binding the call would abort). */
FACELINK_API uint32_t facelink_abi_version(void);

/* Start the runtime now instead of on first use (optional; idempotent, thread-safe).
 * FACELINK_E_PYTHON with the reason if Python or the facelink package cannot start. */
FACELINK_API facelink_status facelink_init(void);

/* The facelink Python package version ("0.1.0"), or NULL if the runtime cannot start. */
FACELINK_API const char *facelink_version(void);

/* This thread's last error message ("" after a success).  Never NULL. */
FACELINK_API const char *facelink_last_error(void);

/* "FACELINK_OK", "FACELINK_E_BAD_HANDLE", ...; "FACELINK_E_UNKNOWN" for other values. */
FACELINK_API const char *facelink_status_name(facelink_status status);

/* Bytes per pixel of a facelink_pixel_format, 0 if unknown. */
FACELINK_API int32_t facelink_bytes_per_pixel(int32_t format);

/* Release a buffer's bytes and zero it.  NULL and already-freed buffers are fine. */
FACELINK_API void facelink_buffer_free(facelink_buffer *buffer);

/* Release a packet list and zero it.  NULL and already-freed lists are fine. */
FACELINK_API void facelink_packets_free(facelink_packets *packets);

/* Load a still image file (PNG, JPEG, ...) as tightly packed pixels of `format`
 * (images whose long side exceeds 2048 are downscaled, as for every reference).
 * `pixels` receives width * height * bytes-per-pixel bytes (free with
 * facelink_buffer_free); `image`, if not NULL, is filled to describe them
 * (image->data == pixels->data). */
FACELINK_API facelink_status facelink_image_load(const char *path, int32_t format, facelink_buffer *pixels,
                                                 facelink_image *image);

/* ------------------------------------------------------------------ sender */

typedef struct facelink_sender_config {
    int32_t width, height;       /* size of every frame you will push (pixels) */
    int32_t fps_num, fps_den;    /* nominal frame rate, e.g. 30/1 or 30000/1001 (default 30/1) */
    const char *quality;         /* "low" | "medium" | "high"; NULL = "medium" */
    double kbps;                 /* > 0: the finest operating point whose typical rate fits (overrides quality) */
    int32_t key_interval;        /* frames between key frames, 1..65535; 0 = the preset's (60) */
    const char *backend;         /* "auto" | "onnxruntime" | "tensorrt"; NULL = "auto" (honours FACELINK_BACKEND) */
    const uint8_t *session_id;   /* FACELINK_SESSION_ID_SIZE bytes, or NULL = random */
    int64_t created_us;          /* session creation time, microseconds since the Unix epoch; < 0 = now */
} facelink_sender_config;

/* Defaults: fps 30/1, quality "medium", backend "auto", random session id, created now;
 * width and height are 0 and must be set. */
FACELINK_API void facelink_sender_config_init(facelink_sender_config *config);

/* A sender for frames of config->width x config->height.  `reference` shows the face
 * as the receiver will render it: use a frame of the same camera (the stream's
 * motion is relative to it).  Loads the face models (fetched on first use; slow
 * the first time).  FACELINK_E_NO_FACE if the reference shows no face.
 * `session_id` and `created_us` fix the session header: with both set, the same
 * frames give the same packets, byte for byte. */
FACELINK_API facelink_status facelink_sender_create(const facelink_sender_config *config,
                                                    const facelink_image *reference, facelink_sender **sender);

/* The session header and the reference chunks (~80 KB for a 512x512 reference), in
 * sending order.  Once, before the first push. */
FACELINK_API facelink_status facelink_sender_start(facelink_sender *sender, facelink_packets *packets);

/* Track the face in one frame and code it.  `index` must increase from frame to frame
 * (gaps are fine); `time_s` is the capture time in seconds.  `packets` receives the
 * frame's packet(s) (today exactly one, ~10-20 bytes); `kind`, if not NULL, how it was
 * coded (a facelink_frame_kind).  The image must be config->width x config->height. */
FACELINK_API facelink_status facelink_sender_push(facelink_sender *sender, const facelink_image *frame,
                                                  int64_t index, double time_s, facelink_packets *packets,
                                                  int32_t *kind);

/* The end-of-stream packet(s).  Afterwards the sender accepts no more frames. */
FACELINK_API facelink_status facelink_sender_end(facelink_sender *sender, facelink_packets *packets);

typedef struct facelink_sender_stats {
    int64_t frames;          /* frames pushed */
    int64_t face_frames;     /* ... showing a face */
    int64_t key_frames;      /* ... coded as key frames */
    int64_t bytes;           /* packet bytes so far, reference chunks excluded */
    int64_t reference_bytes; /* size of the reference (sent once) */
} facelink_sender_stats;

FACELINK_API facelink_status facelink_sender_stats_get(facelink_sender *sender, facelink_sender_stats *stats);

/* Release a sender.  NULL is a no-op.  Waits for a call in flight on it to return. */
FACELINK_API facelink_status facelink_sender_destroy(facelink_sender *sender);

/* ABI 1.1: how a sender signs its stream. */
typedef struct facelink_sender_security {
    uint32_t struct_size;   /* sizeof(facelink_sender_security); set by facelink_sender_security_init */
    const char *key;        /* identity: a NAME.key file of facelink_keys_generate / `facelink keys generate`
                               (mode 0600), or a key name in $FACELINK_HOME/keys; NULL = unsigned stream */
    double seal_interval;   /* seconds of stream between seals, (0, 60]; 0 = 0.5 (the CLI's default) */
} facelink_sender_security;

/* Defaults: struct_size set, no key (unsigned), seal_interval 0 (= 0.5 s). */
FACELINK_API void facelink_sender_security_init(facelink_sender_security *security);

/* facelink_sender_create, and with security->key a signed stream:
 *   - the session header carries the signer's Ed25519 public key (extension tag 2);
 *   - facelink_sender_start returns header, seal, reference chunks, seal (the header and
 *     the reference each get a span of their own);
 *   - facelink_sender_push returns the frame packet and, after every floor(seal_interval
 *     * fps)-th frame, a seal (so seals come every seal_interval seconds of stream at the
 *     nominal frame rate; seal times are stream times counted from the header);
 *   - facelink_sender_end returns [seal of the pending frames], End, seal.
 * With the same frames, session id, created_us and key, the packets are byte for byte
 * those of the Python API (seal_packets() over the FrameEncoder's stream).  Seal packets
 * (~73 bytes) are not counted in facelink_sender_stats.bytes.  If frames come slower than
 * the nominal rate (a stalled camera), call facelink_sender_seal to close the span.
 * `security` NULL, or security->key NULL: an unsigned stream, exactly as facelink_sender_create
 * (verifying receivers refuse it unless insecure).  A missing, unreadable or too-open
 * (not 0600) key file is FACELINK_E_INPUT; a struct_size below this header's
 * sizeof(facelink_sender_security), or seal_interval without a key, FACELINK_E_INVALID_ARGUMENT. */
FACELINK_API facelink_status facelink_sender_create_ex(const facelink_sender_config *config,
                                                       const facelink_image *reference,
                                                       const facelink_sender_security *security,
                                                       facelink_sender **sender);

/* Close the current span now: `packets` receives one seal, or none if no packet awaits
 * one.  Between start and end, signed senders only (else FACELINK_E_STATE). */
FACELINK_API facelink_status facelink_sender_seal(facelink_sender *sender, facelink_packets *packets);

/* ------------------------------------------------------------------ receiver */

typedef struct facelink_receiver_config {
    int32_t format;               /* pixel format of output frames (default FACELINK_PIXEL_RGB24) */
    double yaw, pitch, roll;      /* re-pose the head, degrees within +-30, +-20, +-20 (free view) */
    const char *backend;          /* NULL = "auto" */
    const facelink_image *target; /* another face to drive (motion transfer), or NULL = the stream's reference */
} facelink_receiver_config;

/* Defaults: RGB24, no re-posing, backend "auto", no target. */
FACELINK_API void facelink_receiver_config_init(facelink_receiver_config *config);

/* A receiver.  `config` NULL = defaults.  With a target, loads the face models and
 * fails with FACELINK_E_NO_FACE if the target shows no face. */
FACELINK_API facelink_status facelink_receiver_create(const facelink_receiver_config *config,
                                                      facelink_receiver **receiver);

typedef struct facelink_frame {
    int64_t index;        /* the sender's frame index */
    double time;          /* the sender's capture time (seconds) */
    int32_t kind;         /* a facelink_frame_kind */
    int32_t held;         /* 1: no new face in this frame, the image repeats the last one */
    facelink_image image; /* at the reference's (or target's) size; data lent, see "Ownership" */
} facelink_frame;

/* Feed one packet (in arrival order; losses are fine).  For a frame packet, *has_frame
 * is 1 and `frame` describes the output image; for the header, reference chunks, seals
 * and control packets *has_frame is 0 and `frame` is zeroed.  FACELINK_E_INVALID_PACKET
 * for a malformed packet: skip it and go on, the receiver stays usable.  Rendering takes
 * tens of milliseconds per frame on a laptop CPU.
 *
 * A receiver of facelink_receiver_create passes seal packets over (no verification;
 * the ABI 1.0 behaviour).  A receiver of facelink_receiver_create_ex verifies every
 * packet before it is decoded, with the policy of `facelink receive` (docs/security.md,
 * sections 5 and 6): frames are rendered and returned as they arrive, provisionally,
 * and the seal packet that closes their span (at most one seal interval, 0.5 s, later)
 * returns the verdict on them:
 *   FACELINK_OK              verified: exactly the signer's packets, in order;
 *   FACELINK_E_VERIFICATION  not authentic: the seal does not verify although nothing
 *                            was seen missing (a packet altered, injected, reordered or
 *                            spliced, a forged seal), or a replayed seal (ignored);
 *   FACELINK_E_INCOMPLETE    packets of the span were lost (or the receiver joined
 *                            mid-span): its frames cannot be verified (not a sign of
 *                            innocence either).
 *   The message names the packets (arrival numbers, from 0) and the frame indices
 *   returned among them.  The receiver stays usable after both; the next span is
 *   verified afresh.  To show only verified frames, keep copies of the frames and
 *   release them at the seal's FACELINK_OK.
 * Session refusal: an unsigned stream (unless insecure), a signer not in the trust
 * directory or revoked (unless insecure), a malformed signer key, or (max_age) a seal
 * signed too long ago is FACELINK_E_UNTRUSTED at the packet that shows it (normally
 * the header) and at every later push: no frame of a refused session is rendered;
 * create a new receiver for another session.  A second session header that differs
 * from the first (another session, or an altered copy) is FACELINK_E_VERIFICATION and
 * is dropped: a verifying receiver shows one session.  Frames of a stream whose seals
 * stop coming are never confirmed: facelink_receiver_verification counts them as
 * packets_pending. */
FACELINK_API facelink_status facelink_receiver_push(facelink_receiver *receiver, const uint8_t *packet,
                                                    size_t size, facelink_frame *frame, int32_t *has_frame);

/* Release a receiver and its lent frame.  NULL is a no-op. */
FACELINK_API facelink_status facelink_receiver_destroy(facelink_receiver *receiver);

/* ABI 1.1: how a receiver verifies (the options of `facelink receive`). */
typedef struct facelink_receiver_security {
    uint32_t struct_size;  /* sizeof(facelink_receiver_security); set by facelink_receiver_security_init */
    const char *trust_dir; /* trusted sender keys (facelink_keys_trust); NULL = $FACELINK_HOME/trust */
    int32_t insecure;      /* 1: accept unsigned streams and untrusted or revoked signers (a signed
                              stream's seals are still checked); 0: refuse them */
    double max_age;        /* > 0: refuse a stream whose seals were signed more than max_age seconds
                              ago (a replayed recording; needs synchronised clocks); 0 = no check */
} facelink_receiver_security;

/* Defaults: struct_size set, the default trust directory, strict (insecure 0), no max_age. */
FACELINK_API void facelink_receiver_security_init(facelink_receiver_security *security);

/* A verifying receiver (see facelink_receiver_push).  `config` NULL = defaults;
 * `security` NULL = defaults (strict, $FACELINK_HOME/trust).  The trust directory is
 * read now: a missing or unsafe (group/other-writable) directory is FACELINK_E_INPUT
 * (with insecure, a missing one means "trust nobody").  Revocations made later apply
 * to receivers created later. */
FACELINK_API facelink_status facelink_receiver_create_ex(const facelink_receiver_config *config,
                                                         const facelink_receiver_security *security,
                                                         facelink_receiver **receiver);

/* The verification summary so far, as JSON text in `report`: signed, signer (fingerprint),
 * signer_name, trusted, seals_accepted, seals_rejected, spans_verified, spans_incomplete,
 * spans_mismatch, frames_verified, frames_unverified, packets_pending (awaiting a seal),
 * ended, end_verified, intact (a complete, fully verified, trusted session), first_problem
 * and refused (the refusal message or null).  FACELINK_E_STATE for a receiver that does
 * not verify (made by facelink_receiver_create). */
FACELINK_API facelink_status facelink_receiver_verification(facelink_receiver *receiver, facelink_buffer *report);

/* ABI 1.2.  Eye contact on (1) or off (0): the rendered gaze is redirected at the camera (the
 * sender's usual gaze at its screen taken out, glances kept, eyes counter-rotated against any
 * re-posing), blinks and lids untouched; `facelink receive --eye-contact`.  Streams without eye
 * channels (bitstream version 1) are unaffected.  Takes effect from the next frame. */
FACELINK_API facelink_status facelink_receiver_set_eye_contact(facelink_receiver *receiver, int32_t on);

/* ------------------------------------------------------------------ files */

typedef struct facelink_encode_options {
    const char *quality;        /* NULL = "medium" */
    double kbps;                /* > 0 overrides quality */
    int32_t key_interval;       /* 0 = the preset's */
    const char *reference_path; /* reference image file; NULL = the first frame showing a face */
    const char *backend;        /* NULL = "auto" */
} facelink_encode_options;

/* `facelink encode INPUT -o OUTPUT`: a video file (or capture URI) to a signed .flk stream
 * (since ABI 1.3 sealed like the CLI's, by this machine's local key $FACELINK_HOME/keys/local.key,
 * created on first use; give another key with facelink_encode_file_ex).  `options` NULL =
 * defaults.  `report`, if not NULL, receives the CLI's --json object (frames, face_frames,
 * bytes, kbps, session, signer, seal_bytes, ...) as NUL-terminated UTF-8 text.  OUTPUT
 * appears only on success. */
FACELINK_API facelink_status facelink_encode_file(const char *input, const char *output,
                                                  const facelink_encode_options *options, facelink_buffer *report);

/* ABI 1.3: who signs a file encode, and an optional fixed session header. */
typedef struct facelink_encode_signing {
    uint32_t struct_size;       /* sizeof(facelink_encode_signing); set by facelink_encode_signing_init */
    const char *key;            /* a NAME.key file or a key name in $FACELINK_HOME/keys (`--key`);
                                   NULL = this machine's local key */
    const uint8_t *session_id;  /* FACELINK_SESSION_ID_SIZE bytes (`--session-id`); NULL = random */
    int64_t created_us;         /* session creation time, microseconds since 1970 (`--created-us`); -1 = now */
} facelink_encode_signing;

/* Defaults: struct_size set, the local key, a random session id, created now. */
FACELINK_API void facelink_encode_signing_init(facelink_encode_signing *signing);

/* ABI 1.3.  `facelink encode INPUT -o OUTPUT [--key KEY] [--session-id HEX --created-us US]`:
 * facelink_encode_file with the signer and session of `signing` (NULL = defaults).  With the
 * same input, options, key, session id and created_us the stream is byte for byte the CLI's.
 * A struct_size below this header's sizeof(facelink_encode_signing) is
 * FACELINK_E_INVALID_ARGUMENT; a missing or too-open key file FACELINK_E_INPUT. */
FACELINK_API facelink_status facelink_encode_file_ex(const char *input, const char *output,
                                                     const facelink_encode_options *options,
                                                     const facelink_encode_signing *signing, facelink_buffer *report);

typedef struct facelink_decode_options {
    const char *reference_path; /* drive this image instead of the stream's reference; NULL = none */
    double yaw, pitch, roll;    /* free view, as in facelink_receiver_config */
    const char *backend;        /* NULL = "auto" */
    const char *trust_dir;      /* trusted sender keys; NULL = $FACELINK_HOME/trust */
    int32_t insecure;           /* 1: accept unsigned streams and untrusted signers (seals still checked) */
} facelink_decode_options;

/* `facelink decode INPUT -o OUTPUT [--trust DIR] [--insecure]`: a .flk stream to an
 * H.264 MP4, one frame per encoded frame, watermarked, with the signed provenance manifest
 * OUTPUT.facelink.json beside it (ABI 1.3: beside OUTPUT itself) and C2PA Content
 * Credentials where available.  `options` NULL = defaults.  The stream's seals are
 * verified first: an unsigned stream, an untrusted signer or a broken seal is
 * FACELINK_E_VERIFICATION (unless `insecure`; a broken seal always is), a missing trust
 * directory FACELINK_E_INPUT.  Where the CLI exits 3 with a written video, `report` is
 * still filled: damaged packets skipped is FACELINK_E_INVALID_PACKET, a stream that stops
 * before a verified End (ABI 1.3) FACELINK_E_INCOMPLETE.  `report` is the CLI's --json object. */
FACELINK_API facelink_status facelink_decode_file(const char *input, const char *output,
                                                  const facelink_decode_options *options, facelink_buffer *report);

/* ------------------------------------------------------------------ keys and verification */

/* `facelink keys generate NAME`: a new identity in DIRECTORY/NAME.key (mode 0600) and
 * DIRECTORY/NAME.pub; never overwrites.  `directory` NULL = $FACELINK_HOME/keys.
 * `fingerprint`, if not NULL, receives the 16-hex-digit fingerprint; `report`, if not
 * NULL, JSON {"name", "fingerprint", "key", "pub"}.  FACELINK_E_UNSUPPORTED if the
 * installed facelink package has no key management. */
FACELINK_API facelink_status facelink_keys_generate(const char *name, const char *directory,
                                                    char fingerprint[FACELINK_FINGERPRINT_SIZE],
                                                    facelink_buffer *report);

/* ABI 1.1.  `facelink keys trust PUB [--dir DIRECTORY]`: copy a sender's public key (a
 * NAME.pub, or the public half of a NAME.key) into a trust directory (created with mode
 * 0700 if missing; NULL = $FACELINK_HOME/trust).  `fingerprint`, if not NULL, receives its
 * fingerprint; `report`, if not NULL, JSON {"fingerprint", "name", "path", "added"}
 * ("added" false: it was already trusted).  A revoked key is FACELINK_E_INPUT. */
FACELINK_API facelink_status facelink_keys_trust(const char *pub, const char *directory,
                                                 char fingerprint[FACELINK_FINGERPRINT_SIZE], facelink_buffer *report);

/* `facelink verify VIDEO [--trust DIR]`: is this video synthetic, and from whom?
 * `report` (required) receives the CLI's JSON object (synthetic, p_value,
 * frames_analyzed, frames_marked, session, sender, receiver, signature_valid, verdict, ...;
 * docs/provenance.md lists every key): the watermark and the signed provenance manifest
 * (VIDEO.facelink.json beside it, or embedded C2PA), keys judged by `trust_dir` (NULL =
 * $FACELINK_HOME/trust if it exists).
 * FACELINK_OK whenever the analysis ran, whatever it found.  FACELINK_E_UNSUPPORTED
 * if the installed facelink package has no watermark verification. */
FACELINK_API facelink_status facelink_verify_file(const char *video, const char *trust_dir, facelink_buffer *report);

#ifdef __cplusplus
}
#endif

#endif /* FACELINK_H */
