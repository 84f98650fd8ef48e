/*
 * libfacelink.so: the C ABI of facelink.h over an embedded CPython runtime.
 *
 * Every exported function (1) zeroes its outputs and checks the C-only arguments
 * (output pointers, struct pointers), (2) starts the runtime once (pthread_once),
 * (3) takes the GIL, (4) calls the function of the same name in facelink.capi, which
 * validates everything else and never raises, (5) copies the outputs into
 * library-allocated C memory, and (6) gives the GIL back.  The per-thread last error
 * is a C thread-local copied from facelink.capi.last_error() inside the same GIL hold.
 *
 * Caller memory is lent to Python as read-only memoryviews that are released before
 * the call returns; facelink.capi copies what it keeps.  If Python still held an
 * export of such a view at release time the call fails with FACELINK_E_INTERNAL.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "facelink.h"

#ifndef FACELINK_DEFAULT_PYTHON
#define FACELINK_DEFAULT_PYTHON ""
#endif

#if PY_VERSION_HEX < 0x03080000
#error "libfacelink needs Python >= 3.8 (PyConfig)"
#endif

#define ERROR_MAX 4096
/* the highest facelink_status this library knows (facelink.capi may not return more) */
#define STATUS_MAX FACELINK_E_INCOMPLETE

static _Thread_local char t_error[ERROR_MAX];

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static facelink_status g_init_status = FACELINK_E_PYTHON;
static char g_init_error[ERROR_MAX];
static char g_version[64];
static PyObject *g_capi; /* facelink.capi, a strong reference for the life of the process */

/* ------------------------------------------------------------------ errors */

/* copy at most cap-1 bytes of src into dst, cutting only at a UTF-8 character boundary */
static void copy_utf8(char *dst, size_t cap, const char *src) {
    size_t n = strlen(src);
    if (n >= cap) {
        n = cap - 1;
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80) n--;
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* printf into dst (cap bytes), cut at a UTF-8 boundary */
static void format_utf8(char *dst, size_t cap, const char *fmt, ...) {
    char tmp[2 * ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    copy_utf8(dst, cap, tmp);
}

static facelink_status fail(facelink_status status, const char *fmt, ...) {
    char tmp[ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    copy_utf8(t_error, sizeof t_error, tmp);
    return status;
}

static facelink_status succeed(void) {
    t_error[0] = '\0';
    return FACELINK_OK;
}

/* "TypeName: message" of the pending Python exception (cleared); needs the GIL */
static void python_error_text(char *dst, size_t cap) {
    PyObject *type = NULL, *value = NULL, *tb = NULL;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    const char *tname = type ? ((PyTypeObject *)type)->tp_name : "unknown error";
    PyObject *text = value ? PyObject_Str(value) : NULL;
    const char *msg = text ? PyUnicode_AsUTF8(text) : NULL;
    if (!msg) PyErr_Clear();
    format_utf8(dst, cap, "%s: %s", tname, msg ? msg : "(no message)");
    Py_XDECREF(text);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
}

/* ------------------------------------------------------------------ runtime */

static void import_capi(void) {
    PyObject *mod = PyImport_ImportModule("facelink.capi");
    if (!mod) {
        char why[ERROR_MAX];
        python_error_text(why, sizeof why);
        PyObject *exe = PySys_GetObject("executable"); /* borrowed */
        const char *exe_s = exe && PyUnicode_Check(exe) ? PyUnicode_AsUTF8(exe) : NULL;
        if (!exe_s) PyErr_Clear();
        format_utf8(g_init_error, sizeof g_init_error,
                 "cannot import facelink.capi (%s) with Python %s at %s; set FACELINK_PYTHON to the python "
                 "executable of the environment where facelink is installed, or PYTHONPATH to its packages",
                 why, Py_GetVersion(), exe_s && *exe_s ? exe_s : "(unknown)");
        return;
    }
    PyObject *major = PyObject_GetAttrString(mod, "ABI_VERSION_MAJOR");
    PyObject *minor = PyObject_GetAttrString(mod, "ABI_VERSION_MINOR");
    long ma = major ? PyLong_AsLong(major) : -1, mi = minor ? PyLong_AsLong(minor) : -1;
    Py_XDECREF(major);
    Py_XDECREF(minor);
    PyErr_Clear();
    if (ma != FACELINK_ABI_VERSION_MAJOR || mi < FACELINK_ABI_VERSION_MINOR) {
        format_utf8(g_init_error, sizeof g_init_error,
                 "facelink.capi serves ABI %ld.%ld but libfacelink.so was built for %d.%d; rebuild libfacelink "
                 "against the installed facelink package",
                 ma, mi, FACELINK_ABI_VERSION_MAJOR, FACELINK_ABI_VERSION_MINOR);
        Py_DECREF(mod);
        return;
    }
    PyObject *ver = PyObject_CallMethod(mod, "version", NULL);
    const char *ver_s = ver && PyUnicode_Check(ver) ? PyUnicode_AsUTF8(ver) : NULL;
    copy_utf8(g_version, sizeof g_version, ver_s ? ver_s : "unknown");
    Py_XDECREF(ver);
    PyErr_Clear();
    g_capi = mod;
    g_init_status = FACELINK_OK;
}

static void runtime_start(void) {
    if (Py_IsInitialized()) { /* loaded into a process that already runs Python */
        PyGILState_STATE gil = PyGILState_Ensure();
        import_capi();
        PyGILState_Release(gil);
        return;
    }
    PyConfig config;
    PyConfig_InitPythonConfig(&config);
    config.install_signal_handlers = 0;
    config.parse_argv = 0;
    const char *python = getenv("FACELINK_PYTHON");
    if (!python || !*python) python = FACELINK_DEFAULT_PYTHON;
    PyStatus status = PyStatus_Ok();
    if (*python) status = PyConfig_SetBytesString(&config, &config.program_name, python);
    if (!PyStatus_Exception(status)) status = Py_InitializeFromConfig(&config);
    PyConfig_Clear(&config);
    if (PyStatus_Exception(status)) {
        format_utf8(g_init_error, sizeof g_init_error, "cannot start the Python runtime (%s%s%s)",
                 status.func ? status.func : "", status.func ? ": " : "",
                 status.err_msg ? status.err_msg : "unknown error");
        return;
    }
    import_capi();
    PyEval_SaveThread(); /* from here on every call takes the GIL with PyGILState_Ensure */
}

/* starts the runtime once; on failure sets this thread's error, prefixed with `fn` */
static facelink_status runtime(const char *fn) {
    pthread_once(&g_once, runtime_start);
    if (g_init_status != FACELINK_OK) return fail(FACELINK_E_PYTHON, "%s: %s", fn, g_init_error);
    return FACELINK_OK;
}

/* ------------------------------------------------------------------ call helpers (GIL held) */

/* Lend `size` bytes at `data` to Python: a read-only memoryview, or None for NULL. */
static PyObject *lend(const void *data, size_t size) {
    if (!data) Py_RETURN_NONE;
    if (size > (size_t)PY_SSIZE_T_MAX) size = (size_t)PY_SSIZE_T_MAX; /* capi reports the shortfall */
    return PyMemoryView_FromMemory((char *)data, (Py_ssize_t)size, PyBUF_READ);
}

/* Release a lent view; 0 if Python kept no export of it. */
static int unlend(PyObject *view) {
    int ok = 1;
    if (view && PyMemoryView_Check(view)) {
        PyObject *r = PyObject_CallMethod(view, "release", NULL);
        if (!r) {
            PyErr_Clear();
            ok = 0;
        }
        Py_XDECREF(r);
    }
    Py_XDECREF(view);
    return ok;
}

static PyObject *handle_obj(const void *handle) { return PyLong_FromUnsignedLongLong((unsigned long long)(uintptr_t)handle); }

/* An image's fields as a tuple (data, width, height, stride, format); `*view` gets the lent view. */
static PyObject *image_args(const facelink_image *img, PyObject **view) {
    *view = lend(img->data, img->size);
    if (!*view) return NULL;
    return Py_BuildValue("(Oiiii)", *view, (int)img->width, (int)img->height, (int)img->stride, (int)img->format);
}

/* Copy facelink.capi.last_error() into this thread's error. */
static void fetch_capi_error(const char *fn) {
    PyObject *msg = PyObject_CallMethod(g_capi, "last_error", NULL);
    const char *s = msg && PyUnicode_Check(msg) ? PyUnicode_AsUTF8(msg) : NULL;
    if (s && *s) {
        copy_utf8(t_error, sizeof t_error, s);
    } else {
        PyErr_Clear();
        fail(FACELINK_E_INTERNAL, "%s: failed without a message", fn);
    }
    Py_XDECREF(msg);
}

/*
 * Call facelink.capi.<pyname>(*args, **kwargs) (both stolen; NULL args = building them
 * failed).  Returns the result (a status int or a (status, ...) tuple) when the status
 * is OK, else NULL with *status and this thread's error set.
 */
static PyObject *call(const char *fn, const char *pyname, PyObject *args, PyObject *kwargs, facelink_status *status) {
    PyObject *result = NULL, *func = NULL;
    if (!args || (kwargs == NULL && PyErr_Occurred())) {
        char why[ERROR_MAX];
        python_error_text(why, sizeof why);
        *status = fail(FACELINK_E_NO_MEMORY, "%s: cannot build the arguments (%s)", fn, why);
        goto done;
    }
    func = PyObject_GetAttrString(g_capi, pyname);
    if (func) result = PyObject_Call(func, args, kwargs);
    if (!result) {
        char why[ERROR_MAX];
        python_error_text(why, sizeof why);
        *status = fail(FACELINK_E_INTERNAL, "%s: internal error (%s)", fn, why);
        goto done;
    }
    PyObject *first = PyTuple_Check(result) && PyTuple_GET_SIZE(result) > 0 ? PyTuple_GET_ITEM(result, 0) : result;
    long st = PyLong_Check(first) ? PyLong_AsLong(first) : -1;
    if (st < 0 || st > STATUS_MAX) {
        PyErr_Clear();
        *status = fail(FACELINK_E_INTERNAL, "%s: internal error (facelink.capi.%s returned no status)", fn, pyname);
        Py_CLEAR(result);
    } else if (st != FACELINK_OK) {
        *status = (facelink_status)st;
        fetch_capi_error(fn);
        /* keep the result: a failing call may still carry outputs (decode_file's report) */
    } else {
        *status = FACELINK_OK;
        t_error[0] = '\0';
    }
done:
    Py_XDECREF(func);
    Py_XDECREF(args);
    Py_XDECREF(kwargs);
    return result;
}

static PyObject *item(PyObject *tuple, Py_ssize_t i) {
    return PyTuple_Check(tuple) && PyTuple_GET_SIZE(tuple) > i ? PyTuple_GET_ITEM(tuple, i) : Py_None;
}

/* list[bytes] -> facelink_packets */
static facelink_status to_packets(const char *fn, PyObject *list, facelink_packets *out) {
    if (!PyList_Check(list)) return fail(FACELINK_E_INTERNAL, "%s: internal error (packets are not a list)", fn);
    Py_ssize_t n = PyList_GET_SIZE(list);
    size_t total = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *p = PyList_GET_ITEM(list, i);
        if (!PyBytes_Check(p)) return fail(FACELINK_E_INTERNAL, "%s: internal error (a packet is not bytes)", fn);
        total += (size_t)PyBytes_GET_SIZE(p);
    }
    size_t *offsets = malloc(((size_t)n + 1) * sizeof *offsets);
    uint8_t *data = total ? malloc(total) : NULL;
    if (!offsets || (total && !data)) {
        free(offsets);
        free(data);
        return fail(FACELINK_E_NO_MEMORY, "%s: out of memory (%zu bytes of packets)", fn, total);
    }
    size_t at = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *p = PyList_GET_ITEM(list, i);
        size_t len = (size_t)PyBytes_GET_SIZE(p);
        offsets[i] = at;
        if (len) memcpy(data + at, PyBytes_AS_STRING(p), len);
        at += len;
    }
    offsets[n] = at;
    out->count = (size_t)n;
    out->data = data;
    out->offsets = offsets;
    return FACELINK_OK;
}

/* bytes or str -> facelink_buffer (NUL-terminated, the NUL not counted) */
static facelink_status to_buffer(const char *fn, PyObject *obj, facelink_buffer *out) {
    const char *src;
    Py_ssize_t len;
    if (PyBytes_Check(obj)) {
        src = PyBytes_AS_STRING(obj);
        len = PyBytes_GET_SIZE(obj);
    } else if (PyUnicode_Check(obj)) {
        src = PyUnicode_AsUTF8AndSize(obj, &len);
        if (!src) {
            PyErr_Clear();
            return fail(FACELINK_E_INTERNAL, "%s: internal error (text is not encodable as UTF-8)", fn);
        }
    } else {
        return fail(FACELINK_E_INTERNAL, "%s: internal error (expected bytes or text)", fn);
    }
    uint8_t *data = malloc((size_t)len + 1);
    if (!data) return fail(FACELINK_E_NO_MEMORY, "%s: out of memory (%zd bytes)", fn, len);
    memcpy(data, src, (size_t)len);
    data[len] = 0;
    out->data = data;
    out->size = (size_t)len;
    return FACELINK_OK;
}

static int64_t attr_i64(PyObject *obj, const char *name) {
    PyObject *v = PyObject_GetAttrString(obj, name);
    long long x = v ? PyLong_AsLongLong(v) : 0;
    Py_XDECREF(v);
    return (int64_t)x;
}

static double attr_f64(PyObject *obj, const char *name) {
    PyObject *v = PyObject_GetAttrString(obj, name);
    double x = v ? PyFloat_AsDouble(v) : 0.0;
    Py_XDECREF(v);
    return x;
}

#define ENTER(fn)                                 \
    do {                                          \
        facelink_status st_ = runtime(fn);        \
        if (st_ != FACELINK_OK) return st_;       \
    } while (0)

/* a lent view Python kept: report it (it is a bug in facelink.capi) */
static facelink_status leaked_view(const char *fn) {
    return fail(FACELINK_E_INTERNAL, "%s: internal error (Python kept a reference to caller memory)", fn);
}

/* ------------------------------------------------------------------ library */

uint32_t facelink_abi_version(void) { return FACELINK_ABI_VERSION; }

facelink_status facelink_init(void) {
    ENTER("facelink_init");
    return succeed();
}

const char *facelink_version(void) {
    pthread_once(&g_once, runtime_start);
    return g_init_status == FACELINK_OK ? g_version : NULL;
}

const char *facelink_last_error(void) { return t_error; }

const char *facelink_status_name(facelink_status status) {
    switch (status) {
    case FACELINK_OK: return "FACELINK_OK";
    case FACELINK_E_INVALID_ARGUMENT: return "FACELINK_E_INVALID_ARGUMENT";
    case FACELINK_E_BAD_HANDLE: return "FACELINK_E_BAD_HANDLE";
    case FACELINK_E_STATE: return "FACELINK_E_STATE";
    case FACELINK_E_INVALID_PACKET: return "FACELINK_E_INVALID_PACKET";
    case FACELINK_E_NO_FACE: return "FACELINK_E_NO_FACE";
    case FACELINK_E_INPUT: return "FACELINK_E_INPUT";
    case FACELINK_E_IO: return "FACELINK_E_IO";
    case FACELINK_E_VERIFICATION: return "FACELINK_E_VERIFICATION";
    case FACELINK_E_BACKEND: return "FACELINK_E_BACKEND";
    case FACELINK_E_MODEL_FETCH: return "FACELINK_E_MODEL_FETCH";
    case FACELINK_E_UNSUPPORTED: return "FACELINK_E_UNSUPPORTED";
    case FACELINK_E_RUNTIME: return "FACELINK_E_RUNTIME";
    case FACELINK_E_NO_MEMORY: return "FACELINK_E_NO_MEMORY";
    case FACELINK_E_PYTHON: return "FACELINK_E_PYTHON";
    case FACELINK_E_INTERNAL: return "FACELINK_E_INTERNAL";
    case FACELINK_E_UNTRUSTED: return "FACELINK_E_UNTRUSTED";
    case FACELINK_E_INCOMPLETE: return "FACELINK_E_INCOMPLETE";
    }
    return "FACELINK_E_UNKNOWN";
}

int32_t facelink_bytes_per_pixel(int32_t format) {
    switch (format) {
    case FACELINK_PIXEL_RGB24:
    case FACELINK_PIXEL_BGR24: return 3;
    case FACELINK_PIXEL_RGBA32:
    case FACELINK_PIXEL_BGRA32: return 4;
    case FACELINK_PIXEL_GRAY8: return 1;
    default: return 0;
    }
}

void facelink_buffer_free(facelink_buffer *buffer) {
    if (!buffer) return;
    free(buffer->data);
    buffer->data = NULL;
    buffer->size = 0;
}

void facelink_packets_free(facelink_packets *packets) {
    if (!packets) return;
    free(packets->data);
    free(packets->offsets);
    packets->data = NULL;
    packets->offsets = NULL;
    packets->count = 0;
}

facelink_status facelink_image_load(const char *path, int32_t format, facelink_buffer *pixels, facelink_image *image) {
    static const char fn[] = "facelink_image_load";
    if (image) memset(image, 0, sizeof *image);
    if (!pixels) return fail(FACELINK_E_INVALID_ARGUMENT, "%s: pixels (output) is NULL", fn);
    memset(pixels, 0, sizeof *pixels);
    ENTER(fn);
    facelink_status st;
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject *res = call(fn, "image_load", Py_BuildValue("(yi)", path, (int)format), NULL, &st);
    if (res && st == FACELINK_OK) {
        st = to_buffer(fn, item(res, 1), pixels);
        if (st == FACELINK_OK && image) {
            image->data = pixels->data;
            image->size = pixels->size;
            image->width = (int32_t)PyLong_AsLong(item(res, 2));
            image->height = (int32_t)PyLong_AsLong(item(res, 3));
            image->stride = (int32_t)PyLong_AsLong(item(res, 4));
            image->format = format;
        }
    }
    Py_XDECREF(res);
    PyGILState_Release(gil);
    return st;
}

/* ------------------------------------------------------------------ sender */

void facelink_sender_config_init(facelink_sender_config *config) {
    if (!config) return;
    memset(config, 0, sizeof *config);
    config->fps_num = 30;
    config->fps_den = 1;
    config->created_us = -1;
}

void facelink_sender_security_init(facelink_sender_security *security) {
    if (!security) return;
    memset(security, 0, sizeof *security);
    security->struct_size = (uint32_t)sizeof *security;
}

/* a struct_size too small for this ABI's fields: the caller skipped *_init */
static facelink_status small_struct(const char *fn, const char *what, const char *init, uint32_t got, size_t want) {
    return fail(FACELINK_E_INVALID_ARGUMENT, "%s: %s->struct_size is %u, expected at least %zu; initialise it with %s",
                fn, what, (unsigned)got, want, init);
}

static facelink_status sender_create(const char *fn, const facelink_sender_config *config,
                                     const facelink_image *reference, const facelink_sender_security *security,
                                     facelink_sender **sender) {
    if (!sender) return fail(FACELINK_E_INVALID_ARGUMENT, "%s: sender (output) is NULL", fn);
    *sender = NULL;
    if (!config) return fail(FACELINK_E_INVALID_ARGUMENT, "%s: config is NULL", fn);
    if (!reference) return fail(FACELINK_E_INVALID_ARGUMENT, "%s: reference is NULL", fn);
    facelink_sender_security unsigned_stream;
    if (!security) {
        facelink_sender_security_init(&unsigned_stream);
        security = &unsigned_stream;
    }
    if (security->struct_size < sizeof *security)
        return small_struct(fn, "security", "facelink_sender_security_init", security->struct_size, sizeof *security);
    ENTER(fn);
    facelink_status st;
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject *view = NULL, *sid = NULL;
    PyObject *args = image_args(reference, &view);
    sid = lend(config->session_id, FACELINK_SESSION_ID_SIZE);
    PyObject *kwargs = args && sid
        ? Py_BuildValue("{s:i,s:i,s:i,s:i,s:y,s:d,s:i,s:y,s:O,s:L,s:y,s:d}", "width", (int)config->width, "height",
                        (int)config->height, "fps_num", (int)config->fps_num, "fps_den", (int)config->fps_den,
                        "quality", config->quality, "kbps", config->kbps, "key_interval", (int)config->key_interval,
                        "backend", config->backend, "session_id", sid, "created_us", (long long)config->created_us,
                        "key", security->key, "seal_interval", security->seal_interval)
        : NULL;
    PyObject *res = call(fn, "sender_create", args, kwargs, &st);
    if (res && st == FACELINK_OK) {
        unsigned long long h = PyLong_AsUnsignedLongLong(item(res, 1));
        *sender = (facelink_sender *)(uintptr_t)h;
    }
    Py_XDECREF(res);
    int clean = unlend(view) & unlend(sid);
    if (!clean) st = leaked_view(fn);
    PyGILState_Release(gil);
    return st;
}

facelink_status facelink_sender_create(const facelink_sender_config *config, const facelink_image *reference,
                                       facelink_sender **sender) {
    return sender_create("facelink_sender_create", config, reference, NULL, sender);
}

facelink_status facelink_sender_create_ex(const facelink_sender_config *config, const facelink_image *reference,
                                          const facelink_sender_security *security, facelink_sender **sender) {
    return sender_create("facelink_sender_create_ex", config, reference, security, sender);
}

/* shared by start/end: facelink.capi.<pyname>(handle) -> (status, packets) */
static facelink_status sender_packets(const char *fn, const char *pyname, facelink_sender *sender,
                                      facelink_packets *packets) {
    if (!packets) return fail(FACELINK_E_INVALID_ARGUMENT, "%s: packets (output) is NULL", fn);
    memset(packets, 0, sizeof *packets);
    ENTER(fn);
    facelink_status st;
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject *res = call(fn, pyname, Py_BuildValue("(N)", handle_obj(sender)), NULL, &st);
    if (res && st == FACELINK_OK) st = to_packets(fn, item(res, 1), packets);
    Py_XDECREF(res);
    PyGILState_Release(gil);
    return st;
}

facelink_status facelink_sender_start(facelink_sender *sender, facelink_packets *packets) {
    return sender_packets("facelink_sender_start", "sender_start", sender, packets);
}

facelink_status facelink_sender_end(facelink_sender *sender, facelink_packets *packets) {
    return sender_packets("facelink_sender_end", "sender_end", sender, packets);
}

facelink_status facelink_sender_seal(facelink_sender *sender, facelink_packets *packets) {
    return sender_packets("facelink_sender_seal", "sender_seal", sender, packets);
}

facelink_status facelink_sender_push(facelink_sender *sender, const facelink_image *frame, int64_t index, double time_s,
                                     facelink_packets *packets, int32_t *kind) {
    static const char fn[] = "facelink_sender_push";
    if (kind) *kind = 0;
    if (!packets) return fail(FACELINK_E_INVALID_ARGUMENT, "%s: packets (output) is NULL", fn);
    memset(packets, 0, sizeof *packets);
    if (!frame) return fail(FACELINK_E_INVALID_ARGUMENT, "%s: frame is NULL", fn);
    ENTER(fn);
    facelink_status st;
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject *view = lend(frame->data, frame->size);
    PyObject *args = view ? Py_BuildValue("(NOiiiiLd)", handle_obj(sender), view, (int)frame->width,
                                          (int)frame->height, (int)frame->stride, (int)frame->format,
                                          (long long)index, time_s)
                          : NULL;
    PyObject *res = call(fn, "sender_push", args, NULL, &st);
    if (res && st == FACELINK_OK) {
        st = to_packets(fn, item(res, 1), packets);
        if (st == FACELINK_OK && kind) *kind = (int32_t)PyLong_AsLong(item(res, 2));
    }
    Py_XDECREF(res);
    if (!unlend(view)) {
        facelink_packets_free(packets);
        st = leaked_view(fn);
    }
    PyGILState_Release(gil);
    return st;
}

facelink_status facelink_sender_stats_get(facelink_sender *sender, facelink_sender_stats *stats) {
    static const char fn[] = "facelink_sender_stats_get";
    if (!stats) return fail(FACELINK_E_INVALID_ARGUMENT, "%s: stats (output) is NULL", fn);
    memset(stats, 0, sizeof *stats);
    ENTER(fn);
    facelink_status st;
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject *res = call(fn, "sender_stats", Py_BuildValue("(N)", handle_obj(sender)), NULL, &st);
    if (res && st == FACELINK_OK) {
        PyObject *s = item(res, 1);
        stats->frames = attr_i64(s, "frames");
        stats->face_frames = attr_i64(s, "face_frames");
        stats->key_frames = attr_i64(s, "key_frames");
        stats->bytes = attr_i64(s, "bytes");
        stats->reference_bytes = attr_i64(s, "reference_bytes");
        if (PyErr_Occurred()) {
            PyErr_Clear();
            memset(stats, 0, sizeof *stats);
            st = fail(FACELINK_E_INTERNAL, "%s: internal error (malformed statistics)", fn);
        }
    }
    Py_XDECREF(res);
    PyGILState_Release(gil);
    return st;
}

facelink_status facelink_sender_destroy(facelink_sender *sender) {
    static const char fn[] = "facelink_sender_destroy";
    if (!sender) return succeed();
    ENTER(fn);
    facelink_status st;
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject *res = call(fn, "sender_destroy", Py_BuildValue("(N)", handle_obj(sender)), NULL, &st);
    Py_XDECREF(res);
    PyGILState_Release(gil);
    return st;
}

/* ------------------------------------------------------------------ receiver */

void facelink_receiver_config_init(facelink_receiver_config *config) {
    if (!config) return;
    memset(config, 0, sizeof *config);
    config->format = FACELINK_PIXEL_RGB24;
}

void facelink_receiver_security_init(facelink_receiver_security *security) {
    if (!security) return;
    memset(security, 0, sizeof *security);
    security->struct_size = (uint32_t)sizeof *security;
}

/* `security` NULL: a receiver that does not verify (facelink_receiver_create) */
static facelink_status receiver_create(const char *fn, const facelink_receiver_config *config,
                                       const facelink_receiver_security *security, facelink_receiver **receiver) {
    if (!receiver) return fail(FACELINK_E_INVALID_ARGUMENT, "%s: receiver (output) is NULL", fn);
    *receiver = NULL;
    facelink_receiver_config defaults;
    if (!config) {
        facelink_receiver_config_init(&defaults);
        config = &defaults;
    }
    if (config->target && !config->target->data) return fail(FACELINK_E_INVALID_ARGUMENT, "%s: target data is NULL", fn);
    if (security && security->struct_size < sizeof *security)
        return small_struct(fn, "security", "facelink_receiver_security_init", security->struct_size, sizeof *security);
    ENTER(fn);
    facelink_status st;
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject *view = NULL;
    PyObject *kwargs;
    if (config->target) {
        const facelink_image *t = config->target;
        view = lend(t->data, t->size);
        kwargs = view ? Py_BuildValue("{s:d,s:d,s:d,s:y,s:O,s:i,s:i,s:i,s:i}", "yaw", config->yaw, "pitch",
                                      config->pitch, "roll", config->roll, "backend", config->backend, "target", view,
                                      "target_width", (int)t->width, "target_height", (int)t->height,
                                      "target_stride", (int)t->stride, "target_format", (int)t->format)
                      : NULL;
    } else {
        kwargs = Py_BuildValue("{s:d,s:d,s:d,s:y}", "yaw", config->yaw, "pitch", config->pitch, "roll", config->roll,
                               "backend", config->backend);
    }
    if (kwargs && security) {
        PyObject *extra = Py_BuildValue("{s:O,s:y,s:i,s:d}", "verify", Py_True, "trust_dir", security->trust_dir,
                                        "insecure", (int)security->insecure, "max_age", security->max_age);
        if (!extra || PyDict_Update(kwargs, extra) < 0) Py_CLEAR(kwargs);
        Py_XDECREF(extra);
    }
    PyObject *args = kwargs ? Py_BuildValue("(i)", (int)config->format) : NULL;
    PyObject *res = call(fn, "receiver_create", args, kwargs, &st);
    if (res && st == FACELINK_OK) {
        unsigned long long h = PyLong_AsUnsignedLongLong(item(res, 1));
        *receiver = (facelink_receiver *)(uintptr_t)h;
    }
    Py_XDECREF(res);
    if (!unlend(view)) st = leaked_view(fn);
    PyGILState_Release(gil);
    return st;
}

facelink_status facelink_receiver_create(const facelink_receiver_config *config, facelink_receiver **receiver) {
    return receiver_create("facelink_receiver_create", config, NULL, receiver);
}

facelink_status facelink_receiver_create_ex(const facelink_receiver_config *config,
                                            const facelink_receiver_security *security, facelink_receiver **receiver) {
    facelink_receiver_security defaults;
    if (!security) {
        facelink_receiver_security_init(&defaults);
        security = &defaults;
    }
    return receiver_create("facelink_receiver_create_ex", config, security, receiver);
}

facelink_status facelink_receiver_verification(facelink_receiver *receiver, facelink_buffer *report) {
    static const char fn[] = "facelink_receiver_verification";
    if (!report) return fail(FACELINK_E_INVALID_ARGUMENT, "%s: report (output) is NULL", fn);
    memset(report, 0, sizeof *report);
    ENTER(fn);
    facelink_status st;
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject *res = call(fn, "receiver_verification", Py_BuildValue("(N)", handle_obj(receiver)), NULL, &st);
    if (res && st == FACELINK_OK) st = to_buffer(fn, item(res, 1), report);
    Py_XDECREF(res);
    PyGILState_Release(gil);
    return st;
}

facelink_status facelink_receiver_set_eye_contact(facelink_receiver *receiver, int32_t on) {
    static const char fn[] = "facelink_receiver_set_eye_contact";
    ENTER(fn);
    facelink_status st;
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject *res = call(fn, "receiver_set_eye_contact", Py_BuildValue("(Ni)", handle_obj(receiver), (int)on), NULL, &st);
    Py_XDECREF(res);
    PyGILState_Release(gil);
    return st;
}

facelink_status facelink_receiver_push(facelink_receiver *receiver, const uint8_t *packet, size_t size,
                                       facelink_frame *frame, int32_t *has_frame) {
    static const char fn[] = "facelink_receiver_push";
    if (has_frame) *has_frame = 0;
    if (frame) memset(frame, 0, sizeof *frame);
    if (!frame) return fail(FACELINK_E_INVALID_ARGUMENT, "%s: frame (output) is NULL", fn);
    if (!has_frame) return fail(FACELINK_E_INVALID_ARGUMENT, "%s: has_frame (output) is NULL", fn);
    ENTER(fn);
    facelink_status st;
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject *view = lend(packet, size);
    PyObject *args = view ? Py_BuildValue("(NO)", handle_obj(receiver), view) : NULL;
    PyObject *res = call(fn, "receiver_push", args, NULL, &st);
    if (res && st == FACELINK_OK) {
        PyObject *f = item(res, 1);
        if (f != Py_None) {
            PyObject *data = PyObject_GetAttrString(f, "data");
            if (data && PyBytes_Check(data)) {
                /* the receiver handle keeps `data` alive until its next call: lent to the caller */
                frame->index = attr_i64(f, "index");
                frame->time = attr_f64(f, "time");
                frame->kind = (int32_t)attr_i64(f, "kind");
                frame->held = (int32_t)attr_i64(f, "held");
                frame->image.data = (const uint8_t *)PyBytes_AS_STRING(data);
                frame->image.size = (size_t)PyBytes_GET_SIZE(data);
                frame->image.width = (int32_t)attr_i64(f, "width");
                frame->image.height = (int32_t)attr_i64(f, "height");
                frame->image.stride = (int32_t)attr_i64(f, "stride");
                frame->image.format = (int32_t)attr_i64(f, "format");
                *has_frame = 1;
            }
            if (!data || !PyBytes_Check(data) || PyErr_Occurred()) {
                PyErr_Clear();
                memset(frame, 0, sizeof *frame);
                *has_frame = 0;
                st = fail(FACELINK_E_INTERNAL, "%s: internal error (malformed frame)", fn);
            }
            Py_XDECREF(data);
        }
    }
    Py_XDECREF(res);
    if (!unlend(view)) st = leaked_view(fn);
    PyGILState_Release(gil);
    return st;
}

facelink_status facelink_receiver_destroy(facelink_receiver *receiver) {
    static const char fn[] = "facelink_receiver_destroy";
    if (!receiver) return succeed();
    ENTER(fn);
    facelink_status st;
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject *res = call(fn, "receiver_destroy", Py_BuildValue("(N)", handle_obj(receiver)), NULL, &st);
    Py_XDECREF(res);
    PyGILState_Release(gil);
    return st;
}

/* ------------------------------------------------------------------ files */

void facelink_encode_signing_init(facelink_encode_signing *signing) {
    if (!signing) return;
    memset(signing, 0, sizeof *signing);
    signing->struct_size = (uint32_t)sizeof *signing;
    signing->created_us = -1;
}

/* shared by encode_file/encode_file_ex: facelink.capi.encode_file(input, output, **options, **signing) */
static facelink_status encode_file(const char *fn, const char *input, const char *output,
                                   const facelink_encode_options *options, const facelink_encode_signing *signing,
                                   facelink_buffer *report) {
    if (report) memset(report, 0, sizeof *report);
    facelink_encode_options defaults = {0};
    if (!options) options = &defaults;
    facelink_encode_signing local;
    if (!signing) {
        facelink_encode_signing_init(&local);
        signing = &local;
    }
    if (signing->struct_size < sizeof *signing)
        return small_struct(fn, "signing", "facelink_encode_signing_init", signing->struct_size, sizeof *signing);
    ENTER(fn);
    facelink_status st;
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject *sid = lend(signing->session_id, FACELINK_SESSION_ID_SIZE);
    PyObject *kwargs = sid ? Py_BuildValue("{s:y,s:d,s:i,s:y,s:y,s:y,s:O,s:L}", "quality", options->quality, "kbps",
                                           options->kbps, "key_interval", (int)options->key_interval, "reference_path",
                                           options->reference_path, "backend", options->backend, "key", signing->key,
                                           "session_id", sid, "created_us", (long long)signing->created_us)
                           : NULL;
    PyObject *args = kwargs ? Py_BuildValue("(yy)", input, output) : NULL;
    PyObject *res = call(fn, "encode_file", args, kwargs, &st);
    if (res && st == FACELINK_OK && report) st = to_buffer(fn, item(res, 1), report);
    Py_XDECREF(res);
    if (!unlend(sid)) st = leaked_view(fn);
    PyGILState_Release(gil);
    return st;
}

facelink_status facelink_encode_file(const char *input, const char *output, const facelink_encode_options *options,
                                     facelink_buffer *report) {
    return encode_file("facelink_encode_file", input, output, options, NULL, report);
}

facelink_status facelink_encode_file_ex(const char *input, const char *output, const facelink_encode_options *options,
                                        const facelink_encode_signing *signing, facelink_buffer *report) {
    return encode_file("facelink_encode_file_ex", input, output, options, signing, report);
}

facelink_status facelink_decode_file(const char *input, const char *output, const facelink_decode_options *options,
                                     facelink_buffer *report) {
    static const char fn[] = "facelink_decode_file";
    if (report) memset(report, 0, sizeof *report);
    facelink_decode_options defaults = {0};
    if (!options) options = &defaults;
    ENTER(fn);
    facelink_status st;
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject *kwargs = Py_BuildValue("{s:y,s:d,s:d,s:d,s:y,s:y,s:i}", "reference_path", options->reference_path,
                                     "yaw", options->yaw, "pitch", options->pitch, "roll", options->roll, "backend",
                                     options->backend, "trust_dir", options->trust_dir, "insecure",
                                     (int)options->insecure);
    PyObject *args = kwargs ? Py_BuildValue("(yy)", input, output) : NULL;
    PyObject *res = call(fn, "decode_file", args, kwargs, &st);
    /* a damaged or unfinished stream still yields a report (FACELINK_E_INVALID_PACKET / _INCOMPLETE) */
    if (res && report && (st == FACELINK_OK || st == FACELINK_E_INVALID_PACKET || st == FACELINK_E_INCOMPLETE) &&
        item(res, 1) != Py_None) {
        char saved[ERROR_MAX];
        copy_utf8(saved, sizeof saved, t_error);
        facelink_status bst = to_buffer(fn, item(res, 1), report);
        if (bst != FACELINK_OK) st = bst;
        else copy_utf8(t_error, sizeof t_error, saved);
    }
    Py_XDECREF(res);
    PyGILState_Release(gil);
    return st;
}

/* ------------------------------------------------------------------ keys and verification */

/* shared by keys_generate/keys_trust: facelink.capi.<pyname>(a, b) -> (status, fingerprint, report) */
static facelink_status keys_call(const char *fn, const char *pyname, const char *a, const char *b,
                                 char fingerprint[FACELINK_FINGERPRINT_SIZE], facelink_buffer *report) {
    if (fingerprint) memset(fingerprint, 0, FACELINK_FINGERPRINT_SIZE);
    if (report) memset(report, 0, sizeof *report);
    ENTER(fn);
    facelink_status st;
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject *res = call(fn, pyname, Py_BuildValue("(yy)", a, b), NULL, &st);
    if (res && st == FACELINK_OK) {
        if (fingerprint) {
            const char *fp = PyUnicode_Check(item(res, 1)) ? PyUnicode_AsUTF8(item(res, 1)) : NULL;
            if (fp) {
                copy_utf8(fingerprint, FACELINK_FINGERPRINT_SIZE, fp);
            } else {
                PyErr_Clear();
                st = fail(FACELINK_E_INTERNAL, "%s: internal error (no fingerprint)", fn);
            }
        }
        if (st == FACELINK_OK && report) st = to_buffer(fn, item(res, 2), report);
    }
    Py_XDECREF(res);
    PyGILState_Release(gil);
    return st;
}

facelink_status facelink_keys_generate(const char *name, const char *directory,
                                       char fingerprint[FACELINK_FINGERPRINT_SIZE], facelink_buffer *report) {
    return keys_call("facelink_keys_generate", "keys_generate", name, directory, fingerprint, report);
}

facelink_status facelink_keys_trust(const char *pub, const char *directory, char fingerprint[FACELINK_FINGERPRINT_SIZE],
                                    facelink_buffer *report) {
    return keys_call("facelink_keys_trust", "keys_trust", pub, directory, fingerprint, report);
}

facelink_status facelink_verify_file(const char *video, const char *trust_dir, facelink_buffer *report) {
    static const char fn[] = "facelink_verify_file";
    if (!report) return fail(FACELINK_E_INVALID_ARGUMENT, "%s: report (output) is NULL", fn);
    memset(report, 0, sizeof *report);
    ENTER(fn);
    facelink_status st;
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject *res = call(fn, "verify_file", Py_BuildValue("(yy)", video, trust_dir), NULL, &st);
    if (res && st == FACELINK_OK) st = to_buffer(fn, item(res, 1), report);
    Py_XDECREF(res);
    PyGILState_Release(gil);
    return st;
}
