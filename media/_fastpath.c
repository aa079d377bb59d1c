/*
 * Salon's native fan-out: RTP header + srtp_protect + sendmmsg for a whole tick in one call.
 *
 * Python hands over one list of entries per tick (media/batch.py builds it); for each entry
 * this module writes the RTP packet (RFC 3550 fixed header, the listener's RFC 8285
 * extension block with the tick's RFC 6464 level byte, the payload) into a preallocated
 * arena, protects it in place with libsrtp's srtp_protect, and sends runs of consecutive
 * entries that share a socket with sendmmsg(2) (at most UIO_MAXIOV = 1024 messages a call).
 * Entries that could not be sent come back to Python: EAGAIN (socket buffer full) with
 * their protected bytes, so Python can queue them on the asyncio transport, and every other
 * error with its errno (or the libsrtp status), so Python can count it.
 *
 * libsrtp is NOT linked: pylibsrtp bundles it inside its cffi module, and Python gives us
 * the address of that copy's srtp_protect (set_protect) and each session's srtp_t pointer
 * (an int in the entry). One copy of libsrtp, one state per session, shared with aiortc's
 * own RTCP path on the same (single) event-loop thread. The GIL is held throughout, so
 * nothing else can use a session while we do.
 *
 * entry  = (target, sequence, marker_pt, payload)
 * target = (socket_or_fd, sockaddr, srtp_ctx, first_byte, ssrc, ext_head, has_level,
 *           ext_tail, ...)   further items are Python's own and ignored here
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

#define MAX_BATCH 1024              /* UIO_MAXIOV on Linux: sendmmsg's vlen cap */
#define SRTP_MAX_TRAILER_LEN 144    /* pylibsrtp: SRTP_MAX_TAG_LEN 16 + SRTP_MAX_MKI_LEN 128 */
#define MAX_PACKET (1500 - SRTP_MAX_TRAILER_LEN)  /* pylibsrtp Session buffer, as SrtpWriter */
#define ERR_TOO_LONG (-1000)
#define ERR_BAD_FD (-1001)

typedef int (*srtp_protect_fn)(void *ctx, void *rtp_hdr, int *len_ptr);

static srtp_protect_fn protect_fn = NULL;
static unsigned char *arena = NULL; /* MAX_BATCH slots of (MAX_PACKET + trailer), aligned */
static int busy = 0;

#define SLOT 1536 /* >= MAX_PACKET + SRTP_MAX_TRAILER_LEN, a multiple of 64 */

static struct mmsghdr msgs[MAX_BATCH];
static struct iovec iovs[MAX_BATCH];
static Py_ssize_t msg_index[MAX_BATCH]; /* entry index of each message */

static PyObject *
set_protect(PyObject *self, PyObject *arg)
{
    void *ptr = PyLong_AsVoidPtr(arg);
    if (ptr == NULL) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "srtp_protect address is NULL");
        return NULL;
    }
    protect_fn = (srtp_protect_fn)ptr;
    Py_RETURN_NONE;
}

/* append (index, code, data-or-None) to the failures list */
static int
report(PyObject *failures, Py_ssize_t index, long code, const unsigned char *data, Py_ssize_t len)
{
    PyObject *item;
    if (data != NULL)
        item = Py_BuildValue("(nly#)", index, code, (const char *)data, len);
    else
        item = Py_BuildValue("(nlO)", index, code, Py_None);
    if (item == NULL)
        return -1;
    int rc = PyList_Append(failures, item);
    Py_DECREF(item);
    return rc;
}

static int
socket_fd(PyObject *sock)
{
    if (PyLong_CheckExact(sock))
        return (int)PyLong_AsLong(sock);
    int fd = PyObject_AsFileDescriptor(sock); /* socket.fileno(): -1 once closed */
    if (fd < 0)
        PyErr_Clear();
    return fd;
}

/* send messages [0, n) on fd; unsent ones go to failures. -1 on a Python error. */
static int
flush(int fd, int n, PyObject *failures)
{
    int done = 0;
    if (fd < 0) {
        for (int i = 0; i < n; i++)
            if (report(failures, msg_index[i], ERR_BAD_FD, NULL, 0) < 0)
                return -1;
        return 0;
    }
    while (done < n) {
        int sent = sendmmsg(fd, msgs + done, (unsigned int)(n - done), 0);
        if (sent > 0) {
            done += sent;
            continue;
        }
        int err = sent == 0 ? EIO : errno;
        if (err == EINTR)
            continue;
        if (err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS) {
            for (int i = done; i < n; i++) {
                if (report(failures, msg_index[i], err, iovs[i].iov_base,
                           (Py_ssize_t)iovs[i].iov_len) < 0)
                    return -1;
            }
            return 0;
        }
        /* this message failed (e.g. ENETUNREACH, EMSGSIZE): report it, go on after it */
        if (report(failures, msg_index[done], err, NULL, 0) < 0)
            return -1;
        done += 1;
    }
    return 0;
}

static int
bad_entry(Py_ssize_t index, const char *what)
{
    PyErr_Format(PyExc_TypeError, "entry %zd: %s", index, what);
    return -1;
}

/* Build and protect entry INDEX into slot K; 0 ok, 1 reported (not sent), -1 Python error */
static int
build(PyObject *entry, Py_ssize_t index, int k, uint32_t timestamp, unsigned char level,
      int seq_offset, PyObject *failures, PyObject **sock_out)
{
    if (!PyTuple_CheckExact(entry) || PyTuple_GET_SIZE(entry) < 4)
        return bad_entry(index, "expected (target, sequence, marker_pt, payload)");
    PyObject *target = PyTuple_GET_ITEM(entry, 0);
    if (!PyTuple_Check(target) || PyTuple_GET_SIZE(target) < 8)
        return bad_entry(index, "target: expected a tuple of at least 8 items");
    PyObject *payload = PyTuple_GET_ITEM(entry, 3);
    PyObject *addr = PyTuple_GET_ITEM(target, 1);
    PyObject *head = PyTuple_GET_ITEM(target, 5);
    PyObject *tail = PyTuple_GET_ITEM(target, 7);
    if (!PyBytes_CheckExact(payload) || !PyBytes_CheckExact(addr) || !PyBytes_CheckExact(head)
        || !PyBytes_CheckExact(tail))
        return bad_entry(index, "payload, sockaddr and extension parts must be bytes");
    long seq = PyLong_AsLong(PyTuple_GET_ITEM(entry, 1));
    long marker_pt = PyLong_AsLong(PyTuple_GET_ITEM(entry, 2));
    void *ctx = PyLong_AsVoidPtr(PyTuple_GET_ITEM(target, 2));
    long first = PyLong_AsLong(PyTuple_GET_ITEM(target, 3));
    unsigned long ssrc = PyLong_AsUnsignedLong(PyTuple_GET_ITEM(target, 4));
    int has_level = PyObject_IsTrue(PyTuple_GET_ITEM(target, 6));
    if (PyErr_Occurred())
        return -1;
    if (ctx == NULL)
        return bad_entry(index, "srtp context is NULL");

    Py_ssize_t head_len = PyBytes_GET_SIZE(head), tail_len = PyBytes_GET_SIZE(tail);
    Py_ssize_t payload_len = PyBytes_GET_SIZE(payload);
    Py_ssize_t len = 12 + head_len + (has_level ? 1 : 0) + tail_len + payload_len;
    if (len > MAX_PACKET)
        return report(failures, index, ERR_TOO_LONG, NULL, 0) < 0 ? -1 : 1;

    unsigned char *p = arena + (size_t)k * SLOT;
    uint16_t s = (uint16_t)((seq + seq_offset) & 0xFFFF);
    p[0] = (unsigned char)first;
    p[1] = (unsigned char)marker_pt;
    p[2] = (unsigned char)(s >> 8);
    p[3] = (unsigned char)s;
    p[4] = (unsigned char)(timestamp >> 24);
    p[5] = (unsigned char)(timestamp >> 16);
    p[6] = (unsigned char)(timestamp >> 8);
    p[7] = (unsigned char)timestamp;
    p[8] = (unsigned char)(ssrc >> 24);
    p[9] = (unsigned char)(ssrc >> 16);
    p[10] = (unsigned char)(ssrc >> 8);
    p[11] = (unsigned char)ssrc;
    unsigned char *q = p + 12;
    memcpy(q, PyBytes_AS_STRING(head), (size_t)head_len);
    q += head_len;
    if (has_level)
        *q++ = level;
    memcpy(q, PyBytes_AS_STRING(tail), (size_t)tail_len);
    q += tail_len;
    memcpy(q, PyBytes_AS_STRING(payload), (size_t)payload_len);

    int out_len = (int)len;
    int status = protect_fn(ctx, p, &out_len);
    if (status != 0)
        return report(failures, index, -status, NULL, 0) < 0 ? -1 : 1;

    iovs[k].iov_base = p;
    iovs[k].iov_len = (size_t)out_len;
    struct msghdr *h = &msgs[k].msg_hdr;
    memset(h, 0, sizeof(*h));
    h->msg_name = PyBytes_AS_STRING(addr);
    h->msg_namelen = (socklen_t)PyBytes_GET_SIZE(addr);
    h->msg_iov = &iovs[k];
    h->msg_iovlen = 1;
    msg_index[k] = index;
    *sock_out = PyTuple_GET_ITEM(target, 0);
    return 0;
}

static PyObject *
send_batch(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"entries", "timestamp", "level", "seq_offset", NULL};
    PyObject *entries;
    unsigned long timestamp;
    const char *level_buf;
    Py_ssize_t level_len;
    int seq_offset = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!ky#|i", keywords, &PyList_Type, &entries,
                                     &timestamp, &level_buf, &level_len, &seq_offset))
        return NULL;
    if (protect_fn == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "set_protect() was not called");
        return NULL;
    }
    if (level_len != 1) {
        PyErr_SetString(PyExc_ValueError, "level must be one byte (RFC 6464)");
        return NULL;
    }
    if (busy) {
        PyErr_SetString(PyExc_RuntimeError, "send_batch is not re-entrant");
        return NULL;
    }
    PyObject *failures = PyList_New(0);
    if (failures == NULL)
        return NULL;
    busy = 1;
    Py_ssize_t n = PyList_GET_SIZE(entries);
    PyObject *group = NULL; /* the socket object of the messages in msgs[0, k) */
    int k = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *sock = NULL;
        int rc = build(PyList_GET_ITEM(entries, i), i, k, (uint32_t)timestamp,
                       (unsigned char)level_buf[0], seq_offset, failures, &sock);
        if (rc < 0)
            goto error;
        if (rc > 0)
            continue;
        if (k > 0 && sock != group) {
            /* a new socket: send what the previous one has, then move this packet to slot 0 */
            if (flush(socket_fd(group), k, failures) < 0)
                goto error;
            memcpy(arena, arena + (size_t)k * SLOT, iovs[k].iov_len);
            iovs[0] = iovs[k];
            iovs[0].iov_base = arena;
            msgs[0] = msgs[k];
            msgs[0].msg_hdr.msg_iov = &iovs[0];
            msg_index[0] = msg_index[k];
            k = 0;
        }
        group = sock;
        k += 1;
        if (k == MAX_BATCH) {
            if (flush(socket_fd(group), k, failures) < 0)
                goto error;
            k = 0;
        }
    }
    if (k > 0 && flush(socket_fd(group), k, failures) < 0)
        goto error;
    busy = 0;
    return failures;
error:
    busy = 0;
    Py_DECREF(failures);
    return NULL;
}

static PyObject *
pack_sockaddr(PyObject *self, PyObject *args)
{
    const char *host;
    int port;
    if (!PyArg_ParseTuple(args, "si", &host, &port))
        return NULL;
    if (port < 0 || port > 65535) {
        PyErr_SetString(PyExc_ValueError, "port must be 0-65535");
        return NULL;
    }
    char service[8];
    snprintf(service, sizeof(service), "%d", port);
    struct addrinfo hints, *found = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    int rc = getaddrinfo(host, service, &hints, &found);
    if (rc != 0 || found == NULL) {
        PyErr_Format(PyExc_ValueError, "not a numeric IP address: %s", host);
        return NULL;
    }
    PyObject *out = PyBytes_FromStringAndSize((const char *)found->ai_addr,
                                              (Py_ssize_t)found->ai_addrlen);
    freeaddrinfo(found);
    return out;
}

static PyMethodDef methods[] = {
    {"set_protect", set_protect, METH_O,
     "set_protect(address): libsrtp's srtp_protect (from pylibsrtp's cffi module)."},
    {"send_batch", (PyCFunction)(void (*)(void))send_batch, METH_VARARGS | METH_KEYWORDS,
     "send_batch(entries, timestamp, level, seq_offset=0) -> [(index, code, data|None)]\n"
     "Build, protect and send every entry; returns the entries that were not sent."},
    {"pack_sockaddr", pack_sockaddr, METH_VARARGS,
     "pack_sockaddr(host, port) -> bytes: the struct sockaddr for a numeric address."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "media._fastpath",
    "Batched RTP + SRTP + sendmmsg fan-out (see media/batch.py).", -1, methods,
};

PyMODINIT_FUNC
PyInit__fastpath(void)
{
    if (arena == NULL) {
        if (posix_memalign((void **)&arena, 64, (size_t)MAX_BATCH * SLOT) != 0)
            return PyErr_NoMemory();
    }
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddIntConstant(m, "MAX_BATCH", MAX_BATCH) < 0
        || PyModule_AddIntConstant(m, "MAX_PACKET", MAX_PACKET) < 0
        || PyModule_AddIntConstant(m, "ERR_TOO_LONG", ERR_TOO_LONG) < 0
        || PyModule_AddIntConstant(m, "ERR_BAD_FD", ERR_BAD_FD) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
