/*
 * facelink-sender: raw RGB frames in, a FaceLink keypoint stream (.flk) out.
 *
 *   ffmpeg -i talk.mp4 -f rawvideo -pix_fmt rgb24 - | facelink-sender --size 640x480 - talk.flk
 *
 * INPUT is a file of raw RGB24 frames, or "-" for stdin; OUTPUT.flk is FaceLink's
 * length-prefixed packet file (what `facelink decode` and facelink-receiver read).
 * The first frame is the reference unless --reference IMAGE is given.  Prints one
 * status line per second (frames, fps, kbit/s) on stderr; exits 0 at end of input.
 *
 * Options: --size WxH (required), --fps NUM[/DEN] (30), --quality low|medium|high,
 *          --reference IMAGE, --session-id HEX32 and --created-us N (reproducible output),
 *          --key KEY (sign: a .key file of `facelink keys generate`, or a key name) and
 *          --seal-interval S (seconds of stream between seals, default 0.5).  Without
 *          --key the stream is unsigned, and verifying receivers refuse it unless insecure.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "facelink.h"

static const uint8_t FLK_MAGIC[8] = {0x89, 'F', 'L', 'K', '\r', '\n', 0x1a, '\n'};

static int write_packets(FILE *out, const facelink_packets *p) {
    for (size_t i = 0; i < p->count; i++) {
        size_t n = facelink_packet_size(p, i);
        uint8_t len[3];
        int k = 0;
        do { /* unsigned LEB128 */
            len[k] = (uint8_t)(n & 0x7f);
            n >>= 7;
            if (n) len[k] |= 0x80;
            k++;
        } while (n && k < 3);
        if (fwrite(len, 1, (size_t)k, out) != (size_t)k ||
            fwrite(facelink_packet_data(p, i), 1, facelink_packet_size(p, i), out) != facelink_packet_size(p, i))
            return -1;
    }
    return 0;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int usage(void) {
    fprintf(stderr, "usage: facelink-sender --size WxH [--fps N[/D]] [--quality Q] [--reference IMAGE]\n"
                    "                       [--key KEY [--seal-interval S]] [--session-id HEX32 --created-us N]\n"
                    "                       INPUT|- OUTPUT.flk\n");
    return 2;
}

static int fail(const char *what, facelink_status st) {
    fprintf(stderr, "facelink-sender: %s: %s (%s)\n", what, facelink_last_error(), facelink_status_name(st));
    return 1;
}

int main(int argc, char **argv) {
    facelink_sender_config cfg;
    facelink_sender_config_init(&cfg);
    facelink_sender_security sec;
    facelink_sender_security_init(&sec);
    const char *reference_path = NULL, *input = NULL, *output = NULL;
    uint8_t session_id[FACELINK_SESSION_ID_SIZE];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--size") && v) {
            if (sscanf(v, "%dx%d", &cfg.width, &cfg.height) != 2) return usage();
            i++;
        } else if (!strcmp(a, "--fps") && v) {
            if (sscanf(v, "%d/%d", &cfg.fps_num, &cfg.fps_den) < 1) return usage();
            i++;
        } else if (!strcmp(a, "--quality") && v) {
            cfg.quality = v, i++;
        } else if (!strcmp(a, "--reference") && v) {
            reference_path = v, i++;
        } else if (!strcmp(a, "--session-id") && v && strlen(v) == 2 * FACELINK_SESSION_ID_SIZE) {
            for (int k = 0; k < FACELINK_SESSION_ID_SIZE; k++)
                if (sscanf(v + 2 * k, "%2hhx", &session_id[k]) != 1) return usage();
            cfg.session_id = session_id, i++;
        } else if (!strcmp(a, "--created-us") && v) {
            cfg.created_us = atoll(v), i++;
        } else if (!strcmp(a, "--key") && v) {
            sec.key = v, i++;
        } else if (!strcmp(a, "--seal-interval") && v) {
            sec.seal_interval = atof(v), i++;
            if (!(sec.seal_interval > 0)) return usage();
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
    if (!input || !output || cfg.width <= 0 || cfg.height <= 0) return usage();
    if (sec.seal_interval > 0 && !sec.key) return usage();
    if (!FACELINK_ABI_COMPATIBLE(facelink_abi_version())) { /* facelink_sender_create_ex is ABI 1.1 */
        fprintf(stderr, "facelink-sender: libfacelink ABI %#x is older than this program's %#x\n",
                (unsigned)facelink_abi_version(), (unsigned)FACELINK_ABI_VERSION);
        return 1;
    }

    FILE *in = strcmp(input, "-") ? fopen(input, "rb") : stdin;
    if (!in) {
        perror(input);
        return 1;
    }
    FILE *out = fopen(output, "wb");
    if (!out) {
        perror(output);
        return 1;
    }
    size_t frame_size = (size_t)cfg.width * cfg.height * 3;
    uint8_t *pixels = malloc(frame_size);
    facelink_image frame = {pixels, frame_size, cfg.width, cfg.height, cfg.width * 3, FACELINK_PIXEL_RGB24};
    facelink_buffer ref_pixels = {0};
    facelink_image reference = frame;
    facelink_sender *sender = NULL;
    facelink_packets packets = {0};
    facelink_status st = FACELINK_OK;
    int rc = 1;

    if (!pixels || fread(pixels, 1, frame_size, in) != frame_size) {
        fprintf(stderr, "facelink-sender: %s: no complete %dx%d RGB24 frame\n", input, cfg.width, cfg.height);
        goto done;
    }
    if (reference_path && (st = facelink_image_load(reference_path, FACELINK_PIXEL_RGB24, &ref_pixels, &reference))) {
        rc = fail(reference_path, st);
        goto done;
    }
    if ((st = facelink_sender_create_ex(&cfg, &reference, &sec, &sender)) != FACELINK_OK) {
        rc = fail("create", st);
        goto done;
    }
    if ((st = facelink_sender_start(sender, &packets)) != FACELINK_OK) {
        rc = fail("start", st);
        goto done;
    }
    fwrite(FLK_MAGIC, 1, sizeof FLK_MAGIC, out);
    write_packets(out, &packets);
    facelink_packets_free(&packets);

    double t0 = now(), last_report = t0;
    int64_t index = 0, bytes = 0;
    do {
        double t = (double)index * cfg.fps_den / cfg.fps_num;
        if ((st = facelink_sender_push(sender, &frame, index, t, &packets, NULL)) != FACELINK_OK) {
            rc = fail("push", st);
            goto done;
        }
        for (size_t i = 0; i < packets.count; i++) bytes += (int64_t)facelink_packet_size(&packets, i);
        if (write_packets(out, &packets)) {
            perror(output);
            goto done;
        }
        facelink_packets_free(&packets);
        index++;
        if (now() - last_report >= 1.0) {
            double media = (double)index * cfg.fps_den / cfg.fps_num;
            fprintf(stderr, "facelink-sender: %lld frames, %.1f fps, %.2f kbit/s\n", (long long)index,
                    index / (now() - t0), 8.0 * bytes / media / 1000.0);
            last_report = now();
        }
    } while (fread(pixels, 1, frame_size, in) == frame_size);

    if ((st = facelink_sender_end(sender, &packets)) != FACELINK_OK) {
        rc = fail("end", st);
        goto done;
    }
    write_packets(out, &packets);
    facelink_sender_stats stats;
    if (facelink_sender_stats_get(sender, &stats) == FACELINK_OK)
        fprintf(stderr, "facelink-sender: %s: %lld frames (%lld with a face), %lld bytes + %lld bytes reference\n",
                output, (long long)stats.frames, (long long)stats.face_frames, (long long)stats.bytes,
                (long long)stats.reference_bytes);
    fprintf(stderr, "facelink-sender: %s\n", sec.key ? "signed" : "unsigned (no --key)");
    rc = 0;
done:
    facelink_packets_free(&packets);
    facelink_sender_destroy(sender);
    facelink_buffer_free(&ref_pixels);
    free(pixels);
    if (in != stdin) fclose(in);
    if (fclose(out) != 0 && rc == 0) {
        perror(output);
        rc = 1;
    }
    return rc;
}
