// facelink-roundtrip: a C++17 RAII wrapper over the FaceLink C ABI, and a loopback demo.
//
//   facelink-roundtrip PORTRAIT.png [OUT.ppm] [--frames N]
//
// Loads a portrait, makes N frames of it nodding (a shifted crop per frame), codes
// them with a Sender, feeds every packet to a Receiver in the same process (no
// network), and writes the last synthesised frame as a binary PPM.  Prints the
// stream size and the rate on stdout.
//
// The wrapper: every handle and buffer is owned by exactly one object (move-only),
// released in its destructor; every non-OK status throws facelink::Error carrying
// the status and facelink_last_error().

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "facelink.h"

namespace facelink {

class Error : public std::runtime_error {
  public:
    Error(facelink_status status, const char *message) : std::runtime_error(message), status_(status) {}
    facelink_status status() const { return status_; }

  private:
    facelink_status status_;
};

inline void check(facelink_status st) {
    if (st != FACELINK_OK) throw Error(st, facelink_last_error());
}

// Packets returned by the library; freed with facelink_packets_free.
class Packets {
  public:
    Packets() = default;
    ~Packets() { facelink_packets_free(&p_); }
    Packets(Packets &&o) noexcept : p_(std::exchange(o.p_, facelink_packets{})) {}
    Packets &operator=(Packets &&o) noexcept {
        if (this != &o) {
            facelink_packets_free(&p_);
            p_ = std::exchange(o.p_, facelink_packets{});
        }
        return *this;
    }
    Packets(const Packets &) = delete;
    Packets &operator=(const Packets &) = delete;

    size_t size() const { return p_.count; }
    std::pair<const uint8_t *, size_t> operator[](size_t i) const {
        return {facelink_packet_data(&p_, i), facelink_packet_size(&p_, i)};
    }
    facelink_packets *out() {  // for the C calls: releases what it held first
        facelink_packets_free(&p_);
        return &p_;
    }

  private:
    facelink_packets p_{};
};

// An image owned by the library (facelink_image_load); freed with facelink_buffer_free.
class LoadedImage {
  public:
    explicit LoadedImage(const std::string &path, int32_t format = FACELINK_PIXEL_RGB24) {
        check(facelink_image_load(path.c_str(), format, &pixels_, &image_));
    }
    ~LoadedImage() { facelink_buffer_free(&pixels_); }
    LoadedImage(const LoadedImage &) = delete;
    LoadedImage &operator=(const LoadedImage &) = delete;
    const facelink_image &image() const { return image_; }

  private:
    facelink_buffer pixels_{};
    facelink_image image_{};
};

class Sender {
  public:
    Sender(const facelink_sender_config &config, const facelink_image &reference) {
        check(facelink_sender_create(&config, &reference, &h_));
    }
    ~Sender() { facelink_sender_destroy(h_); }
    Sender(Sender &&o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
    Sender(const Sender &) = delete;
    Sender &operator=(const Sender &) = delete;

    Packets start() {
        Packets p;
        check(facelink_sender_start(h_, p.out()));
        return p;
    }
    Packets push(const facelink_image &frame, int64_t index, double time_s) {
        Packets p;
        check(facelink_sender_push(h_, &frame, index, time_s, p.out(), nullptr));
        return p;
    }
    Packets end() {
        Packets p;
        check(facelink_sender_end(h_, p.out()));
        return p;
    }
    facelink_sender_stats stats() {
        facelink_sender_stats s{};
        check(facelink_sender_stats_get(h_, &s));
        return s;
    }

  private:
    facelink_sender *h_ = nullptr;
};

// A received frame, copied out of the library's lent buffer.
struct Frame {
    int64_t index = 0;
    double time = 0;
    bool held = false;
    int32_t width = 0, height = 0, stride = 0, format = 0;
    std::vector<uint8_t> pixels;
};

class Receiver {
  public:
    explicit Receiver(const facelink_receiver_config *config = nullptr) {
        check(facelink_receiver_create(config, &h_));
    }
    ~Receiver() { facelink_receiver_destroy(h_); }
    Receiver(Receiver &&o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
    Receiver(const Receiver &) = delete;
    Receiver &operator=(const Receiver &) = delete;

    // A frame for frame packets, nothing for the others.
    std::optional<Frame> push(const uint8_t *packet, size_t size) {
        facelink_frame f;
        int32_t has = 0;
        check(facelink_receiver_push(h_, packet, size, &f, &has));
        if (!has) return std::nullopt;
        Frame out;
        out.index = f.index;
        out.time = f.time;
        out.held = f.held != 0;
        out.width = f.image.width;
        out.height = f.image.height;
        out.stride = f.image.stride;
        out.format = f.image.format;
        out.pixels.assign(f.image.data, f.image.data + f.image.size);  // lent until the next call: copy
        return out;
    }

  private:
    facelink_receiver *h_ = nullptr;
};

}  // namespace facelink

int main(int argc, char **argv) {
    const char *portrait = nullptr, *ppm = nullptr;
    int frames = 10;
    for (int i = 1; i < argc; i++) {
        if (!std::strcmp(argv[i], "--frames") && i + 1 < argc) {
            frames = std::atoi(argv[++i]);
        } else if (!portrait) {
            portrait = argv[i];
        } else if (!ppm) {
            ppm = argv[i];
        } else {
            portrait = nullptr;
            break;
        }
    }
    if (!portrait || frames < 1) {
        std::fprintf(stderr, "usage: facelink-roundtrip PORTRAIT [OUT.ppm] [--frames N]\n");
        return 2;
    }
    if (!FACELINK_ABI_COMPATIBLE(facelink_abi_version())) {
        std::fprintf(stderr, "facelink-roundtrip: libfacelink ABI %x does not serve this header (%x)\n",
                     facelink_abi_version(), FACELINK_ABI_VERSION);
        return 1;
    }
    try {
        facelink::LoadedImage image(portrait);
        const facelink_image &full = image.image();
        // frames: a (W-16)x(H-16) window moving over the portrait, like a nodding head
        const int32_t w = full.width - 16, h = full.height - 16;
        auto window = [&](int i) {
            int dy = (i % 8 < 4 ? i % 8 : 8 - i % 8) * 2;
            facelink_image f = full;
            f.data = full.data + static_cast<size_t>(dy) * full.stride + 8 * 3;
            f.size = full.size - static_cast<size_t>(dy) * full.stride - 8 * 3;
            f.width = w;
            f.height = h;
            return f;
        };
        facelink_sender_config cfg;
        facelink_sender_config_init(&cfg);
        cfg.width = w;
        cfg.height = h;
        facelink::Sender sender(cfg, window(0));
        facelink::Receiver receiver;
        size_t bytes = 0;
        std::optional<facelink::Frame> last;
        auto deliver = [&](const facelink::Packets &packets) {
            for (size_t i = 0; i < packets.size(); i++) {
                auto [data, size] = packets[i];
                bytes += size;
                if (auto frame = receiver.push(data, size)) last = std::move(frame);
            }
        };
        deliver(sender.start());
        for (int i = 0; i < frames; i++) deliver(sender.push(window(i), i, i / 30.0));
        deliver(sender.end());
        facelink_sender_stats s = sender.stats();
        std::printf("%lld frames, %zu bytes on the wire (%lld reference), %.2f kbit/s without the reference\n",
                    static_cast<long long>(s.frames), bytes, static_cast<long long>(s.reference_bytes),
                    8.0 * static_cast<double>(s.bytes) / (frames / 30.0) / 1000.0);
        if (!last) throw std::runtime_error("no frame came out of the receiver");
        std::printf("last frame: index %lld, %dx%d%s\n", static_cast<long long>(last->index), last->width,
                    last->height, last->held ? " (held)" : "");
        if (ppm) {
            std::FILE *f = std::fopen(ppm, "wb");
            if (!f) throw std::runtime_error(std::string("cannot write ") + ppm);
            std::fprintf(f, "P6\n%d %d\n255\n", last->width, last->height);
            for (int32_t y = 0; y < last->height; y++)
                std::fwrite(last->pixels.data() + static_cast<size_t>(y) * last->stride, 1,
                            static_cast<size_t>(last->width) * 3, f);
            if (std::fclose(f) != 0) throw std::runtime_error(std::string("cannot write ") + ppm);
        }
    } catch (const facelink::Error &e) {
        std::fprintf(stderr, "facelink-roundtrip: %s (%s)\n", e.what(), facelink_status_name(e.status()));
        return 1;
    } catch (const std::exception &e) {
        std::fprintf(stderr, "facelink-roundtrip: %s\n", e.what());
        return 1;
    }
    return 0;
}
