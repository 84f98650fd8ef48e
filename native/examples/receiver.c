/*
 * facelink-receiver: a FaceLink keypoint stream (.flk) in, raw video frames out.
 *
 *   facelink-receiver talk.flk - | ffplay -f rawvideo -pixel_format rgb24 -video_size 512x512 -
 *
 * OUTPUT is a file of raw frames, or "-" for stdout; one frame per encoded frame, at
 * the reference's size (printed on stderr).  Damaged packets are skipped with a warning,
 * as a receiver on a lossy link would.
 *
 * The stream's seals are verified as they arrive (like `facelink receive`): the signer
 * must be in the trust directory (--trust DIR, default $FACELINK_HOME/trust), or
 * --insecure accepts unsigned streams and untrusted signers (seals are still checked).
 * Frames are written as they arrive; a span that fails its seal is reported on stderr.
 * Exit status: 0 verified (or insecure and clean), 1 error, 3 refused, damaged, or not
 * entirely verified.
 *
 * Options: --format rgb24|bgr24|rgba32|bgra32|gray8 (rgb24), --pose YAW,PITCH,ROLL
 *          (free view, degrees), --reference IMAGE (drive another face), --trust DIR,
 *          --insecure.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "facelink.h"

#define MAX_RECORD (1u << 20)

static const uint8_t FLK_MAGIC[8] = {0x89, 'F', 'L', 'K', '\r', '\n', 0x1a, '\n'};

/* next record of a .flk file: its length, 0 at a clean end, -1 if damaged */
static long read_record(FILE *in, uint8_t *buf) {
    size_t n = 0;
    int c = 0, k;
    for (k = 0; k < 3; k++) {
        if ((c = fgetc(in)) == EOF) return k == 0 ? 0 : -1;
        n |= (size_t)(c & 0x7f) << (7 * k);
        if (!(c & 0x80)) break;
    }
    if (k == 3 || n == 0 || n > MAX_RECORD) return -1;
    return fread(buf, 1, n, in) == n ? (long)n : -1;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int usage(void) {
    fprintf(stderr, "usage: facelink-receiver [--format rgb24|bgr24|rgba32|bgra32|gray8] [--pose Y,P,R]\n"
                    "                         [--reference IMAGE] [--trust DIR] [--insecure] INPUT.flk OUTPUT|-\n");
    return 2;
}

static int fail(const char *what, facelink_status st) {
    fprintf(stderr, "facelink-receiver: %s: %s (%s)\n", what, facelink_last_error(), facelink_status_name(st));
    return 1;
}

int main(int argc, char **argv) {
    static const char *formats[] = {"", "rgb24", "bgr24", "rgba32", "bgra32", "gray8"};
    facelink_receiver_config cfg;
    facelink_receiver_config_init(&cfg);
    facelink_receiver_security sec;
    facelink_receiver_security_init(&sec);
    const char *input = NULL, *output = NULL, *reference_path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--format") && v) {
            cfg.format = 0;
            for (int f = 1; f <= 5; f++)
                if (!strcmp(v, formats[f])) cfg.format = f;
            if (!cfg.format) return usage();
            i++;
        } else if (!strcmp(a, "--pose") && v) {
            if (sscanf(v, "%lf,%lf,%lf", &cfg.yaw, &cfg.pitch, &cfg.roll) != 3) return usage();
            i++;
        } else if (!strcmp(a, "--reference") && v) {
            reference_path = v, i++;
        } else if (!strcmp(a, "--trust") && v) {
            sec.trust_dir = v, i++;
        } else if (!strcmp(a, "--insecure")) {
            sec.insecure = 1;
        } else if (a[0] == '-' && a[1] != '\0') {
            return usage();
        } else if (!input) {
            input = a;
        } else if (!output) {
            output = a;
        } else {
            return usage();
        }
    }
    if (!input || !output) return usage();
    if (!FACELINK_ABI_COMPATIBLE(facelink_abi_version())) { /* facelink_receiver_create_ex is ABI 1.1 */
        fprintf(stderr, "facelink-receiver: libfacelink ABI %#x is older than this program's %#x\n",
                (unsigned)facelink_abi_version(), (unsigned)FACELINK_ABI_VERSION);
        return 1;
    }

    FILE *in = fopen(input, "rb");
    if (!in) {
        perror(input);
        return 1;
    }
    FILE *out = strcmp(output, "-") ? fopen(output, "wb") : stdout;
    if (!out) {
        perror(output);
        fclose(in);
        return 1;
    }
    uint8_t magic[8];
    uint8_t *record = malloc(MAX_RECORD);
    facelink_buffer target_pixels = {0};
    facelink_image target;
    facelink_receiver *receiver = NULL;
    facelink_status st;
    facelink_buffer report = {0};
    int rc = 1;
    if (!record || fread(magic, 1, 8, in) != 8 || memcmp(magic, FLK_MAGIC, 8)) {
        fprintf(stderr, "facelink-receiver: %s: not a .flk stream\n", input);
        goto done;
    }
    if (reference_path) {
        if ((st = facelink_image_load(reference_path, FACELINK_PIXEL_RGB24, &target_pixels, &target))) {
            rc = fail(reference_path, st);
            goto done;
        }
        cfg.target = &target;
    }
    if ((st = facelink_receiver_create_ex(&cfg, &sec, &receiver)) != FACELINK_OK) {
        rc = fail("create", st);
        goto done;
    }
    double t0 = now();
    long n, frames = 0, damaged = 0, unverified = 0;
    while ((n = read_record(in, record)) > 0) {
        facelink_frame frame;
        int32_t has_frame;
        st = facelink_receiver_push(receiver, record, (size_t)n, &frame, &has_frame);
        if (st == FACELINK_E_INVALID_PACKET) { /* skip it, keep going */
            fprintf(stderr, "facelink-receiver: skipped a damaged packet: %s\n", facelink_last_error());
            damaged++;
            continue;
        }
        if (st == FACELINK_E_VERIFICATION || st == FACELINK_E_INCOMPLETE) { /* a seal's verdict: go on */
            fprintf(stderr, "facelink-receiver: %s\n", facelink_last_error());
            unverified++;
            continue;
        }
        if (st == FACELINK_E_UNTRUSTED) {
            fprintf(stderr, "facelink-receiver: %s\n", facelink_last_error());
            rc = 3;
            goto done;
        }
        if (st != FACELINK_OK) {
            rc = fail("push", st);
            goto done;
        }
        if (!has_frame) continue;
        if (frames == 0)
            fprintf(stderr, "facelink-receiver: %dx%d %s frames\n", frame.image.width, frame.image.height,
                    formats[frame.image.format]);
        /* the pixels are lent until the next call on this receiver: write them now */
        for (int32_t y = 0; y < frame.image.height; y++) {
            size_t row = (size_t)frame.image.width * (size_t)facelink_bytes_per_pixel(frame.image.format);
            if (fwrite(frame.image.data + (size_t)y * (size_t)frame.image.stride, 1, row, out) != row) {
                perror(output);
                goto done;
            }
        }
        frames++;
    }
    if (n < 0) {
        fprintf(stderr, "facelink-receiver: %s: truncated or damaged record; stopping\n", input);
        damaged++;
    }
    fprintf(stderr, "facelink-receiver: %ld frames, %.1f fps, %ld damaged\n", frames, frames / (now() - t0), damaged);
    /* a signed file must end verified: every packet covered by a seal that verified */
    int is_signed = 0, complete = 0;
    if (facelink_receiver_verification(receiver, &report) == FACELINK_OK) {
        is_signed = strstr((const char *)report.data, "\"signed\": true") != NULL;
        complete = strstr((const char *)report.data, "\"end_verified\": true") != NULL &&
                   strstr((const char *)report.data, "\"packets_pending\": 0") != NULL;
    }
    if (is_signed)
        fprintf(stderr, "facelink-receiver: signed stream, %s%s\n", unverified || !complete ? "NOT entirely verified" : "verified",
                strstr((const char *)report.data, "\"trusted\": true") ? "" : " (untrusted signer: --insecure)");
    else
        fprintf(stderr, "facelink-receiver: unsigned stream (accepted with --insecure): nothing verified\n");
    rc = damaged || unverified || (is_signed && !complete) ? 3 : 0;
done:
    facelink_buffer_free(&report);
    facelink_receiver_destroy(receiver);
    facelink_buffer_free(&target_pixels);
    free(record);
    fclose(in);
    if (out != stdout && fclose(out) != 0 && rc == 0) {
        perror(output);
        rc = 1;
    }
    if (out == stdout) fflush(stdout);
    return rc;
}
