/*
 * scan_okx_book(frame): a strict reader for OKX order-book pushes that produces level spans
 * pointing into the frame, without creating Python objects per level. It accepts only the
 * plain layout OKX sends; for anything else (escapes, unknown keys, floats where integers
 * belong, other channels...) it returns None and the caller parses the frame with orjson,
 * which stays the authority on what is valid JSON. The result, a ScannedBook, has the
 * attributes of okx.BookMsg; its sides are LevelsViews, which the book (book.c) applies
 * straight from the spans.
 */
#include "levels.h"
#include <structmember.h>

static PyTypeObject ScannedType;

typedef struct {
    const char *s, *base;
    const char *end;
    Span *spans;
    Py_ssize_t n, cap;
} Scan;

static inline void ws(Scan *c) {
    while (c->s < c->end && (*c->s == ' ' || *c->s == '\n' || *c->s == '\r' || *c->s == '\t'))
        c->s++;
}

static inline int lit(Scan *c, char ch) {
    ws(c);
    if (c->s < c->end && *c->s == ch) {
        c->s++;
        return 1;
    }
    return 0;
}

/* a JSON string of printable ASCII without escapes; sets [*p, *p + *n) */
static int str(Scan *c, const char **p, Py_ssize_t *n) {
    ws(c);
    if (c->s >= c->end || *c->s != '"') return 0;
    const char *q = ++c->s;
    while (c->s < c->end && *c->s != '"') {
        unsigned char ch = (unsigned char)*c->s;
        if (ch == '\\' || ch < 0x20 || ch >= 0x7f) return 0;
        c->s++;
    }
    if (c->s >= c->end) return 0;
    *p = q;
    *n = c->s - q;
    c->s++;
    return 1;
}

static inline int key_is(const char *p, Py_ssize_t n, const char *k) {
    return (Py_ssize_t)strlen(k) == n && memcmp(p, k, (size_t)n) == 0;
}

/* a JSON integer (no fraction, no exponent) */
static int integer(Scan *c, long long *out) {
    ws(c);
    const char *q = c->s;
    int neg = 0;
    long long v = 0;
    if (c->s < c->end && *c->s == '-') {
        neg = 1;
        c->s++;
    }
    const char *d = c->s;
    while (c->s < c->end && *c->s >= '0' && *c->s <= '9') {
        if (c->s - d >= 18) return 0;
        v = v * 10 + (*c->s - '0');
        c->s++;
    }
    if (c->s == d) return 0;
    if (*d == '0' && c->s - d > 1) return 0; /* leading zeros are not JSON */
    if (c->s < c->end && (*c->s == '.' || *c->s == 'e' || *c->s == 'E')) return 0;
    (void)q;
    *out = neg ? -v : v;
    return 1;
}

static int push_span(Scan *c, Span **out) {
    if (c->n == c->cap) {
        Py_ssize_t cap = c->cap ? c->cap * 2 : 64;
        Span *p = PyMem_Realloc(c->spans, (size_t)cap * sizeof(Span));
        if (!p) return 0;
        c->spans = p;
        c->cap = cap;
    }
    *out = &c->spans[c->n++];
    return 1;
}

/* [[px, sz, x, count], ...] ; returns number of levels or -1 */
static Py_ssize_t levels(Scan *c) {
    Py_ssize_t k = 0;
    if (!lit(c, '[')) return -1;
    if (lit(c, ']')) return 0;
    do {
        Span *sp;
        const char *p;
        Py_ssize_t n;
        int z;
        if (!lit(c, '[')) return -1;
        if (!push_span(c, &sp)) return -1;
        sp->nelem = 0;
        do {
            if (sp->nelem == 4 || !str(c, &p, &n) || n > 255) return -1;
            sp->off[sp->nelem] = (uint32_t)(p - c->base);
            sp->len[sp->nelem] = (uint8_t)n;
            sp->nelem++;
        } while (lit(c, ','));
        if (!lit(c, ']') || sp->nelem < 2) return -1;
        p = c->base + sp->off[0];
        if (parse_dec(p, sp->len[0], &sp->key, &z) < 0 || z) return -1;
        sp->px = p;
        sp->pxlen = sp->len[0];
        {
            Key kz;
            p = c->base + sp->off[1];
            if (parse_dec(p, sp->len[1], &kz, &z) < 0) return -1;
            sp->zero = (uint8_t)z;
            sp->sz = p;
            sp->szlen = sp->len[1];
        }
        sp->has_count = 0;
        sp->count = 0;
        if (sp->nelem >= 3) {
            p = c->base + sp->off[sp->nelem - 1];
            if (parse_count(p, sp->len[sp->nelem - 1], &sp->count) < 0) return -1;
            sp->has_count = 1;
        }
        k++;
    } while (lit(c, ','));
    if (!lit(c, ']')) return -1;
    return k;
}

static int is_book_channel(const char *p, Py_ssize_t n, int *full) {
    *full = 0;
    if (key_is(p, n, "books") || key_is(p, n, "books-l2-tbt") || key_is(p, n, "books50-l2-tbt"))
        return 1;
    if (key_is(p, n, "books5") || key_is(p, n, "bbo-tbt")) {
        *full = 1;
        return 1;
    }
    return 0;
}

static PyObject *opt_int(int have, long long v) {
    if (!have) Py_RETURN_NONE;
    return PyLong_FromLongLong(v);
}

/* scan_okx_book(frame: bytes | str) -> Scanned | None */
static PyObject *scan_okx_book(PyObject *mod, PyObject *frame) {
    const char *buf;
    Py_ssize_t len;
    if (PyBytes_Check(frame)) {
        buf = PyBytes_AS_STRING(frame);
        len = PyBytes_GET_SIZE(frame);
    } else if (PyUnicode_Check(frame)) {
        if (!(buf = PyUnicode_AsUTF8AndSize(frame, &len))) {
            PyErr_Clear();
            Py_RETURN_NONE;
        }
    } else {
        Py_RETURN_NONE;
    }
    if (len >= 0xFFFFFFFFLL) Py_RETURN_NONE;
    Scan c = {buf, buf, buf + len, NULL, 0, 0};
    const char *ch = NULL, *inst = NULL, *act = NULL, *dinst = NULL, *p;
    Py_ssize_t chn = 0, instn = 0, actn = 0, dinstn = 0, n;
    long long ts = 0, seq = 0, prev = 0, ck = 0;
    int have_ts = 0, have_seq = 0, have_prev = 0, have_ck = 0, have_data = 0, full = 0;
    Py_ssize_t nb = -1, na = -1, bstart = 0, astart = 0;

    if (!lit(&c, '{')) goto none;
    do {
        if (!str(&c, &p, &n) || !lit(&c, ':')) goto none;
        if (key_is(p, n, "arg") && !ch) {
            if (!lit(&c, '{')) goto none;
            do {
                const char *k, *v;
                Py_ssize_t kn, vn;
                if (!str(&c, &k, &kn) || !lit(&c, ':') || !str(&c, &v, &vn)) goto none;
                if (key_is(k, kn, "channel") && !ch) {
                    if (!is_book_channel(v, vn, &full)) goto none;
                    ch = v;
                    chn = vn;
                } else if (key_is(k, kn, "instId") && !inst) {
                    inst = v;
                    instn = vn;
                } else {
                    goto none;
                }
            } while (lit(&c, ','));
            if (!lit(&c, '}') || !ch) goto none;
        } else if (key_is(p, n, "action") && !act) {
            if (!str(&c, &act, &actn)) goto none;
        } else if (key_is(p, n, "data") && !have_data) {
            have_data = 1;
            if (!lit(&c, '[') || !lit(&c, '{')) goto none;
            do {
                if (!str(&c, &p, &n) || !lit(&c, ':')) goto none;
                if (key_is(p, n, "asks") && na < 0) {
                    astart = c.n;
                    if ((na = levels(&c)) < 0) goto none;
                } else if (key_is(p, n, "bids") && nb < 0) {
                    bstart = c.n;
                    if ((nb = levels(&c)) < 0) goto none;
                } else if (key_is(p, n, "ts") && !have_ts) {
                    const char *t;
                    Py_ssize_t tn;
                    if (!str(&c, &t, &tn) || parse_count(t, tn, (int64_t *)&ts) < 0) goto none;
                    have_ts = 1;
                } else if (key_is(p, n, "seqId") && !have_seq) {
                    if (!integer(&c, &seq)) goto none;
                    have_seq = 1;
                } else if (key_is(p, n, "prevSeqId") && !have_prev) {
                    if (!integer(&c, &prev)) goto none;
                    have_prev = 1;
                } else if (key_is(p, n, "checksum") && !have_ck) {
                    if (!integer(&c, &ck)) goto none;
                    have_ck = 1;
                } else if (key_is(p, n, "instId") && !dinst) {
                    if (!str(&c, &dinst, &dinstn)) goto none;
                } else {
                    goto none;
                }
            } while (lit(&c, ','));
            if (!lit(&c, '}') || !lit(&c, ']')) goto none;
        } else {
            goto none;
        }
    } while (lit(&c, ','));
    if (!lit(&c, '}')) goto none;
    ws(&c);
    if (c.s != c.end || !ch || !have_data || !have_ts) goto none;
    if (!inst) {
        inst = dinst;
        instn = dinstn;
    }
    if (!inst || instn == 0) goto none;
    if (full) {
        act = "snapshot";
        actn = 8;
    } else if (!act || !(key_is(act, actn, "snapshot") || key_is(act, actn, "update"))) {
        goto none;
    }
    if (nb < 0) nb = 0;
    if (na < 0) na = 0;

    ScannedObject *m = PyObject_New(ScannedObject, &ScannedType);
    if (!m) goto fail;
    m->frame = NULL;
    m->spans = NULL;
    m->channel = m->inst_id = m->action = m->seq_id = m->prev_seq_id = m->checksum = NULL;
    /* bids first, then asks, whatever their order in the frame */
    m->spans = PyMem_Malloc((size_t)(nb + na + 1) * sizeof(Span));
    if (!m->spans) {
        Py_DECREF(m);
        PyErr_NoMemory();
        goto fail;
    }
    if (nb) memcpy(m->spans, c.spans + bstart, (size_t)nb * sizeof(Span));
    if (na) memcpy(m->spans + nb, c.spans + astart, (size_t)na * sizeof(Span));
    PyMem_Free(c.spans);
    c.spans = NULL;
    m->nbids = nb;
    m->nasks = na;
    Py_INCREF(frame);
    m->frame = frame;
    m->base = buf;
    m->ts = ts;
    m->channel = PyUnicode_FromStringAndSize(ch, chn);
    m->inst_id = PyUnicode_FromStringAndSize(inst, instn);
    m->action = PyUnicode_FromStringAndSize(act, actn);
    m->seq_id = opt_int(have_seq, seq);
    m->prev_seq_id = opt_int(have_prev, prev);
    m->checksum = opt_int(have_ck, ck);
    if (!m->channel || !m->inst_id || !m->action || !m->seq_id || !m->prev_seq_id ||
        !m->checksum) {
        Py_DECREF(m);
        return NULL;
    }
    return (PyObject *)m;
none:
    PyMem_Free(c.spans);
    Py_RETURN_NONE;
fail:
    PyMem_Free(c.spans);
    return NULL;
}

/* ---- Scanned type ---- */

static void Scanned_dealloc(ScannedObject *m) {
    Py_XDECREF(m->frame);
    Py_XDECREF(m->channel);
    Py_XDECREF(m->inst_id);
    Py_XDECREF(m->action);
    Py_XDECREF(m->seq_id);
    Py_XDECREF(m->prev_seq_id);
    Py_XDECREF(m->checksum);
    PyMem_Free(m->spans);
    PyObject_Free(m);
}

static PyObject *make_view(ScannedObject *m, int ask) {
    ViewObject *v = PyObject_New(ViewObject, &ViewType);
    if (!v) return NULL;
    Py_INCREF(m);
    v->msg = m;
    v->ask = ask;
    return (PyObject *)v;
}

static PyObject *Scanned_bids(ScannedObject *m, void *c) { return make_view(m, 0); }
static PyObject *Scanned_asks(ScannedObject *m, void *c) { return make_view(m, 1); }
static PyObject *Scanned_is_snapshot(ScannedObject *m, void *c) {
    return PyBool_FromLong(PyUnicode_CompareWithASCIIString(m->action, "snapshot") == 0);
}
static PyObject *Scanned_is_empty(ScannedObject *m, void *c) {
    return PyBool_FromLong(m->nbids == 0 && m->nasks == 0);
}
static PyObject *Scanned_ts(ScannedObject *m, void *c) { return PyLong_FromLongLong(m->ts); }

static PyObject *Scanned_repr(ScannedObject *m) {
    return PyUnicode_FromFormat(
        "ScannedBook(channel=%R, inst_id=%R, action=%R, ts=%lld, seq_id=%R, prev_seq_id=%R, "
        "checksum=%R, bids=%zd levels, asks=%zd levels)",
        m->channel, m->inst_id, m->action, m->ts, m->seq_id, m->prev_seq_id, m->checksum,
        m->nbids, m->nasks);
}

static PyMemberDef Scanned_members[] = {
    {"channel", T_OBJECT, offsetof(ScannedObject, channel), READONLY, NULL},
    {"inst_id", T_OBJECT, offsetof(ScannedObject, inst_id), READONLY, NULL},
    {"action", T_OBJECT, offsetof(ScannedObject, action), READONLY, NULL},
    {"seq_id", T_OBJECT, offsetof(ScannedObject, seq_id), READONLY, NULL},
    {"prev_seq_id", T_OBJECT, offsetof(ScannedObject, prev_seq_id), READONLY, NULL},
    {"checksum", T_OBJECT, offsetof(ScannedObject, checksum), READONLY, NULL},
    {NULL}};

static PyGetSetDef Scanned_getset[] = {
    {"bids", (getter)Scanned_bids, NULL, "bid levels (a view; list(view) materialises)", NULL},
    {"asks", (getter)Scanned_asks, NULL, "ask levels (a view)", NULL},
    {"ts", (getter)Scanned_ts, NULL, "exchange time, ms", NULL},
    {"is_snapshot", (getter)Scanned_is_snapshot, NULL, NULL, NULL},
    {"is_empty", (getter)Scanned_is_empty, NULL, NULL, NULL},
    {NULL}};

static PyTypeObject ScannedType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "simlab._native.ScannedBook",
    .tp_basicsize = sizeof(ScannedObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "An OKX book push read by the C scanner; same attributes as okx.BookMsg",
    .tp_dealloc = (destructor)Scanned_dealloc,
    .tp_repr = (reprfunc)Scanned_repr,
    .tp_members = Scanned_members,
    .tp_getset = Scanned_getset,
};

/* ---- View type: a side's levels, materialised as lists of str on access ---- */

static void View_dealloc(ViewObject *v) {
    Py_DECREF(v->msg);
    PyObject_Free(v);
}

static Py_ssize_t View_len(ViewObject *v) { return v->ask ? v->msg->nasks : v->msg->nbids; }

static PyObject *View_item(ViewObject *v, Py_ssize_t i) {
    Py_ssize_t n = View_len(v);
    if (i < 0 || i >= n) {
        PyErr_SetString(PyExc_IndexError, "level index out of range");
        return NULL;
    }
    const Span *sp = &v->msg->spans[(v->ask ? v->msg->nbids : 0) + i];
    PyObject *lst = PyList_New(sp->nelem);
    if (!lst) return NULL;
    for (int j = 0; j < sp->nelem; j++) {
        PyObject *s = PyUnicode_FromStringAndSize(v->msg->base + sp->off[j], sp->len[j]);
        if (!s) {
            Py_DECREF(lst);
            return NULL;
        }
        PyList_SET_ITEM(lst, j, s);
    }
    return lst;
}

static PyObject *View_tolist(ViewObject *v, PyObject *unused) {
    Py_ssize_t n = View_len(v);
    PyObject *out = PyList_New(n);
    if (!out) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *x = View_item(v, i);
        if (!x) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, i, x);
    }
    return out;
}

static PyObject *View_richcompare(ViewObject *v, PyObject *other, int op) {
    if (op != Py_EQ && op != Py_NE) Py_RETURN_NOTIMPLEMENTED;
    PyObject *lst = View_tolist(v, NULL);
    if (!lst) return NULL;
    PyObject *o = Py_TYPE(other) == &ViewType ? View_tolist((ViewObject *)other, NULL)
                                              : (Py_INCREF(other), other);
    if (!o) {
        Py_DECREF(lst);
        return NULL;
    }
    PyObject *r = PyObject_RichCompare(lst, o, op);
    Py_DECREF(lst);
    Py_DECREF(o);
    return r;
}

static PyObject *View_repr(ViewObject *v) {
    PyObject *lst = View_tolist(v, NULL);
    if (!lst) return NULL;
    PyObject *r = PyObject_Repr(lst);
    Py_DECREF(lst);
    return r;
}

static PyObject *View_subscript(ViewObject *v, PyObject *key) {
    Py_ssize_t n = View_len(v);
    if (PyIndex_Check(key)) {
        Py_ssize_t i = PyNumber_AsSsize_t(key, PyExc_IndexError);
        if (i == -1 && PyErr_Occurred()) return NULL;
        if (i < 0) i += n;
        return View_item(v, i);
    }
    if (PySlice_Check(key)) {
        PyObject *lst = View_tolist(v, NULL), *r;
        if (!lst) return NULL;
        r = PyObject_GetItem(lst, key);
        Py_DECREF(lst);
        return r;
    }
    PyErr_Format(PyExc_TypeError, "level indices must be integers or slices, not %.200s",
                 Py_TYPE(key)->tp_name);
    return NULL;
}

static PyMappingMethods View_as_mapping = {
    .mp_length = (lenfunc)View_len,
    .mp_subscript = (binaryfunc)View_subscript,
};

static PySequenceMethods View_as_sequence = {
    .sq_length = (lenfunc)View_len,
    .sq_item = (ssizeargfunc)View_item,
};

static PyMethodDef View_methods[] = {
    {"tolist", (PyCFunction)View_tolist, METH_NOARGS, "the levels as lists of str"},
    {NULL}};

PyTypeObject ViewType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "simlab._native.LevelsView",
    .tp_basicsize = sizeof(ViewObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Levels of one side of a ScannedBook; behaves as a read-only list of lists",
    .tp_dealloc = (destructor)View_dealloc,
    .tp_repr = (reprfunc)View_repr,
    .tp_as_sequence = &View_as_sequence,
    .tp_as_mapping = &View_as_mapping,
    .tp_richcompare = (richcmpfunc)View_richcompare,
    .tp_methods = View_methods,
};

static PyMethodDef scanner_methods[] = {
    {"scan_okx_book", (PyCFunction)scan_okx_book, METH_O,
     "scan_okx_book(frame) -> ScannedBook, or None when the frame is not a plain OKX book "
     "push (parse it with orjson then)"},
    {NULL}};

int scanner_add(PyObject *m) {
    if (PyType_Ready(&ScannedType) < 0 || PyType_Ready(&ViewType) < 0) return -1;
    Py_INCREF(&ScannedType);
    if (PyModule_AddObject(m, "ScannedBook", (PyObject *)&ScannedType) < 0) return -1;
    Py_INCREF(&ViewType);
    if (PyModule_AddObject(m, "LevelsView", (PyObject *)&ViewType) < 0) return -1;
    return PyModule_AddFunctions(m, scanner_methods);
}
