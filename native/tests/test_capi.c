/*
 * C tests of libfacelink: every error path's status and message, handle lifecycle,
 * per-thread errors, byte-exact equality with FaceLink's Python API, and (ABI 1.1)
 * signed streams: the signed sender against seal_packets(), and verifying receivers
 * on trusted, untrusted, insecure, tampered, reordered, lossy and replayed streams.
 *
 *   test_capi TESTDATA_DIR [--frames N] [--light]
 *
 * TESTDATA_DIR is written by make_expected.py (the Python API's outputs for the same
 * frames, session id and timestamps).  --frames N uses only the first N frames; --light
 * skips the checks that exercise no further C code (the no-face references, the second
 * sender and the extra receivers, whole-file encode/decode), for the slow memcheck run, and
 * compares the sender's packets by count, size class and kind instead of byte for byte:
 * valgrind emulates a CPU without AVX-512, so ONNX Runtime picks other kernels there and
 * the reference landmarks (hence the reference chunks and the header's digest) differ in
 * the last float bits.  Exit status 0 = all checks passed.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "facelink.h"

/* ------------------------------------------------------------------ harness */

static int g_checks, g_failures;

#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        g_checks++;                                                        \
        if (!(cond)) {                                                     \
            g_failures++;                                                  \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);           \
            fprintf(stderr, __VA_ARGS__);                                  \
            fprintf(stderr, "\n");                                         \
        }                                                                  \
    } while (0)

/* status == want and this thread's last error contains `part` (or is "" for FACELINK_OK) */
#define EXPECT(call, want, part) expect_status((call), (want), (part), #call, __LINE__)

static void expect_status(facelink_status got, facelink_status want, const char *part, const char *what, int line) {
    const char *err = facelink_last_error();
    g_checks++;
    int ok = got == want && err != NULL;
    if (ok && want == FACELINK_OK) ok = err[0] == '\0';
    if (ok && want != FACELINK_OK) ok = part == NULL || strstr(err, part) != NULL;
    if (!ok) {
        g_failures++;
        fprintf(stderr, "FAIL line %d: %s\n  got %s \"%s\"\n  want %s containing \"%s\"\n", line, what,
                facelink_status_name(got), err ? err : "(null)", facelink_status_name(want), part ? part : "");
    }
}

typedef struct {
    char dir[1024];
    int width, height, frames, fps_num, fps_den;
    uint8_t session_id[FACELINK_SESSION_ID_SIZE];
    long long created_us;
    int models, keys, verify;
    int packets, start_packets, decoded, out_width, out_height;
    int signed_, signed_packets;
    double seal_interval;
    int portrait_width, portrait_height;
    int kinds[64];
    char portrait_path[1024];
    char signer[FACELINK_FINGERPRINT_SIZE];
    char reason[1024];
} testdata;

static testdata T;
static int g_frames; /* frames used (<= T.frames) */
static int g_light;  /* --light: skip checks that only repeat Python-side work (for memcheck) */

static uint8_t *read_file(const char *name, size_t *size) {
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", T.dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s: %s\n", path, strerror(errno));
        exit(2);
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *data = malloc(n > 0 ? (size_t)n : 1);
    if (!data || fread(data, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(2);
    }
    fclose(f);
    *size = (size_t)n;
    return data;
}

static void load_meta(const char *dir) {
    snprintf(T.dir, sizeof T.dir, "%s", dir);
    size_t n;
    char *text = (char *)read_file("meta.txt", &n);
    text = realloc(text, n + 1);
    text[n] = '\0';
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        char *value = strchr(line, ' ');
        if (!value) continue;
        *value++ = '\0';
#define INT(k) else if (!strcmp(line, #k)) T.k = atoi(value)
        if (0) {
        }
        INT(width); INT(height); INT(frames); INT(fps_num); INT(fps_den); INT(models); INT(keys); INT(verify);
        INT(packets); INT(start_packets); INT(decoded); INT(out_width); INT(out_height);
        INT(portrait_width); INT(portrait_height);
#undef INT
        else if (!strcmp(line, "created_us")) T.created_us = atoll(value);
        else if (!strcmp(line, "signed")) T.signed_ = atoi(value);
        else if (!strcmp(line, "signed_packets")) T.signed_packets = atoi(value);
        else if (!strcmp(line, "seal_interval")) T.seal_interval = atof(value);
        else if (!strcmp(line, "portrait_path")) snprintf(T.portrait_path, sizeof T.portrait_path, "%s", value);
        else if (!strcmp(line, "signer")) snprintf(T.signer, sizeof T.signer, "%s", value);
        else if (!strcmp(line, "reason")) snprintf(T.reason, sizeof T.reason, "%s", value);
        else if (!strcmp(line, "session_id")) {
            for (int i = 0; i < FACELINK_SESSION_ID_SIZE; i++) sscanf(value + 2 * i, "%2hhx", &T.session_id[i]);
        } else if (!strcmp(line, "kinds")) {
            int i = 0;
            for (char *p = value; *p && i < 64; i++) {
                T.kinds[i] = (int)strtol(p, &p, 10);
                if (*p == ',') p++;
            }
        }
    }
    free(text);
}

/* packets.bin: u32 LE length + bytes, repeated */
typedef struct {
    size_t count;
    uint8_t **data;
    size_t *size;
    uint8_t *blob;
} packet_file;

static packet_file load_packets_from(const char *name, int count) {
    packet_file pf = {0};
    size_t n;
    pf.blob = read_file(name, &n);
    pf.data = calloc((size_t)count, sizeof *pf.data);
    pf.size = calloc((size_t)count, sizeof *pf.size);
    for (size_t at = 0; at + 4 <= n && pf.count < (size_t)count; pf.count++) {
        uint32_t len = (uint32_t)pf.blob[at] | (uint32_t)pf.blob[at + 1] << 8 | (uint32_t)pf.blob[at + 2] << 16 |
                       (uint32_t)pf.blob[at + 3] << 24;
        pf.data[pf.count] = pf.blob + at + 4;
        pf.size[pf.count] = len;
        at += 4 + len;
    }
    return pf;
}

static packet_file load_packets(void) { return load_packets_from("packets.bin", T.packets); }

static void free_packets(packet_file *pf) {
    free(pf->blob);
    free(pf->data);
    free(pf->size);
}

static facelink_image rgb_image(const uint8_t *data, int w, int h) {
    facelink_image img = {data, (size_t)w * h * 3, w, h, w * 3, FACELINK_PIXEL_RGB24};
    return img;
}

/* an RGB24 image re-laid out as `format` with `stride` bytes per row (caller frees .data) */
static facelink_image convert(const uint8_t *rgb, int w, int h, int32_t format, int stride) {
    int bpp = facelink_bytes_per_pixel(format);
    uint8_t *out = malloc((size_t)stride * h);
    memset(out, 0xAB, (size_t)stride * h); /* padding and alpha carry junk: it must be ignored */
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            const uint8_t *s = rgb + ((size_t)y * w + x) * 3;
            uint8_t *d = out + (size_t)y * stride + (size_t)x * bpp;
            switch (format) {
            case FACELINK_PIXEL_RGB24: d[0] = s[0], d[1] = s[1], d[2] = s[2]; break;
            case FACELINK_PIXEL_BGR24: d[0] = s[2], d[1] = s[1], d[2] = s[0]; break;
            case FACELINK_PIXEL_RGBA32: d[0] = s[0], d[1] = s[1], d[2] = s[2]; break;
            case FACELINK_PIXEL_BGRA32: d[0] = s[2], d[1] = s[1], d[2] = s[0]; break;
            case FACELINK_PIXEL_GRAY8: d[0] = (uint8_t)((77 * s[0] + 150 * s[1] + 29 * s[2] + 128) >> 8); break;
            }
        }
    facelink_image img = {out, (size_t)stride * h, w, h, stride, format};
    return img;
}

/* ------------------------------------------------------------------ tests without Python */

static void test_pure(void) {
    CHECK(facelink_abi_version() == FACELINK_ABI_VERSION, "abi %x", facelink_abi_version());
    CHECK(FACELINK_ABI_COMPATIBLE(facelink_abi_version()), "abi not compatible with itself");
    CHECK(!FACELINK_ABI_COMPATIBLE((uint32_t)(FACELINK_ABI_VERSION_MAJOR + 1) << 16), "other major accepted");
    CHECK(!strcmp(facelink_status_name(FACELINK_OK), "FACELINK_OK"), "name OK");
    CHECK(!strcmp(facelink_status_name(FACELINK_E_BAD_HANDLE), "FACELINK_E_BAD_HANDLE"), "name bad handle");
    CHECK(!strcmp(facelink_status_name(FACELINK_E_INTERNAL), "FACELINK_E_INTERNAL"), "name internal");
    CHECK(!strcmp(facelink_status_name((facelink_status)99), "FACELINK_E_UNKNOWN"), "name unknown");
    CHECK(facelink_bytes_per_pixel(FACELINK_PIXEL_RGB24) == 3 && facelink_bytes_per_pixel(FACELINK_PIXEL_BGRA32) == 4 &&
              facelink_bytes_per_pixel(FACELINK_PIXEL_GRAY8) == 1 && facelink_bytes_per_pixel(0) == 0,
          "bytes per pixel");
    facelink_buffer_free(NULL);
    facelink_packets_free(NULL);
    facelink_buffer b = {0};
    facelink_buffer_free(&b);
    facelink_buffer_free(&b);
    facelink_packets p = {0};
    facelink_packets_free(&p);
    CHECK(b.data == NULL && p.data == NULL && p.offsets == NULL, "free of empty structs");
    facelink_sender_config sc;
    facelink_sender_config_init(&sc);
    CHECK(sc.fps_num == 30 && sc.fps_den == 1 && sc.created_us < 0 && sc.session_id == NULL && sc.width == 0,
          "sender config defaults");
    facelink_receiver_config rc;
    facelink_receiver_config_init(&rc);
    CHECK(rc.format == FACELINK_PIXEL_RGB24 && rc.target == NULL && rc.yaw == 0, "receiver config defaults");
    CHECK(facelink_last_error() != NULL && facelink_last_error()[0] == '\0', "no error before any call");
}

/* output pointers are checked in C, before the runtime starts */
static void test_null_outputs(void) {
    facelink_sender_config cfg;
    facelink_sender_config_init(&cfg);
    uint8_t px[12] = {0};
    facelink_image img = rgb_image(px, 2, 2);
    facelink_frame frame;
    int32_t has = 7;
    EXPECT(facelink_sender_create(&cfg, &img, NULL), FACELINK_E_INVALID_ARGUMENT,
           "facelink_sender_create: sender (output) is NULL");
    EXPECT(facelink_sender_start(NULL, NULL), FACELINK_E_INVALID_ARGUMENT, "facelink_sender_start: packets (output) is NULL");
    EXPECT(facelink_sender_push(NULL, &img, 0, 0.0, NULL, NULL), FACELINK_E_INVALID_ARGUMENT,
           "facelink_sender_push: packets (output) is NULL");
    EXPECT(facelink_sender_end(NULL, NULL), FACELINK_E_INVALID_ARGUMENT, "facelink_sender_end: packets (output) is NULL");
    EXPECT(facelink_sender_stats_get(NULL, NULL), FACELINK_E_INVALID_ARGUMENT, "stats (output) is NULL");
    EXPECT(facelink_receiver_create(NULL, NULL), FACELINK_E_INVALID_ARGUMENT, "receiver (output) is NULL");
    EXPECT(facelink_receiver_push(NULL, px, 1, NULL, &has), FACELINK_E_INVALID_ARGUMENT, "frame (output) is NULL");
    CHECK(has == 0, "has_frame zeroed on failure");
    EXPECT(facelink_receiver_push(NULL, px, 1, &frame, NULL), FACELINK_E_INVALID_ARGUMENT,
           "has_frame (output) is NULL");
    EXPECT(facelink_image_load("x.png", FACELINK_PIXEL_RGB24, NULL, NULL), FACELINK_E_INVALID_ARGUMENT,
           "facelink_image_load: pixels (output) is NULL");
    EXPECT(facelink_verify_file("x.mp4", NULL, NULL), FACELINK_E_INVALID_ARGUMENT, "report (output) is NULL");
    facelink_packets pk;
    EXPECT(facelink_sender_push(NULL, NULL, 0, 0.0, &pk, NULL), FACELINK_E_INVALID_ARGUMENT,
           "facelink_sender_push: frame is NULL");
    facelink_sender *s = (facelink_sender *)1;
    EXPECT(facelink_sender_create(NULL, &img, &s), FACELINK_E_INVALID_ARGUMENT, "config is NULL");
    CHECK(s == NULL, "sender output zeroed on failure");
    EXPECT(facelink_sender_create(&cfg, NULL, &s), FACELINK_E_INVALID_ARGUMENT, "reference is NULL");
}

/* ------------------------------------------------------------------ validation in facelink.capi */

static void test_init(void) {
    EXPECT(facelink_init(), FACELINK_OK, NULL);
    EXPECT(facelink_init(), FACELINK_OK, NULL);
    const char *v = facelink_version();
    CHECK(v && strlen(v) > 0 && strchr(v, '.'), "version \"%s\"", v ? v : "(null)");
}

static void test_sender_arguments(void) {
    uint8_t px[16 * 16 * 4];
    memset(px, 128, sizeof px);
    facelink_sender_config cfg;
    facelink_sender_config_init(&cfg);
    cfg.width = 64;
    cfg.height = 48;
    facelink_sender *s = NULL;
    facelink_image ref = rgb_image(px, 16, 16);

    facelink_image bad = ref;
    bad.data = NULL;
    EXPECT(facelink_sender_create(&cfg, &bad, &s), FACELINK_E_INVALID_ARGUMENT,
           "facelink_sender_create: reference data is NULL");
    bad = ref;
    bad.stride = 47;
    EXPECT(facelink_sender_create(&cfg, &bad, &s), FACELINK_E_INVALID_ARGUMENT,
           "reference stride 47 is less than width * bytes_per_pixel = 48");
    bad = ref;
    bad.size = 100;
    EXPECT(facelink_sender_create(&cfg, &bad, &s), FACELINK_E_INVALID_ARGUMENT,
           "reference size 100 is less than stride * (height - 1) + width * bytes_per_pixel = 768");
    bad = ref;
    bad.stride = 64; /* 16 RGBA pixels' worth, but an RGB image: last row needs 15*64 + 48 = 1008 */
    bad.size = 1007;
    EXPECT(facelink_sender_create(&cfg, &bad, &s), FACELINK_E_INVALID_ARGUMENT, "= 1008");
    bad = ref;
    bad.format = 0;
    EXPECT(facelink_sender_create(&cfg, &bad, &s), FACELINK_E_INVALID_ARGUMENT, "reference format 0 is not a pixel format");
    bad = ref;
    bad.width = 0;
    EXPECT(facelink_sender_create(&cfg, &bad, &s), FACELINK_E_INVALID_ARGUMENT,
           "reference width must be in 1..16384, got 0");
    bad = ref;
    bad.height = -3;
    EXPECT(facelink_sender_create(&cfg, &bad, &s), FACELINK_E_INVALID_ARGUMENT, "reference height must be in 1..16384, got -3");

    facelink_sender_config c = cfg;
    c.width = 0;
    EXPECT(facelink_sender_create(&c, &ref, &s), FACELINK_E_INVALID_ARGUMENT, "width must be in 1..65535, got 0");
    c = cfg;
    c.fps_den = 0;
    EXPECT(facelink_sender_create(&c, &ref, &s), FACELINK_E_INVALID_ARGUMENT, "fps_den must be in 1..");
    c = cfg;
    c.fps_num = 100000;
    EXPECT(facelink_sender_create(&c, &ref, &s), FACELINK_E_INVALID_ARGUMENT, "frame rate 100000/1 must be within");
    c = cfg;
    c.quality = "ultra";
    EXPECT(facelink_sender_create(&c, &ref, &s), FACELINK_E_INVALID_ARGUMENT,
           "quality must be one of low, medium, high, got 'ultra'");
    c = cfg;
    c.quality = "";
    EXPECT(facelink_sender_create(&c, &ref, &s), FACELINK_E_INVALID_ARGUMENT, "quality is empty");
    c = cfg;
    c.kbps = NAN;
    EXPECT(facelink_sender_create(&c, &ref, &s), FACELINK_E_INVALID_ARGUMENT, "kbps must be finite");
    c = cfg;
    c.key_interval = 70000;
    EXPECT(facelink_sender_create(&c, &ref, &s), FACELINK_E_INVALID_ARGUMENT, "key_interval must be in 0..65535, got 70000");
    c = cfg;
    c.created_us = -5;
    EXPECT(facelink_sender_create(&c, &ref, &s), FACELINK_E_INVALID_ARGUMENT, "created_us must be in -1..");
    CHECK(s == NULL, "no handle after failures");
}

static void test_receiver_and_handles(void) {
    facelink_receiver_config rc;
    facelink_receiver_config_init(&rc);
    facelink_receiver *r = NULL;
    rc.format = 9;
    EXPECT(facelink_receiver_create(&rc, &r), FACELINK_E_INVALID_ARGUMENT,
           "facelink_receiver_create: format 9 is not a pixel format");
    facelink_receiver_config_init(&rc);
    rc.yaw = 45;
    EXPECT(facelink_receiver_create(&rc, &r), FACELINK_E_INVALID_ARGUMENT, "yaw must be in -30..30, got 45");
    facelink_receiver_config_init(&rc);
    rc.pitch = NAN;
    EXPECT(facelink_receiver_create(&rc, &r), FACELINK_E_INVALID_ARGUMENT, "pitch must be finite");
    facelink_receiver_config_init(&rc);
    facelink_image junk_target = {NULL, 0, 0, 0, 0, 0};
    rc.target = &junk_target;
    EXPECT(facelink_receiver_create(&rc, &r), FACELINK_E_INVALID_ARGUMENT, "target data is NULL");
    CHECK(r == NULL, "no receiver after failures");

    EXPECT(facelink_receiver_create(NULL, &r), FACELINK_OK, NULL);
    CHECK(r != NULL, "receiver handle");
    facelink_frame f;
    int32_t has = 5;
    const uint8_t junk[] = "not a packet";
    EXPECT(facelink_receiver_push(r, NULL, 10, &f, &has), FACELINK_E_INVALID_ARGUMENT,
           "facelink_receiver_push: packet is NULL");
    EXPECT(facelink_receiver_push(r, junk, 0, &f, &has), FACELINK_E_INVALID_ARGUMENT, "packet size is 0");
    EXPECT(facelink_receiver_push(r, junk, sizeof junk, &f, &has), FACELINK_E_INVALID_PACKET, "bad packet magic");
    CHECK(has == 0 && f.image.data == NULL, "no frame for a bad packet");
    const uint8_t short_pkt[] = {'F', 'L'};
    EXPECT(facelink_receiver_push(r, short_pkt, sizeof short_pkt, &f, &has), FACELINK_E_INVALID_PACKET, "truncated");
    /* ABI 1.2: eye contact */
    EXPECT(facelink_receiver_set_eye_contact(r, 1), FACELINK_OK, NULL);
    EXPECT(facelink_receiver_set_eye_contact(r, 0), FACELINK_OK, NULL);
    EXPECT(facelink_receiver_set_eye_contact(r, 2), FACELINK_E_INVALID_ARGUMENT, "on must be 0 or 1, got 2");
    EXPECT(facelink_receiver_set_eye_contact(NULL, 1), FACELINK_E_BAD_HANDLE, "receiver handle is NULL");

    /* handle checks: NULL, garbage, wrong kind, destroyed */
    EXPECT(facelink_receiver_push(NULL, junk, sizeof junk, &f, &has), FACELINK_E_BAD_HANDLE,
           "facelink_receiver_push: receiver handle is NULL");
    EXPECT(facelink_receiver_push((facelink_receiver *)(uintptr_t)0x7fff0003, junk, sizeof junk, &f, &has),
           FACELINK_E_BAD_HANDLE, "0x7fff0003 is not a FaceLink handle");
    EXPECT(facelink_receiver_push((facelink_receiver *)(uintptr_t)0xdeadbeefcafe, junk, sizeof junk, &f, &has),
           FACELINK_E_BAD_HANDLE, "is not a FaceLink handle");
    facelink_packets pk;
    EXPECT(facelink_sender_start((facelink_sender *)r, &pk), FACELINK_E_BAD_HANDLE,
           "is a receiver handle, not a sender handle");
    EXPECT(facelink_sender_destroy((facelink_sender *)r), FACELINK_E_BAD_HANDLE, "not a sender handle");
    EXPECT(facelink_sender_start(NULL, &pk), FACELINK_E_BAD_HANDLE, "sender handle is NULL");
    CHECK(pk.count == 0 && pk.data == NULL && pk.offsets == NULL, "packets zeroed on failure");
    EXPECT(facelink_receiver_destroy(r), FACELINK_OK, NULL);
    EXPECT(facelink_receiver_push(r, junk, sizeof junk, &f, &has), FACELINK_E_BAD_HANDLE, "was destroyed");
    EXPECT(facelink_receiver_set_eye_contact(r, 1), FACELINK_E_BAD_HANDLE, "was destroyed");
    EXPECT(facelink_receiver_destroy(r), FACELINK_E_BAD_HANDLE, "facelink_receiver_destroy: receiver handle");
    EXPECT(facelink_receiver_destroy(NULL), FACELINK_OK, NULL);
    EXPECT(facelink_sender_destroy(NULL), FACELINK_OK, NULL);

    /* handles are never reused */
    facelink_receiver *r2 = NULL;
    EXPECT(facelink_receiver_create(NULL, &r2), FACELINK_OK, NULL);
    CHECK(r2 != NULL && r2 != r, "fresh handle differs from a destroyed one");
    EXPECT(facelink_receiver_destroy(r2), FACELINK_OK, NULL);
}

static void test_file_arguments(const char *tmpdir) {
    facelink_buffer buf;
    facelink_image img;
    EXPECT(facelink_image_load(NULL, FACELINK_PIXEL_RGB24, &buf, &img), FACELINK_E_INVALID_ARGUMENT,
           "facelink_image_load: path is NULL");
    EXPECT(facelink_image_load("/nonexistent/x.png", FACELINK_PIXEL_RGB24, &buf, &img), FACELINK_E_INPUT,
           "/nonexistent/x.png: no such file");
    CHECK(buf.data == NULL && img.data == NULL, "outputs zeroed on failure");
    EXPECT(facelink_image_load("/nonexistent/x.png", 42, &buf, NULL), FACELINK_E_INVALID_ARGUMENT,
           "format 42 is not a pixel format");
    char path[2048];
    snprintf(path, sizeof path, "%s/meta.txt", T.dir);
    EXPECT(facelink_image_load(path, FACELINK_PIXEL_RGB24, &buf, NULL), FACELINK_E_INPUT, "not a readable image");

    facelink_buffer report;
    EXPECT(facelink_encode_file(NULL, "out.flk", NULL, &report), FACELINK_E_INVALID_ARGUMENT,
           "facelink_encode_file: input is NULL");
    EXPECT(facelink_encode_file("in.mp4", NULL, NULL, &report), FACELINK_E_INVALID_ARGUMENT, "output is NULL");
    EXPECT(facelink_encode_file("in.mp4", "/nonexistent/dir/out.flk", NULL, &report), FACELINK_E_INPUT,
           "/nonexistent/dir: output directory does not exist");
    facelink_encode_options eo = {.quality = "best"};
    EXPECT(facelink_encode_file("in.mp4", "out.flk", &eo, &report), FACELINK_E_INVALID_ARGUMENT,
           "quality must be one of");
    char out[2048];
    snprintf(out, sizeof out, "%s/never.flk", tmpdir);
    EXPECT(facelink_encode_file("/nonexistent/in.mp4", out, NULL, &report), FACELINK_E_INPUT,
           "/nonexistent/in.mp4: no such file");
    CHECK(access(out, F_OK) != 0, "no output after a failed encode");
    CHECK(report.data == NULL, "no report after a failure");

    EXPECT(facelink_decode_file(NULL, "out.mp4", NULL, &report), FACELINK_E_INVALID_ARGUMENT,
           "facelink_decode_file: input is NULL");
    EXPECT(facelink_decode_file("/nonexistent/in.flk", "out.mp4", NULL, &report), FACELINK_E_INPUT, "no such file");
    facelink_decode_options dopt = {.roll = 25};
    EXPECT(facelink_decode_file("/nonexistent/in.flk", "out.mp4", &dopt, &report), FACELINK_E_INVALID_ARGUMENT,
           "roll must be in -20..20, got 25");
    snprintf(out, sizeof out, "%s/never.mp4", tmpdir);
    facelink_decode_options lax = {.insecure = 1};
    EXPECT(facelink_decode_file(path, out, &lax, &report), FACELINK_E_INVALID_PACKET, NULL);
    lax.insecure = 7;
    EXPECT(facelink_decode_file(path, out, &lax, &report), FACELINK_E_INVALID_ARGUMENT, "insecure must be 0 or 1, got 7");
    lax.insecure = 0;
    lax.trust_dir = "/nonexistent/trust";
    EXPECT(facelink_decode_file(path, out, &lax, &report), FACELINK_E_INPUT, "/nonexistent/trust");
    CHECK(access(out, F_OK) != 0, "no output after a failed decode");
}

static void test_keys(const char *tmpdir) {
    char fp[FACELINK_FINGERPRINT_SIZE];
    facelink_buffer report;
    EXPECT(facelink_keys_generate(NULL, tmpdir, fp, &report), FACELINK_E_INVALID_ARGUMENT,
           "facelink_keys_generate: name is NULL");
    if (!T.keys) {
        EXPECT(facelink_keys_generate("ctest", tmpdir, fp, &report), FACELINK_E_UNSUPPORTED,
               "key management is not available");
        printf("keys: facelink.security lacks key generation -> FACELINK_E_UNSUPPORTED checked\n");
        return;
    }
    char dir[2048];
    snprintf(dir, sizeof dir, "%s/keys", tmpdir);
    EXPECT(facelink_keys_generate("ctest", dir, fp, &report), FACELINK_OK, NULL);
    CHECK(strlen(fp) == 16 && strspn(fp, "0123456789abcdef") == 16, "fingerprint \"%s\"", fp);
    CHECK(report.data && strstr((char *)report.data, fp) && strstr((char *)report.data, "\"name\": \"ctest\""),
          "report %s", report.data ? (char *)report.data : "(null)");
    CHECK(report.data && report.size == strlen((char *)report.data), "report size excludes the NUL");
    facelink_buffer_free(&report);
    char key[2100], pub[2100];
    snprintf(key, sizeof key, "%s/ctest.key", dir);
    snprintf(pub, sizeof pub, "%s/ctest.pub", dir);
    struct stat st;
    CHECK(stat(key, &st) == 0 && (st.st_mode & 0777) == 0600, "ctest.key mode 0600");
    CHECK(stat(pub, &st) == 0, "ctest.pub written");
    EXPECT(facelink_keys_generate("ctest", dir, NULL, NULL), FACELINK_E_INPUT, "already exists");
    EXPECT(facelink_keys_generate("../evil", dir, fp, NULL), FACELINK_E_INVALID_ARGUMENT, "key name");
    CHECK(fp[0] == '\0', "fingerprint zeroed on failure");
    unlink(key);
    unlink(pub);
    rmdir(dir);
}

/* ------------------------------------------------------------------ per-thread errors */

typedef struct {
    int id;
    int mismatches;
} error_job;

static void *error_worker(void *arg) {
    error_job *job = arg;
    facelink_receiver_config rc;
    struct timespec pause = {0, 100 * 1000};
    for (int i = 0; i < 50; i++) {
        facelink_receiver_config_init(&rc);
        facelink_receiver *r = NULL;
        if (job->id == 2) { /* successes leave this thread's error empty, whatever the others do */
            if (facelink_receiver_create(&rc, &r) != FACELINK_OK) job->mismatches++;
            nanosleep(&pause, NULL);
            if (facelink_last_error()[0] != '\0') job->mismatches++;
            if (facelink_receiver_destroy(r) != FACELINK_OK) job->mismatches++;
            continue;
        }
        char want[64];
        if (job->id == 0) {
            rc.format = 100 + i;
            snprintf(want, sizeof want, "format %d is not a pixel format", 100 + i);
        } else {
            rc.yaw = -31 - i;
            snprintf(want, sizeof want, "yaw must be in -30..30, got %d", -31 - i);
        }
        facelink_status st = facelink_receiver_create(&rc, &r);
        nanosleep(&pause, NULL); /* let the other threads fail (or succeed) in between */
        if (st != FACELINK_E_INVALID_ARGUMENT || !strstr(facelink_last_error(), want)) job->mismatches++;
    }
    return NULL;
}

static void test_thread_errors(void) {
    pthread_t th[3];
    error_job jobs[3] = {{0, 0}, {1, 0}, {2, 0}};
    for (int i = 0; i < 3; i++) pthread_create(&th[i], NULL, error_worker, &jobs[i]);
    for (int i = 0; i < 3; i++) pthread_join(th[i], NULL);
    CHECK(jobs[0].mismatches == 0 && jobs[1].mismatches == 0 && jobs[2].mismatches == 0,
          "per-thread errors mixed up: %d, %d, %d", jobs[0].mismatches, jobs[1].mismatches, jobs[2].mismatches);
}

/* ------------------------------------------------------------------ equality with the Python API */

typedef struct {
    const uint8_t *frames; /* T.frames RGB24 frames */
    packet_file *expected;
    int32_t format;
    int pad;               /* extra stride bytes */
    int mismatches;
    char note[256];
} sender_job;

/* packet i of `got` equals packet `at` of the Python API's stream: byte for byte, or under
 * --light (memcheck) the same packet type (byte 3) and a size within a few bytes */
static int same_packet(const facelink_packets *got, size_t i, const packet_file *want, size_t at) {
    size_t n = facelink_packet_size(got, i), m = want->size[at];
    const uint8_t *a = facelink_packet_data(got, i), *b = want->data[at];
    if (g_light) return n >= 4 && m >= 4 && a[3] == b[3] && (n > m ? n - m : m - n) <= 8;
    return n == m && !memcmp(a, b, n);
}

/* a full sender session on `frames` as `format`: packets must equal the Python API's */
static void *sender_worker(void *arg) {
    sender_job *job = arg;
    int w = T.width, h = T.height;
    size_t frame_bytes = (size_t)w * h * 3;
    facelink_sender_config cfg;
    facelink_sender_config_init(&cfg);
    cfg.width = w;
    cfg.height = h;
    cfg.fps_num = T.fps_num;
    cfg.fps_den = T.fps_den;
    cfg.session_id = T.session_id;
    cfg.created_us = T.created_us;
    int stride = w * facelink_bytes_per_pixel(job->format) + job->pad;
    facelink_image ref = convert(job->frames, w, h, job->format, stride);
    facelink_sender *s = NULL;
    facelink_status st = facelink_sender_create(&cfg, &ref, &s);
    if (st != FACELINK_OK) {
        snprintf(job->note, sizeof job->note, "create: %s %s", facelink_status_name(st), facelink_last_error());
        job->mismatches++;
        free((void *)ref.data);
        return NULL;
    }
    facelink_packets pk;
    size_t at = 0;
    st = facelink_sender_start(s, &pk);
    if (st != FACELINK_OK || pk.count != (size_t)T.start_packets) job->mismatches++;
    for (size_t i = 0; i < pk.count && at < job->expected->count; i++, at++)
        if (!same_packet(&pk, i, job->expected, at))
            job->mismatches++, snprintf(job->note, sizeof job->note, "start packet %zu differs", i);
    facelink_packets_free(&pk);
    for (int i = 0; i < g_frames; i++) {
        facelink_image img = i == 0 ? ref : convert(job->frames + i * frame_bytes, w, h, job->format, stride);
        int32_t kind = 0;
        st = facelink_sender_push(s, &img, i, (double)i * T.fps_den / T.fps_num, &pk, &kind);
        if (i) free((void *)img.data);
        if (st != FACELINK_OK || pk.count != 1 || kind != T.kinds[i]) {
            job->mismatches++;
            snprintf(job->note, sizeof job->note, "push %d: %s %s count %zu kind %d", i, facelink_status_name(st),
                     facelink_last_error(), pk.count, kind);
        } else if (!same_packet(&pk, 0, job->expected, at)) {
            job->mismatches++;
            snprintf(job->note, sizeof job->note, "frame %d packet differs from the Python API's", i);
        }
        at++;
        facelink_packets_free(&pk);
    }
    if (g_frames == T.frames) {
        st = facelink_sender_end(s, &pk);
        if (st != FACELINK_OK || pk.count != 1 || !same_packet(&pk, 0, job->expected, at)) {
            job->mismatches++;
            snprintf(job->note, sizeof job->note, "end packet differs");
        }
        facelink_packets_free(&pk);
    }
    facelink_sender_destroy(s);
    free((void *)ref.data);
    return NULL;
}

typedef struct {
    packet_file *packets;
    const uint8_t *decoded; /* expected RGB24 frames */
    int32_t format;
    int mismatches;
    int frames;
    char note[256];
} receiver_job;

/* packets of the first g_frames frames (all of them, End included, when g_frames == T.frames) */
static size_t packets_used(const packet_file *pf) {
    return g_frames == T.frames ? pf->count : (size_t)T.start_packets + (size_t)g_frames;
}

static void *receiver_worker(void *arg) {
    receiver_job *job = arg;
    facelink_receiver_config rc;
    facelink_receiver_config_init(&rc);
    rc.format = job->format;
    facelink_receiver *r = NULL;
    if (facelink_receiver_create(&rc, &r) != FACELINK_OK) {
        job->mismatches++;
        snprintf(job->note, sizeof job->note, "create: %s", facelink_last_error());
        return NULL;
    }
    size_t out_bytes = (size_t)T.out_width * T.out_height * 3;
    for (size_t i = 0; i < packets_used(job->packets); i++) {
        facelink_frame f;
        int32_t has = -1;
        facelink_status st = facelink_receiver_push(r, job->packets->data[i], job->packets->size[i], &f, &has);
        if (st != FACELINK_OK) {
            job->mismatches++;
            snprintf(job->note, sizeof job->note, "push %zu: %s", i, facelink_last_error());
            continue;
        }
        if (!has) continue;
        int n = job->frames++;
        facelink_image want = convert(job->decoded + n * out_bytes, T.out_width, T.out_height, job->format,
                                      T.out_width * facelink_bytes_per_pixel(job->format));
        if (f.index != n || f.held || f.kind != T.kinds[n] || fabs(f.time - (double)n * T.fps_den / T.fps_num) > 1e-6 ||
            f.image.width != want.width || f.image.height != want.height || f.image.stride != want.stride ||
            f.image.format != job->format || f.image.size != want.size || memcmp(f.image.data, want.data, want.size)) {
            job->mismatches++;
            snprintf(job->note, sizeof job->note, "frame %d (format %d) differs from the Python API's", n, job->format);
        }
        free((void *)want.data);
    }
    facelink_receiver_destroy(r);
    return NULL;
}

static void test_image_load(void) {
    size_t n;
    uint8_t *want = read_file("portrait.rgb", &n);
    facelink_buffer px;
    facelink_image img;
    EXPECT(facelink_image_load(T.portrait_path, FACELINK_PIXEL_RGB24, &px, &img), FACELINK_OK, NULL);
    CHECK(img.width == T.portrait_width && img.height == T.portrait_height && img.stride == img.width * 3 &&
              img.data == px.data && px.size == n && !memcmp(px.data, want, n),
          "image_load RGB24 differs from facelink.io.load_image");
    facelink_buffer_free(&px);
    EXPECT(facelink_image_load(T.portrait_path, FACELINK_PIXEL_BGRA32, &px, &img), FACELINK_OK, NULL);
    facelink_image conv = convert(want, T.portrait_width, T.portrait_height, FACELINK_PIXEL_BGRA32, T.portrait_width * 4);
    for (size_t i = 3; i < conv.size; i += 4) ((uint8_t *)conv.data)[i] = 255;
    CHECK(px.size == conv.size && !memcmp(px.data, conv.data, conv.size), "image_load BGRA32 layout");
    free((void *)conv.data);
    facelink_buffer_free(&px);
    free(want);
}

static void test_sender_states(const uint8_t *frames) {
    int w = T.width, h = T.height;
    facelink_sender_config cfg;
    facelink_sender_config_init(&cfg);
    cfg.width = w;
    cfg.height = h;
    facelink_image ref = rgb_image(frames, w, h);
    facelink_sender *s = NULL;
    EXPECT(facelink_sender_create(&cfg, &ref, &s), FACELINK_OK, NULL);
    facelink_packets pk;
    EXPECT(facelink_sender_push(s, &ref, 0, 0.0, &pk, NULL), FACELINK_E_STATE, "call facelink_sender_start first");
    EXPECT(facelink_sender_end(s, &pk), FACELINK_E_STATE, "never started");
    EXPECT(facelink_sender_start(s, &pk), FACELINK_OK, NULL);
    facelink_packets_free(&pk);
    EXPECT(facelink_sender_start(s, &pk), FACELINK_E_STATE, "already started");
    facelink_image small = rgb_image(frames, w / 2, h / 2);
    small.stride = w * 3; /* the top-left quarter of a frame */
    small.size = (size_t)w * h * 3;
    EXPECT(facelink_sender_push(s, &small, 0, 0.0, &pk, NULL), FACELINK_E_INVALID_ARGUMENT,
           "frame is 128x128, the sender was created for 256x256");
    EXPECT(facelink_sender_push(s, &ref, 5, NAN, &pk, NULL), FACELINK_E_INVALID_ARGUMENT, "time must be finite");
    EXPECT(facelink_sender_push(s, &ref, -1, 0.0, &pk, NULL), FACELINK_E_INVALID_ARGUMENT, "index must be in 0..");
    EXPECT(facelink_sender_push(s, &ref, 5, 0.0, &pk, NULL), FACELINK_OK, NULL);
    facelink_packets_free(&pk);
    EXPECT(facelink_sender_push(s, &ref, 5, 0.1, &pk, NULL), FACELINK_E_INVALID_ARGUMENT,
           "index 5 must be greater than the previous frame's 5");
    facelink_sender_stats stats;
    EXPECT(facelink_sender_stats_get(s, &stats), FACELINK_OK, NULL);
    CHECK(stats.frames == 1 && stats.face_frames == 1 && stats.key_frames == 1 && stats.reference_bytes > 1000 &&
              stats.bytes > 0,
          "stats %lld %lld %lld %lld %lld", (long long)stats.frames, (long long)stats.face_frames,
          (long long)stats.key_frames, (long long)stats.bytes, (long long)stats.reference_bytes);
    EXPECT(facelink_sender_end(s, &pk), FACELINK_OK, NULL);
    CHECK(pk.count == 1 && facelink_packet_size(&pk, 0) > 0, "end packet");
    facelink_packets_free(&pk);
    EXPECT(facelink_sender_end(s, &pk), FACELINK_E_STATE, "already ended");
    EXPECT(facelink_sender_push(s, &ref, 6, 0.2, &pk, NULL), FACELINK_E_STATE, "the session has ended");
    facelink_receiver *as_receiver = (facelink_receiver *)s;
    EXPECT(facelink_receiver_destroy(as_receiver), FACELINK_E_BAD_HANDLE, "is a sender handle, not a receiver handle");
    EXPECT(facelink_sender_destroy(s), FACELINK_OK, NULL);
    EXPECT(facelink_sender_stats_get(s, &stats), FACELINK_E_BAD_HANDLE, "was destroyed");

    if (g_light) return;
    /* a reference without a face */
    uint8_t *gray = malloc((size_t)w * h * 3);
    memset(gray, 90, (size_t)w * h * 3);
    facelink_image blank = rgb_image(gray, w, h);
    EXPECT(facelink_sender_create(&cfg, &blank, &s), FACELINK_E_NO_FACE, "no face found");
    CHECK(s == NULL, "no sender without a face");
    facelink_receiver_config rc;
    facelink_receiver_config_init(&rc);
    rc.target = &blank;
    facelink_receiver *r = NULL;
    EXPECT(facelink_receiver_create(&rc, &r), FACELINK_E_NO_FACE, "target image: no face found");
    free(gray);
}

typedef struct {
    facelink_receiver *r;
    packet_file *packets;
    atomic_int ok;
    int bad_handle, other, out_of_order;
} destroy_job;

static void *pusher(void *arg) {
    destroy_job *job = arg;
    int seen_bad = 0;
    for (int round = 0; round < 50; round++)
        for (size_t i = 0; i < packets_used(job->packets); i++) {
            facelink_frame f;
            int32_t has;
            facelink_status st = facelink_receiver_push(job->r, job->packets->data[i], job->packets->size[i], &f, &has);
            if (st == FACELINK_OK) {
                atomic_fetch_add(&job->ok, 1);
                if (seen_bad) job->out_of_order++;
                if (has && f.image.size) (void)f.image.data[f.image.size - 1]; /* lent pixels readable */
            } else if (st == FACELINK_E_BAD_HANDLE && strstr(facelink_last_error(), "was destroyed")) {
                job->bad_handle++;
                seen_bad = 1;
            } else {
                job->other++;
            }
            if (seen_bad && job->bad_handle > 3) return NULL;
        }
    return NULL;
}

/* destroy a receiver while another thread is pushing into it */
static void test_destroy_in_flight(packet_file *pf) {
    destroy_job job = {0};
    job.packets = pf;
    atomic_init(&job.ok, 0);
    EXPECT(facelink_receiver_create(NULL, &job.r), FACELINK_OK, NULL);
    pthread_t th;
    pthread_create(&th, NULL, pusher, &job);
    struct timespec ts = {0, 20 * 1000 * 1000};
    /* wait until a frame went through (at most 10 minutes: memcheck is slow) */
    for (int waited = 0; atomic_load(&job.ok) < T.start_packets + 1 && waited < 30000; waited++) nanosleep(&ts, NULL);
    EXPECT(facelink_receiver_destroy(job.r), FACELINK_OK, NULL);
    pthread_join(th, NULL);
    CHECK(atomic_load(&job.ok) > T.start_packets && job.bad_handle > 0 && job.other == 0 && job.out_of_order == 0,
          "destroy in flight: ok %d bad_handle %d other %d out_of_order %d", atomic_load(&job.ok), job.bad_handle,
          job.other, job.out_of_order);
}

static int contains(const facelink_buffer *b, const char *s) { return b->data && strstr((const char *)b->data, s); }

static void test_files(const char *tmpdir) {
    char clip[2048], flk[2048], mp4[2048], want[64];
    snprintf(clip, sizeof clip, "%s/clip.mp4", T.dir);
    snprintf(flk, sizeof flk, "%s/clip.flk", tmpdir);
    snprintf(mp4, sizeof mp4, "%s/clip.mp4", tmpdir);
    facelink_buffer report;
    if (g_light) {
        EXPECT(facelink_verify_file(NULL, NULL, &report), FACELINK_E_INVALID_ARGUMENT, "facelink_verify_file: path is NULL");
        return;
    }
    facelink_encode_options eo = {.quality = "low"};
    EXPECT(facelink_encode_file(clip, flk, &eo, &report), FACELINK_OK, NULL);
    snprintf(want, sizeof want, "\"frames\": %d", T.frames);
    CHECK(contains(&report, want) && contains(&report, "\"k\": 8") && contains(&report, "\"signer\": \""),
          "encode report: %s", report.data ? (char *)report.data : "(null)");
    CHECK(!contains(&report, "\"seal_bytes\": 0,"), "the stream is sealed: %s", report.data ? (char *)report.data : "(null)");
    facelink_buffer_free(&report);
    /* ABI 1.3: facelink_encode_file seals with the local key, like `facelink encode`: an empty
     * trust directory refuses the stream (untrusted signer), --insecure takes it */
    char trust[2100], manifest[2100];
    snprintf(trust, sizeof trust, "%s/trust", tmpdir);
    snprintf(manifest, sizeof manifest, "%s.facelink.json", mp4);
    mkdir(trust, 0700);
    facelink_decode_options strict = {.trust_dir = trust};
    EXPECT(facelink_decode_file(flk, mp4, &strict, &report), FACELINK_E_VERIFICATION, "not trusted");
    CHECK(access(mp4, F_OK) != 0 && access(manifest, F_OK) != 0 && report.data == NULL, "nothing written for a refused stream");
    rmdir(trust);
    facelink_decode_options lax = {.insecure = 1};
    EXPECT(facelink_decode_file(flk, mp4, &lax, &report), FACELINK_OK, NULL);
    CHECK(contains(&report, want) && contains(&report, "\"invalid_packets\": 0"), "decode report: %s",
          report.data ? (char *)report.data : "(null)");
    facelink_buffer_free(&report);
    struct stat st;
    CHECK(stat(mp4, &st) == 0 && st.st_size > 1000, "decoded video written");
    CHECK(access(manifest, F_OK) == 0, "provenance manifest beside the output: %s", manifest);

    /* ABI 1.3: facelink_encode_file_ex with the test's signer and session; decoded against a
     * trust directory that trusts it (and this receiver): verify names the sender, signature valid */
    if (T.signed_) {
        char key[2100], tdir[2100], signer[64];
        snprintf(key, sizeof key, "%s/keys/signer.key", T.dir);
        snprintf(tdir, sizeof tdir, "%s/trust", T.dir);
        snprintf(signer, sizeof signer, "\"signer\": \"%s\"", T.signer);
        facelink_encode_signing sg;
        facelink_encode_signing_init(&sg);
        CHECK(sg.struct_size == sizeof sg && sg.key == NULL && sg.session_id == NULL && sg.created_us == -1,
              "facelink_encode_signing_init defaults");
        sg.struct_size = 4;
        EXPECT(facelink_encode_file_ex(clip, flk, &eo, &sg, &report), FACELINK_E_INVALID_ARGUMENT,
               "signing->struct_size is 4");
        facelink_encode_signing_init(&sg);
        sg.key = key;
        sg.session_id = T.session_id;
        sg.created_us = T.created_us;
        EXPECT(facelink_encode_file_ex(clip, flk, &eo, &sg, &report), FACELINK_OK, NULL);
        CHECK(contains(&report, signer), "encode_file_ex report names the signer: %s", report.data ? (char *)report.data : "(null)");
        facelink_buffer_free(&report);
        facelink_decode_options trusted = {.trust_dir = tdir};
        EXPECT(facelink_decode_file(flk, mp4, &trusted, &report), FACELINK_OK, NULL);
        facelink_buffer_free(&report);
        if (T.verify) {
            snprintf(signer, sizeof signer, "\"sender\": \"%s\"", T.signer);
            EXPECT(facelink_verify_file(mp4, tdir, &report), FACELINK_OK, NULL);
            CHECK(contains(&report, "\"synthetic\": true") && contains(&report, signer) &&
                      contains(&report, "\"signature_valid\": true") && contains(&report, "\"verdict\": \"valid\""),
                  "verify report: %s", report.data ? (char *)report.data : "(null)");
            facelink_buffer_free(&report);
        }
    }

    /* verification of the decoded (watermarked) video */
    if (T.verify) {
        EXPECT(facelink_verify_file(mp4, NULL, &report), FACELINK_OK, NULL);
        CHECK(contains(&report, "\"synthetic\"") && contains(&report, "\"signature_valid\""), "verify report: %s",
              report.data ? (char *)report.data : "(null)");
        facelink_buffer_free(&report);
        EXPECT(facelink_verify_file("/nonexistent/v.mp4", NULL, &report), FACELINK_E_INPUT, "no such file");
    } else {
        EXPECT(facelink_verify_file(mp4, NULL, &report), FACELINK_E_UNSUPPORTED, "watermark verification is not available");
        printf("verify: watermark verification unavailable -> FACELINK_E_UNSUPPORTED checked\n");
    }
    EXPECT(facelink_verify_file(NULL, NULL, &report), FACELINK_E_INVALID_ARGUMENT, "facelink_verify_file: path is NULL");
    unlink(flk);
    unlink(mp4);
    unlink(manifest);
}

/* two senders (RGB24 tight, BGRA32 padded) and three receivers (RGB24, BGR24, GRAY8) at once,
 * each on its own thread and handle: all must match the Python API byte for byte */
static void test_equality(const uint8_t *frames, const uint8_t *decoded, packet_file *pf) {
    sender_job sj[2] = {{frames, pf, FACELINK_PIXEL_RGB24, 0, 0, ""}, {frames, pf, FACELINK_PIXEL_BGRA32, 64, 0, ""}};
    receiver_job rj[3] = {{pf, decoded, FACELINK_PIXEL_RGB24, 0, 0, ""},
                          {pf, decoded, FACELINK_PIXEL_BGR24, 0, 0, ""},
                          {pf, decoded, FACELINK_PIXEL_GRAY8, 0, 0, ""}};
    /* light: one sender (BGRA32, padded rows) and one receiver (RGB24), still on two threads */
    int ns = g_light ? 1 : 2, nr = g_light ? 1 : 3;
    if (g_light) sj[0] = sj[1];
    pthread_t th[5];
    for (int i = 0; i < ns; i++) pthread_create(&th[i], NULL, sender_worker, &sj[i]);
    for (int i = 0; i < nr; i++) pthread_create(&th[ns + i], NULL, receiver_worker, &rj[i]);
    for (int i = 0; i < ns + nr; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < ns; i++)
        CHECK(sj[i].mismatches == 0, "sender (format %d): %d mismatches; %s", sj[i].format, sj[i].mismatches,
              sj[i].note);
    for (int i = 0; i < nr; i++)
        CHECK(rj[i].mismatches == 0 && rj[i].frames == g_frames, "receiver (format %d): %d mismatches, %d frames; %s",
              rj[i].format, rj[i].mismatches, rj[i].frames, rj[i].note);
}

/* ------------------------------------------------------------------ ABI 1.1: signing and verification */

#define PT_HEADER 1
#define PT_CHUNK 2
#define PT_KEY 3
#define PT_PREDICTED 4
#define PT_SEAL 6

static int ptype(const packet_file *pf, size_t i) { return pf->size[i] >= 4 ? pf->data[i][3] : -1; }

/* validation of the security structs and the new functions (no models needed) */
static void test_security_arguments(const char *tmpdir) {
    uint8_t px[16 * 16 * 3];
    memset(px, 128, sizeof px);
    facelink_image ref = rgb_image(px, 16, 16);
    facelink_sender_config cfg;
    facelink_sender_config_init(&cfg);
    cfg.width = 64;
    cfg.height = 48;
    facelink_sender *s = (facelink_sender *)1;
    facelink_sender_security sec;
    facelink_sender_security_init(&sec);
    CHECK(sec.struct_size == sizeof sec && sec.key == NULL && sec.seal_interval == 0, "sender security defaults");
    facelink_sender_security zero = {0};
    EXPECT(facelink_sender_create_ex(&cfg, &ref, &zero, &s), FACELINK_E_INVALID_ARGUMENT,
           "facelink_sender_create_ex: security->struct_size is 0, expected at least");
    CHECK(s == NULL, "no sender after a failure");
    EXPECT(facelink_sender_create_ex(&cfg, &ref, &sec, NULL), FACELINK_E_INVALID_ARGUMENT, "sender (output) is NULL");
    sec.key = "/nonexistent/signer.key";
    EXPECT(facelink_sender_create_ex(&cfg, &ref, &sec, &s), FACELINK_E_INPUT,
           "/nonexistent/signer.key: no such identity key");
    sec.seal_interval = -1;
    EXPECT(facelink_sender_create_ex(&cfg, &ref, &sec, &s), FACELINK_E_INVALID_ARGUMENT,
           "seal_interval must be in (0, 60] seconds (0 = 0.5), got -1");
    sec.seal_interval = 61;
    EXPECT(facelink_sender_create_ex(&cfg, &ref, &sec, &s), FACELINK_E_INVALID_ARGUMENT, "got 61");
    sec.key = NULL;
    sec.seal_interval = 0.2;
    EXPECT(facelink_sender_create_ex(&cfg, &ref, &sec, &s), FACELINK_E_INVALID_ARGUMENT,
           "seal_interval is set but key is NULL");
    facelink_packets pk;
    EXPECT(facelink_sender_seal(NULL, &pk), FACELINK_E_BAD_HANDLE, "facelink_sender_seal: sender handle is NULL");
    EXPECT(facelink_sender_seal(NULL, NULL), FACELINK_E_INVALID_ARGUMENT, "facelink_sender_seal: packets (output) is NULL");

    facelink_receiver_security rs;
    facelink_receiver_security_init(&rs);
    CHECK(rs.struct_size == sizeof rs && rs.trust_dir == NULL && rs.insecure == 0 && rs.max_age == 0,
          "receiver security defaults");
    facelink_receiver *r = (facelink_receiver *)1;
    facelink_receiver_security rzero = {0};
    EXPECT(facelink_receiver_create_ex(NULL, &rzero, &r), FACELINK_E_INVALID_ARGUMENT,
           "facelink_receiver_create_ex: security->struct_size is 0, expected at least");
    CHECK(r == NULL, "no receiver after a failure");
    rs.insecure = 7;
    EXPECT(facelink_receiver_create_ex(NULL, &rs, &r), FACELINK_E_INVALID_ARGUMENT, "insecure must be 0 or 1, got 7");
    rs.insecure = 0;
    rs.max_age = -1;
    EXPECT(facelink_receiver_create_ex(NULL, &rs, &r), FACELINK_E_INVALID_ARGUMENT, "max_age must be in 0..inf, got -1");
    rs.max_age = 0;
    rs.trust_dir = "/nonexistent/trust";
    EXPECT(facelink_receiver_create_ex(NULL, &rs, &r), FACELINK_E_INPUT, "/nonexistent/trust: no such trust directory");
    rs.insecure = 1; /* insecure and no trust directory: trust nobody, accept anyone (flagged) */
    EXPECT(facelink_receiver_create_ex(NULL, &rs, &r), FACELINK_OK, NULL);
    facelink_buffer report;
    EXPECT(facelink_receiver_verification(r, &report), FACELINK_OK, NULL);
    CHECK(report.data && strstr((char *)report.data, "\"signed\": false") && strstr((char *)report.data, "\"refused\": null"),
          "fresh verification report %s", report.data ? (char *)report.data : "(null)");
    facelink_buffer_free(&report);
    EXPECT(facelink_receiver_verification(r, NULL), FACELINK_E_INVALID_ARGUMENT, "report (output) is NULL");
    EXPECT(facelink_receiver_destroy(r), FACELINK_OK, NULL);
    EXPECT(facelink_receiver_verification(r, &report), FACELINK_E_BAD_HANDLE, "was destroyed");
    EXPECT(facelink_receiver_create(NULL, &r), FACELINK_OK, NULL);
    EXPECT(facelink_receiver_verification(r, &report), FACELINK_E_STATE, "this receiver does not verify");
    CHECK(report.data == NULL, "no report for a receiver that does not verify");
    EXPECT(facelink_receiver_destroy(r), FACELINK_OK, NULL);

    char fp[FACELINK_FINGERPRINT_SIZE];
    EXPECT(facelink_keys_trust(NULL, tmpdir, fp, &report), FACELINK_E_INVALID_ARGUMENT, "facelink_keys_trust: pub is NULL");
    EXPECT(facelink_keys_trust("/nonexistent/a.pub", tmpdir, fp, &report), FACELINK_E_INPUT, "/nonexistent/a.pub");
    CHECK(fp[0] == '\0' && report.data == NULL, "keys_trust outputs zeroed on failure");
    if (!T.keys) return;
    /* a key whose file is readable by others is refused */
    char dir[2048], key[2100], pub[2100], trust[2100], gen_fp[FACELINK_FINGERPRINT_SIZE];
    snprintf(dir, sizeof dir, "%s/seckeys", tmpdir);
    snprintf(key, sizeof key, "%s/open.key", dir);
    snprintf(pub, sizeof pub, "%s/open.pub", dir);
    snprintf(trust, sizeof trust, "%s/sectrust", tmpdir);
    EXPECT(facelink_keys_generate("open", dir, gen_fp, NULL), FACELINK_OK, NULL);
    chmod(key, 0644);
    sec.key = key;
    sec.seal_interval = 0;
    EXPECT(facelink_sender_create_ex(&cfg, &ref, &sec, &s), FACELINK_E_INPUT, "permissions 0644 are too open");
    EXPECT(facelink_keys_trust(pub, trust, fp, &report), FACELINK_OK, NULL);
    CHECK(!strcmp(fp, gen_fp) && report.data && strstr((char *)report.data, "\"added\": true"), "keys_trust report %s",
          report.data ? (char *)report.data : "(null)");
    facelink_buffer_free(&report);
    EXPECT(facelink_keys_trust(pub, trust, NULL, &report), FACELINK_OK, NULL);
    CHECK(report.data && strstr((char *)report.data, "\"added\": false"), "keys_trust twice: %s",
          report.data ? (char *)report.data : "(null)");
    /* remove what we made */
    char trusted[2300];
    const char *path = report.data ? strstr((char *)report.data, "\"path\": \"") : NULL;
    if (path) {
        snprintf(trusted, sizeof trusted, "%s", path + 9);
        char *q = strchr(trusted, '"');
        if (q) *q = '\0';
        unlink(trusted);
    }
    facelink_buffer_free(&report);
    unlink(key);
    unlink(pub);
    rmdir(dir);
    rmdir(trust);
}

/* the signed session of make_expected.py (seal_packets() over the Python API's stream) */
static void test_signed_sender(const uint8_t *frames, packet_file *pf) {
    int w = T.width, h = T.height;
    size_t frame_bytes = (size_t)w * h * 3;
    char key[2048];
    snprintf(key, sizeof key, "%s/keys/signer.key", T.dir);
    facelink_sender_config cfg;
    facelink_sender_config_init(&cfg);
    cfg.width = w, cfg.height = h, cfg.fps_num = T.fps_num, cfg.fps_den = T.fps_den;
    cfg.session_id = T.session_id;
    cfg.created_us = T.created_us;
    facelink_sender_security sec;
    facelink_sender_security_init(&sec);
    sec.key = key;
    sec.seal_interval = T.seal_interval;
    facelink_image ref = rgb_image(frames, w, h);
    facelink_sender *s = NULL;
    EXPECT(facelink_sender_create_ex(&cfg, &ref, &sec, &s), FACELINK_OK, NULL);
    facelink_packets pk;
    size_t at = 0;
    int mismatches = 0, seals = 0;
    char note[256] = "";
#define TAKE(what)                                                                                      \
    for (size_t i_ = 0; i_ < pk.count; i_++, at++) {                                                    \
        if (at >= pf->count || !same_packet(&pk, i_, pf, at))                                           \
            mismatches++, snprintf(note, sizeof note, "%s: packet %zu (stream packet %zu) differs", what, i_, at); \
        if (facelink_packet_size(&pk, i_) >= 4 && facelink_packet_data(&pk, i_)[3] == PT_SEAL) seals++; \
    }                                                                                                   \
    facelink_packets_free(&pk)
    EXPECT(facelink_sender_start(s, &pk), FACELINK_OK, NULL);
    /* header, seal, reference chunks, seal: the header and the reference are sealed at once */
    CHECK(pk.count >= 4 && facelink_packet_data(&pk, 1)[3] == PT_SEAL && facelink_packet_data(&pk, pk.count - 1)[3] == PT_SEAL,
          "signed start: %zu packets", pk.count);
    TAKE("start");
    int per_seal = (int)floor(T.seal_interval * T.fps_num / T.fps_den + 1e-9);
    for (int i = 0; i < g_frames; i++) {
        int32_t kind = 0;
        facelink_image img = rgb_image(frames + i * frame_bytes, w, h);
        EXPECT(facelink_sender_push(s, &img, i, (double)i * T.fps_den / T.fps_num, &pk, &kind), FACELINK_OK, NULL);
        /* a seal after every per_seal-th frame */
        CHECK(pk.count == ((i + 1) % per_seal == 0 ? 2u : 1u) && kind == T.kinds[i], "push %d: %zu packets, kind %d", i,
              pk.count, kind);
        TAKE("push");
    }
    if (g_frames == T.frames) {
        EXPECT(facelink_sender_end(s, &pk), FACELINK_OK, NULL);
        TAKE("end");
        CHECK(at == pf->count, "signed stream: %zu packets, the Python API's has %zu", at, pf->count);
    }
#undef TAKE
    CHECK(mismatches == 0, "signed sender: %d packets differ from seal_packets(); %s", mismatches, note);
    CHECK(seals >= 2, "signed sender: %d seals", seals);
    EXPECT(facelink_sender_destroy(s), FACELINK_OK, NULL);
}

/* facelink_sender_seal and the call order of a signed sender */
static void test_signed_sender_states(const uint8_t *frames) {
    char key[2048];
    snprintf(key, sizeof key, "%s/keys/signer.key", T.dir);
    facelink_sender_config cfg;
    facelink_sender_config_init(&cfg);
    cfg.width = T.width, cfg.height = T.height;
    facelink_sender_security sec;
    facelink_sender_security_init(&sec);
    sec.key = key;
    facelink_image ref = rgb_image(frames, T.width, T.height);
    facelink_sender *s = NULL, *plain = NULL;
    facelink_packets pk;
    EXPECT(facelink_sender_create_ex(&cfg, &ref, NULL, &plain), FACELINK_OK, NULL); /* NULL security: unsigned */
    EXPECT(facelink_sender_start(plain, &pk), FACELINK_OK, NULL);
    CHECK(pk.count == (size_t)T.start_packets, "unsigned create_ex start: %zu packets", pk.count);
    facelink_packets_free(&pk);
    EXPECT(facelink_sender_seal(plain, &pk), FACELINK_E_STATE, "this sender does not sign");
    EXPECT(facelink_sender_destroy(plain), FACELINK_OK, NULL);

    EXPECT(facelink_sender_create_ex(&cfg, &ref, &sec, &s), FACELINK_OK, NULL);
    EXPECT(facelink_sender_seal(s, &pk), FACELINK_E_STATE, "call facelink_sender_start first");
    EXPECT(facelink_sender_start(s, &pk), FACELINK_OK, NULL);
    facelink_packets_free(&pk);
    EXPECT(facelink_sender_seal(s, &pk), FACELINK_OK, NULL);
    CHECK(pk.count == 0, "nothing awaits a seal right after start: %zu packets", pk.count);
    facelink_packets_free(&pk);
    EXPECT(facelink_sender_push(s, &ref, 0, 0.0, &pk, NULL), FACELINK_OK, NULL);
    CHECK(pk.count == 1, "one frame, no seal yet (a seal every 15 frames at 30 fps)");
    facelink_packets_free(&pk);
    EXPECT(facelink_sender_seal(s, &pk), FACELINK_OK, NULL);
    CHECK(pk.count == 1 && facelink_packet_data(&pk, 0)[3] == PT_SEAL, "explicit seal: %zu packets", pk.count);
    facelink_packets_free(&pk);
    EXPECT(facelink_sender_end(s, &pk), FACELINK_OK, NULL);
    CHECK(pk.count == 2 && facelink_packet_data(&pk, 1)[3] == PT_SEAL, "end: End + seal, %zu packets", pk.count);
    facelink_packets_free(&pk);
    EXPECT(facelink_sender_seal(s, &pk), FACELINK_E_STATE, "the session has ended");
    EXPECT(facelink_sender_destroy(s), FACELINK_OK, NULL);
}

typedef struct {
    int pushed, frames, ok, verification, incomplete, untrusted, invalid, other;
    int first_bad;       /* index of the first non-OK push, -1 if none */
    int first_verif;     /* index of the first FACELINK_E_VERIFICATION push, -1 if none */
    char verif_msg[512]; /* its message */
    char msg[512];       /* message of the first non-OK push */
    char report[2048];   /* facelink_receiver_verification afterwards */
} rx_result;

/* feed `n` packets (of `pf`, in the order of `order` if not NULL) to a new receiver;
 * `flip` >= 0: flip the last byte of that packet (by position in the order) */
static rx_result run_receiver(const facelink_receiver_security *sec, const packet_file *pf, size_t n,
                              const size_t *order, int flip, const uint8_t *decoded) {
    rx_result res;
    memset(&res, 0, sizeof res);
    res.first_bad = res.first_verif = -1;
    facelink_receiver *r = NULL;
    if (facelink_receiver_create_ex(NULL, sec, &r) != FACELINK_OK) {
        snprintf(res.msg, sizeof res.msg, "create: %s", facelink_last_error());
        res.other++;
        return res;
    }
    size_t out_bytes = (size_t)T.out_width * T.out_height * 3;
    for (size_t k = 0; k < n; k++) {
        size_t i = order ? order[k] : k;
        uint8_t *copy = malloc(pf->size[i]);
        memcpy(copy, pf->data[i], pf->size[i]);
        if ((int)k == flip) copy[pf->size[i] - 1] ^= 0x01;
        facelink_frame f;
        int32_t has = 0;
        facelink_status st = facelink_receiver_push(r, copy, pf->size[i], &f, &has);
        free(copy);
        res.pushed++;
        if (has) {
            if (decoded && memcmp(f.image.data, decoded + (size_t)res.frames * out_bytes, out_bytes)) res.other++;
            res.frames++;
        }
        if (st == FACELINK_OK) {
            res.ok++;
            continue;
        }
        if (res.first_bad < 0) {
            res.first_bad = (int)k;
            snprintf(res.msg, sizeof res.msg, "%s", facelink_last_error());
        }
        if (st == FACELINK_E_VERIFICATION) {
            if (res.first_verif < 0) {
                res.first_verif = (int)k;
                snprintf(res.verif_msg, sizeof res.verif_msg, "%s", facelink_last_error());
            }
            res.verification++;
        } else if (st == FACELINK_E_INCOMPLETE) {
            res.incomplete++;
        } else if (st == FACELINK_E_UNTRUSTED) {
            res.untrusted++;
        } else if (st == FACELINK_E_INVALID_PACKET) {
            res.invalid++;
        } else {
            res.other++;
        }
    }
    facelink_buffer report;
    if (facelink_receiver_verification(r, &report) == FACELINK_OK) {
        snprintf(res.report, sizeof res.report, "%s", (char *)report.data);
        facelink_buffer_free(&report);
    }
    facelink_receiver_destroy(r);
    return res;
}

/* packets of the signed stream up to the g_frames-th frame and the seal right after it (all at full length) */
static size_t signed_used(const packet_file *pf) {
    if (g_frames == T.frames) return pf->count;
    int frames = 0;
    size_t i = 0;
    for (; i < pf->count && frames < g_frames; i++)
        if (ptype(pf, i) == PT_KEY || ptype(pf, i) == PT_PREDICTED) frames++;
    return i < pf->count && ptype(pf, i) == PT_SEAL ? i + 1 : i;
}

/* first packet of type `type` at or after `from` */
static size_t find_type(const packet_file *pf, size_t from, int type) {
    while (from < pf->count && ptype(pf, from) != type) from++;
    return from;
}

static void test_verifying_receiver(packet_file *spf, packet_file *upf, const uint8_t *decoded, const char *tmpdir) {
    char trust[2048], empty[2100];
    snprintf(trust, sizeof trust, "%s/trust", T.dir);
    snprintf(empty, sizeof empty, "%s/empty-trust", tmpdir);
    mkdir(empty, 0700);
    facelink_receiver_security sec;
    facelink_receiver_security_init(&sec);
    sec.trust_dir = trust;
    size_t n = signed_used(spf);
    rx_result r;

    /* trusted signer: every push OK, every frame verified */
    r = run_receiver(&sec, spf, n, NULL, -1, NULL);
    CHECK(r.ok == (int)n && r.frames == g_frames, "trusted: %d of %zu pushes OK, %d frames; %s", r.ok, n, r.frames, r.msg);
    CHECK(strstr(r.report, "\"signed\": true") && strstr(r.report, "\"trusted\": true") &&
              strstr(r.report, "\"spans_mismatch\": 0") && strstr(r.report, "\"seals_rejected\": 0"),
          "trusted report: %s", r.report);
    if (n == spf->count)
        CHECK(strstr(r.report, "\"intact\": true") && strstr(r.report, "\"packets_pending\": 0"),
              "trusted, complete: %s", r.report);

    /* untrusted signer: refused at the header, and at every later push; nothing rendered */
    sec.trust_dir = empty;
    r = run_receiver(&sec, spf, n, NULL, -1, NULL);
    CHECK(r.first_bad == 0 && r.untrusted == (int)n && r.frames == 0, "untrusted: first bad %d, %d refusals, %d frames",
          r.first_bad, r.untrusted, r.frames);
    CHECK(strstr(r.msg, "facelink_receiver_push: session refused: sender key") && strstr(r.msg, "is not trusted"),
          "untrusted message: %s", r.msg);
    CHECK(strstr(r.report, "\"refused\": \"sender key") != NULL, "untrusted report: %s", r.report);

    /* insecure: an untrusted signer is accepted (flagged), its seals still checked */
    sec.insecure = 1;
    r = run_receiver(&sec, spf, n, NULL, -1, NULL);
    CHECK(r.ok == (int)n && r.frames == g_frames, "insecure, untrusted: %d of %zu OK; %s", r.ok, n, r.msg);
    CHECK(strstr(r.report, "\"trusted\": false") && strstr(r.report, "\"spans_mismatch\": 0"), "insecure report: %s", r.report);

    /* unsigned stream: refused when strict; with insecure, frames equal the plain receiver's */
    r = run_receiver(&sec, upf, packets_used(upf), NULL, -1, decoded);
    CHECK(r.ok == (int)packets_used(upf) && r.frames == g_frames && r.other == 0,
          "insecure, unsigned: %d OK, %d frames, %d differ; %s", r.ok, r.frames, r.other, r.msg);
    sec.insecure = 0;
    sec.trust_dir = trust;
    r = run_receiver(&sec, upf, 3, NULL, -1, NULL);
    CHECK(r.first_bad == 0 && r.untrusted == 3, "strict, unsigned: first bad %d, %d refusals", r.first_bad, r.untrusted);
    CHECK(strstr(r.msg, "stream is not signed") != NULL, "unsigned message: %s", r.msg);

    /* a flipped byte in the reference: the chunk is damaged, and the seal after it says so */
    size_t chunk = find_type(spf, 0, PT_CHUNK), seal = find_type(spf, chunk, PT_SEAL);
    r = run_receiver(&sec, spf, seal + 1, NULL, (int)chunk, NULL);
    CHECK(r.first_verif == (int)seal && r.verification == 1, "tampered chunk: verification failure at %d, want %zu; %s",
          r.first_verif, seal, r.msg);
    CHECK(strstr(r.verif_msg, "failed verification (mismatch") && strstr(r.verif_msg, "not authentic"),
          "tampered chunk message: %s", r.verif_msg);
    CHECK(strstr(r.report, "\"spans_mismatch\": 1") != NULL, "tampered chunk report: %s", r.report);

    /* a replayed seal: ignored, reported */
    size_t order[256];
    size_t first_seal = find_type(spf, 0, PT_SEAL);
    for (size_t i = 0; i <= first_seal; i++) order[i] = i;
    order[first_seal + 1] = first_seal;
    r = run_receiver(&sec, spf, first_seal + 2, order, -1, NULL);
    CHECK(r.first_bad == (int)first_seal + 1 && r.verification == 1, "replayed seal: first bad %d; %s", r.first_bad, r.msg);
    CHECK(strstr(r.verif_msg, "replayed seal (counter 0, already at 0)") != NULL, "replay message: %s", r.verif_msg);

    /* max_age: these seals were signed in 2023 */
    sec.max_age = 60;
    r = run_receiver(&sec, spf, first_seal + 2, NULL, -1, NULL);
    CHECK(r.first_bad == (int)first_seal && r.untrusted == 2, "max_age: first bad %d, %d refusals", r.first_bad, r.untrusted);
    CHECK(strstr(r.msg, "longer ago than the allowed 60 s") != NULL, "max_age message: %s", r.msg);
    sec.max_age = 0;

    if (g_light || n != spf->count) return;
    size_t key = find_type(spf, 0, PT_KEY), key_seal = find_type(spf, key, PT_SEAL);
    int seals_after = 0;
    for (size_t i = key_seal + 1; i < spf->count; i++) seals_after += ptype(spf, i) == PT_SEAL;

    /* a flipped byte in a frame: that span fails, the next spans verify again */
    r = run_receiver(&sec, spf, spf->count, NULL, (int)key, NULL);
    CHECK(r.first_verif == (int)key_seal && r.verification == 1 && r.ok + r.invalid + r.verification == (int)spf->count,
          "tampered frame: verification failure at %d (want %zu), %d failures, %d OK; %s", r.first_verif, key_seal,
          r.verification, r.ok, r.msg);
    CHECK(strstr(r.verif_msg, "(frame") && strstr(r.verif_msg, "failed verification (mismatch"),
          "tampered frame message names the frames: %s", r.verif_msg);
    char want[64];
    snprintf(want, sizeof want, "\"spans_verified\": %d", 2 + seals_after); /* header, reference, later spans */
    CHECK(strstr(r.report, want) != NULL, "spans after the tampered one verify: %s", r.report);

    /* two frames swapped within a span */
    for (size_t i = 0; i < spf->count; i++) order[i] = i;
    order[key + 1] = key + 2, order[key + 2] = key + 1;
    r = run_receiver(&sec, spf, spf->count, order, -1, NULL);
    CHECK(r.first_verif == (int)key_seal && r.verification == 1, "reordered: verification failure at %d; %s",
          r.first_verif, r.msg);
    CHECK(strstr(r.verif_msg, "out of order") != NULL, "reordered message: %s", r.verif_msg);

    /* a lost frame: its span cannot be verified (incomplete), not a mismatch */
    size_t k = 0;
    for (size_t i = 0; i < spf->count; i++)
        if (i != key + 1) order[k++] = i;
    r = run_receiver(&sec, spf, k, order, -1, NULL);
    CHECK(r.incomplete == 1 && r.verification == 0 && r.first_bad == (int)key_seal - 1, "lost frame: %d incomplete at %d; %s",
          r.incomplete, r.first_bad, r.msg);
    CHECK(strstr(r.msg, "cannot be verified (incomplete: 1 frame packet(s) missing)") != NULL, "lost frame message: %s", r.msg);
    rmdir(empty);
}

/* ------------------------------------------------------------------ main */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

#define RUN(call)                                                                      \
    do {                                                                               \
        double t0_ = now_s();                                                          \
        int f0_ = g_failures;                                                          \
        call;                                                                          \
        printf("%-40s %s %6.2f s\n", #call, g_failures == f0_ ? "ok  " : "FAIL", now_s() - t0_); \
        fflush(stdout);                                                                \
    } while (0)

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s TESTDATA_DIR [--frames N]\n", argv[0]);
        return 2;
    }
    load_meta(argv[1]);
    g_frames = T.frames;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--frames") && i + 1 < argc) {
            int n = atoi(argv[++i]);
            if (n > 0 && n < T.frames) g_frames = n;
        } else if (!strcmp(argv[i], "--light")) {
            g_light = 1;
        } else {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        }
    }
    char tmpdir[] = "/tmp/facelink-ctest-XXXXXX";
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 2;
    }

    RUN(test_pure());
    RUN(test_null_outputs());
    RUN(test_init());
    RUN(test_sender_arguments());
    RUN(test_receiver_and_handles());
    RUN(test_file_arguments(tmpdir));
    RUN(test_keys(tmpdir));
    RUN(test_security_arguments(tmpdir));
    RUN(test_thread_errors());

    if (!T.models) {
        printf("SKIPPED equality with the Python API: %s\n", T.reason);
    } else {
        size_t n;
        uint8_t *frames = read_file("frames.rgb", &n);
        uint8_t *decoded = read_file("decoded.rgb", &n);
        packet_file pf = load_packets();
        CHECK(pf.count == (size_t)T.packets, "packets.bin holds %zu packets, meta says %d", pf.count, T.packets);

        RUN(test_image_load());
        RUN(test_sender_states(frames));

        RUN(test_equality(frames, decoded, &pf));
        RUN(test_destroy_in_flight(&pf));
        RUN(test_files(tmpdir));
        if (T.signed_) {
            packet_file spf = load_packets_from("signed.bin", T.signed_packets);
            CHECK(spf.count == (size_t)T.signed_packets && spf.count < 256, "signed.bin holds %zu packets", spf.count);
            RUN(test_signed_sender(frames, &spf));
            if (!g_light) RUN(test_signed_sender_states(frames));
            RUN(test_verifying_receiver(&spf, &pf, decoded, tmpdir));
            free_packets(&spf);
        } else {
            printf("SKIPPED signed streams: make_expected.py found no facelink.security\n");
        }
        free_packets(&pf);
        free(frames);
        free(decoded);
    }
    rmdir(tmpdir);
    printf("test_capi: %d checks, %d failures (%d of %d frames)\n", g_checks, g_failures, g_frames, T.frames);
    return g_failures ? 1 : 0;
}
