/*
 * Book: one instrument's L2 book (simlab.book.L2Book's C core; simlab/book/_pybook.py is
 * the pure-Python reference with identical behaviour, and the tests run both against each
 * other).
 *
 * Why C: on the real OKX capture an average frame carries 20 book levels. Parsing it with
 * orjson costs ~4.4 us, and touching each level from Python adds ~3 us more, which caps a
 * pure-Python feed handler near 130k frames/s (measured; see benchmarks/). Levels live in a
 * sorted C array per side, keyed by the exact decimal value of the wire price (integer part
 * + 18-digit fraction, no binary rounding), with the wire price/size strings kept verbatim
 * for the checksum. Levels arrive as Python lists, or as the scanner's views (scanner.c),
 * whose spans point into the frame and are applied without creating Python objects.
 */
#include "levels.h"

#define CK_DEPTH 25

static PyObject *BookError;

/* float value of a validated decimal string, correctly rounded (locale independent) */
static double dec_to_double(const char *s) {
    double d = PyOS_string_to_double(s, NULL, NULL);
    if (d == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        return Py_NAN;
    }
    return d;
}

typedef struct {
    int64_t count;
    double fpx, fsz;
    uint8_t pxlen, szlen, have_f, _pad;
    char px[MAXS];
    char sz[MAXS];
} Level;

/* The sorted array holds only (key, slot): inserting or deleting a level deep in a
 * 400-level book then moves 24-byte entries, not whole levels. */
typedef struct {
    Key key;
    uint32_t slot;
} Entry;

typedef struct {
    Entry *e;
    Py_ssize_t n, cap;
    Level *pool;
    uint32_t npool, poolcap;
    uint32_t *freed;
    uint32_t nfreed;
    int asc; /* bids: ascending (best = last); asks: descending (best = last) */
} Side;

typedef struct {
    PyObject_HEAD
    Side bids;
    Side asks;
} BookObject;

static inline int side_cmp(const Side *s, const Key *a, const Key *b) {
    int c = key_cmp(a, b);
    return s->asc ? c : -c;
}

/* first index whose key is not before k in the side's order */
static Py_ssize_t side_find(const Side *s, const Key *k) {
    Py_ssize_t lo = 0, hi = s->n;
    /* updates cluster at the top of the book, which is the end of the array */
    if (hi > 0 && side_cmp(s, &s->e[hi - 1].key, k) < 0) return hi;
    while (lo < hi) {
        Py_ssize_t mid = (lo + hi) >> 1;
        if (side_cmp(s, &s->e[mid].key, k) < 0) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* room for `need` entries and levels */
static int side_reserve(Side *s, Py_ssize_t need) {
    if (need > s->cap) {
        Py_ssize_t cap = s->cap ? s->cap : 64;
        while (cap < need) cap *= 2;
        Entry *p = PyMem_Realloc(s->e, (size_t)cap * sizeof(Entry));
        if (!p) {
            PyErr_NoMemory();
            return -1;
        }
        s->e = p;
        s->cap = cap;
    }
    if (need > (Py_ssize_t)s->poolcap) {
        uint32_t cap = s->poolcap ? s->poolcap : 64;
        while ((Py_ssize_t)cap < need) cap *= 2;
        Level *p = PyMem_Realloc(s->pool, (size_t)cap * sizeof(Level));
        if (p) s->pool = p;
        uint32_t *f = PyMem_Realloc(s->freed, (size_t)cap * sizeof(uint32_t));
        if (f) s->freed = f;
        if (!p || !f) {
            PyErr_NoMemory();
            return -1;
        }
        s->poolcap = cap;
    }
    return 0;
}

static inline void side_reset(Side *s) {
    s->n = 0;
    s->npool = 0;
    s->nfreed = 0;
}

static inline void level_fill(Level *L, const Span *sp) {
    L->count = sp->count;
    L->pxlen = sp->pxlen;
    L->szlen = sp->szlen;
    L->have_f = 0;
    memcpy(L->px, sp->px, sp->pxlen);
    L->px[sp->pxlen] = 0;
    memcpy(L->sz, sp->sz, sp->szlen);
    L->sz[sp->szlen] = 0;
}

/* caller has reserved room for one more level */
static inline uint32_t slot_alloc(Side *s) {
    return s->nfreed ? s->freed[--s->nfreed] : s->npool++;
}

static void side_apply(Side *s, const Span *sp) {
    Py_ssize_t i = side_find(s, &sp->key);
    int found = i < s->n && key_cmp(&s->e[i].key, &sp->key) == 0;
    if (sp->zero) {
        if (found) {
            s->freed[s->nfreed++] = s->e[i].slot;
            memmove(&s->e[i], &s->e[i + 1], (size_t)(s->n - i - 1) * sizeof(Entry));
            s->n--;
        }
        return;
    }
    if (!found) {
        memmove(&s->e[i + 1], &s->e[i], (size_t)(s->n - i) * sizeof(Entry));
        s->e[i].key = sp->key;
        s->e[i].slot = slot_alloc(s);
        s->n++;
    }
    level_fill(&s->pool[s->e[i].slot], sp);
}

static inline void side_push(Side *s, const Span *sp) {
    uint32_t slot = s->npool++;
    s->e[s->n].key = sp->key;
    s->e[s->n].slot = slot;
    s->n++;
    level_fill(&s->pool[slot], sp);
}

static const Side *qsort_side;
static const Span *qsort_spans;

static int cmp_span_idx(const void *a, const void *b) {
    Py_ssize_t ia = *(const Py_ssize_t *)a, ib = *(const Py_ssize_t *)b;
    int c = side_cmp(qsort_side, &qsort_spans[ia].key, &qsort_spans[ib].key);
    if (c) return c;
    return ia < ib ? -1 : (ia > ib ? 1 : 0);
}

/* Replace a side with the given levels (wire order, best first). Duplicate prices: the
 * last one wins, as with repeated updates. */
static int side_replace(Side *s, const Span *sp, Py_ssize_t n) {
    Py_ssize_t i;
    int sorted = 1;
    if (side_reserve(s, n) < 0) return -1;
    side_reset(s);
    /* wire order is best first and the array best last: reversed wire order must be
     * strictly increasing in the side's order */
    for (i = 1; i < n && sorted; i++)
        if (side_cmp(s, &sp[i].key, &sp[i - 1].key) >= 0) sorted = 0;
    if (sorted) {
        for (i = n - 1; i >= 0; i--)
            if (!sp[i].zero) side_push(s, &sp[i]);
        return 0;
    }
    Py_ssize_t *idx = PyMem_Malloc((size_t)(n ? n : 1) * sizeof(Py_ssize_t));
    if (!idx) {
        PyErr_NoMemory();
        return -1;
    }
    for (i = 0; i < n; i++) idx[i] = i;
    qsort_side = s;
    qsort_spans = sp;
    qsort(idx, (size_t)n, sizeof(Py_ssize_t), cmp_span_idx);
    for (i = 0; i < n; i++) {
        const Span *x = &sp[idx[i]];
        /* among equal keys keep the last in wire order: it sorts last */
        if (i + 1 < n && key_cmp(&x->key, &sp[idx[i + 1]].key) == 0) continue;
        if (!x->zero) side_push(s, x);
    }
    PyMem_Free(idx);
    return 0;
}

static inline void level_floats(Level *L) {
    if (!L->have_f) {
        L->fpx = dec_to_double(L->px);
        L->fsz = dec_to_double(L->sz);
        L->have_f = 1;
    }
}


/* ---- converting Python level lists to spans (generic path) ---- */

static int span_from_pylevel(PyObject *lvl, Span *sp, const char *where) {
    PyObject *fast, *o;
    Py_ssize_t n, len;
    const char *s;
    if (!PyList_Check(lvl) && !PyTuple_Check(lvl)) goto bad;
    fast = lvl;
    n = PySequence_Fast_GET_SIZE(fast);
    if (n < 2) goto bad;
    o = PySequence_Fast_GET_ITEM(fast, 0);
    if (!PyUnicode_Check(o) || !(s = PyUnicode_AsUTF8AndSize(o, &len))) goto bad_clear;
    {
        int z;
        if (parse_dec(s, len, &sp->key, &z) < 0 || z) goto bad; /* price must be > 0 */
    }
    sp->px = s;
    sp->pxlen = (uint8_t)len;
    o = PySequence_Fast_GET_ITEM(fast, 1);
    if (!PyUnicode_Check(o) || !(s = PyUnicode_AsUTF8AndSize(o, &len))) goto bad_clear;
    {
        Key kz;
        int z;
        if (parse_dec(s, len, &kz, &z) < 0) goto bad;
        sp->zero = (uint8_t)z;
    }
    sp->sz = s;
    sp->szlen = (uint8_t)len;
    sp->has_count = 0;
    sp->count = 0;
    if (n >= 3) {
        o = PySequence_Fast_GET_ITEM(fast, n - 1);
        if (!PyUnicode_Check(o) || !(s = PyUnicode_AsUTF8AndSize(o, &len))) goto bad_clear;
        if (parse_count(s, len, &sp->count) < 0) goto bad;
        sp->has_count = 1;
    }
    return 0;
bad_clear:
    PyErr_Clear();
bad:
    PyErr_Format(BookError,
                 "%s level must be [price, size, ..., count] with plain decimal strings "
                 "(price > 0, size >= 0, count a whole number), got %R",
                 where, lvl);
    return -1;
}

/* Spans for one side from either a View (scanner fast path) or any sequence of levels.
 * *owned is set when the caller must free the returned array. The Python objects behind
 * the spans are kept alive by *keep (a new reference, may be NULL). */
static Span *spans_of(PyObject *levels, const char *where, Py_ssize_t *n, int *owned,
                      PyObject **keep) {
    *keep = NULL;
    if (Py_TYPE(levels) == &ViewType) {
        ViewObject *v = (ViewObject *)levels;
        *owned = 0;
        *n = v->ask ? v->msg->nasks : v->msg->nbids;
        return v->msg->spans + (v->ask ? v->msg->nbids : 0);
    }
    PyObject *fast = PySequence_Fast(levels, "levels must be a sequence of [price, size, ...]");
    if (!fast) {
        PyErr_Clear();
        PyErr_Format(BookError, "%s levels must be a list of [price, size, ...], got %R", where,
                     levels);
        return NULL;
    }
    Py_ssize_t m = PySequence_Fast_GET_SIZE(fast);
    Span *sp = PyMem_Malloc((size_t)(m ? m : 1) * sizeof(Span));
    if (!sp) {
        Py_DECREF(fast);
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < m; i++) {
        if (span_from_pylevel(PySequence_Fast_GET_ITEM(fast, i), &sp[i], where) < 0) {
            PyMem_Free(sp);
            Py_DECREF(fast);
            return NULL;
        }
    }
    *owned = 1;
    *n = m;
    *keep = fast;
    return sp;
}

/* ---- Book type ---- */

/* The side order belongs to the object, not to __init__: set here, a Book made without
 * __init__ (Book.__new__(Book)) is still a correct empty book, its best bid the highest. */
static PyObject *Book_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    BookObject *self = (BookObject *)PyType_GenericNew(type, args, kw);
    if (!self) return NULL;
    self->bids.asc = 1;
    self->asks.asc = 0;
    return (PyObject *)self;
}

static int Book_init(BookObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {NULL};
    return PyArg_ParseTupleAndKeywords(args, kw, "", kwlist) ? 0 : -1;
}

static void Book_dealloc(BookObject *self) {
    PyMem_Free(self->bids.e);
    PyMem_Free(self->bids.pool);
    PyMem_Free(self->bids.freed);
    PyMem_Free(self->asks.e);
    PyMem_Free(self->asks.pool);
    PyMem_Free(self->asks.freed);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *book_apply(BookObject *self, PyObject *args, int snapshot) {
    PyObject *bids, *asks, *kb = NULL, *ka = NULL;
    Span *sb = NULL, *sa = NULL;
    Py_ssize_t nb = 0, na = 0, i;
    int ob = 0, oa = 0, rc = 0;
    if (!PyArg_ParseTuple(args, "OO", &bids, &asks)) return NULL;
    /* validate both sides completely before touching the book: all or nothing */
    if (!(sb = spans_of(bids, "bid", &nb, &ob, &kb))) return NULL;
    if (!(sa = spans_of(asks, "ask", &na, &oa, &ka))) {
        if (ob) PyMem_Free(sb);
        Py_XDECREF(kb);
        return NULL;
    }
    if (snapshot) {
        rc = side_replace(&self->bids, sb, nb);
        if (rc == 0) rc = side_replace(&self->asks, sa, na);
    } else {
        /* the pool never has fewer slots than live levels, so this covers both */
        if (side_reserve(&self->bids, (Py_ssize_t)self->bids.npool + nb) < 0 ||
            side_reserve(&self->asks, (Py_ssize_t)self->asks.npool + na) < 0)
            rc = -1;
        for (i = 0; rc == 0 && i < nb; i++) side_apply(&self->bids, &sb[i]);
        for (i = 0; rc == 0 && i < na; i++) side_apply(&self->asks, &sa[i]);
    }
    if (ob) PyMem_Free(sb);
    if (oa) PyMem_Free(sa);
    Py_XDECREF(kb);
    Py_XDECREF(ka);
    if (rc < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *Book_apply_snapshot(BookObject *self, PyObject *args) {
    return book_apply(self, args, 1);
}

static PyObject *Book_apply_update(BookObject *self, PyObject *args) {
    return book_apply(self, args, 0);
}

static PyObject *Book_clear(BookObject *self, PyObject *unused) {
    side_reset(&self->bids);
    side_reset(&self->asks);
    Py_RETURN_NONE;
}

static Side *side_arg(BookObject *self, PyObject *side) {
    /* 0/False = bids, 1/True = asks */
    int a = PyObject_IsTrue(side);
    if (a < 0) return NULL;
    return a ? &self->asks : &self->bids;
}

/* i-th level from the best */
static inline Level *side_at(Side *s, Py_ssize_t i) { return &s->pool[s->e[s->n - 1 - i].slot]; }

static PyObject *Book_levels(BookObject *self, PyObject *args) {
    PyObject *side;
    Py_ssize_t n = -1;
    if (!PyArg_ParseTuple(args, "O|n", &side, &n)) return NULL;
    Side *s = side_arg(self, side);
    if (!s) return NULL;
    if (n < 0 || n > s->n) n = s->n;
    PyObject *out = PyList_New(n);
    if (!out) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        Level *L = side_at(s, i);
        PyObject *t = Py_BuildValue("(s#s#L)", L->px, (Py_ssize_t)L->pxlen, L->sz,
                                    (Py_ssize_t)L->szlen, (long long)L->count);
        if (!t) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, i, t);
    }
    return out;
}

static PyObject *Book_best(BookObject *self, PyObject *side) {
    Side *s = side_arg(self, side);
    if (!s) return NULL;
    if (!s->n) return PyFloat_FromDouble(Py_NAN);
    Level *L = side_at(s, 0);
    level_floats(L);
    return PyFloat_FromDouble(L->fpx);
}

static PyObject *Book_top(BookObject *self, PyObject *args) {
    PyObject *side;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "On", &side, &n)) return NULL;
    Side *s = side_arg(self, side);
    if (!s) return NULL;
    if (n < 0) n = 0;
    if (n > s->n) n = s->n;
    PyObject *px = PyList_New(n), *sz = PyList_New(n);
    if (!px || !sz) goto fail;
    for (Py_ssize_t i = 0; i < n; i++) {
        Level *L = side_at(s, i);
        level_floats(L);
        PyObject *a = PyFloat_FromDouble(L->fpx), *b = PyFloat_FromDouble(L->fsz);
        if (!a || !b) {
            Py_XDECREF(a);
            Py_XDECREF(b);
            goto fail;
        }
        PyList_SET_ITEM(px, i, a);
        PyList_SET_ITEM(sz, i, b);
    }
    return Py_BuildValue("(NN)", px, sz);
fail:
    Py_XDECREF(px);
    Py_XDECREF(sz);
    return NULL;
}

/* depth(side, n_levels, limit, notional): n_levels < 0 = no level limit; limit is a plain
 * decimal string compared exactly with the keys (bids >= limit, asks <= limit), "" for none */
static PyObject *Book_depth(BookObject *self, PyObject *args) {
    PyObject *side;
    Py_ssize_t n, llen;
    const char *ls;
    int notional, z;
    Key limit;
    if (!PyArg_ParseTuple(args, "Ons#p", &side, &n, &ls, &llen, &notional)) return NULL;
    Side *s = side_arg(self, side);
    if (!s) return NULL;
    if (llen && parse_dec(ls, llen, &limit, &z) < 0) {
        PyErr_Format(PyExc_ValueError, "depth limit must be a plain decimal, got %R",
                     PyTuple_GET_ITEM(args, 2));
        return NULL;
    }
    if (n < 0 || n > s->n) n = s->n;
    double tot = 0.0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t j = s->n - 1 - i;
        if (llen && side_cmp(s, &s->e[j].key, &limit) < 0) break;
        Level *L = &s->pool[s->e[j].slot];
        level_floats(L);
        tot += notional ? L->fpx * L->fsz : L->fsz;
    }
    return PyFloat_FromDouble(tot);
}

/* walk(buy, amount, quote) -> (base, quote, best, worst, levels, remaining) */
static PyObject *Book_walk(BookObject *self, PyObject *args) {
    int buy, quote;
    double want;
    if (!PyArg_ParseTuple(args, "pdp", &buy, &want, &quote)) return NULL;
    Side *s = buy ? &self->asks : &self->bids;
    double rem = want, gb = 0.0, gq = 0.0, best = Py_NAN, worst = Py_NAN;
    Py_ssize_t used = 0;
    for (Py_ssize_t i = 0; i < s->n && rem > 0; i++) {
        Level *L = side_at(s, i);
        level_floats(L);
        double take = quote ? (L->fsz < rem / L->fpx ? L->fsz : rem / L->fpx)
                            : (L->fsz < rem ? L->fsz : rem);
        gb += take;
        gq += take * L->fpx;
        rem -= quote ? take * L->fpx : take;
        if (used == 0) best = L->fpx;
        worst = L->fpx;
        used++;
    }
    return Py_BuildValue("(ddddnd)", gb, gq, best, worst, used, rem);
}

static int64_t book_checksum(BookObject *self, int depth) {
    char buf[2 * CK_DEPTH * 2 * MAXS + 8];
    size_t p = 0;
    Py_ssize_t nb = self->bids.n < depth ? self->bids.n : depth;
    Py_ssize_t na = self->asks.n < depth ? self->asks.n : depth;
    Py_ssize_t m = nb > na ? nb : na;
    for (Py_ssize_t i = 0; i < m; i++) {
        Level *L;
        if (i < nb) {
            L = side_at(&self->bids, i);
            if (p) buf[p++] = ':';
            memcpy(buf + p, L->px, L->pxlen); p += L->pxlen;
            buf[p++] = ':';
            memcpy(buf + p, L->sz, L->szlen); p += L->szlen;
        }
        if (i < na) {
            L = side_at(&self->asks, i);
            if (p) buf[p++] = ':';
            memcpy(buf + p, L->px, L->pxlen); p += L->pxlen;
            buf[p++] = ':';
            memcpy(buf + p, L->sz, L->szlen); p += L->szlen;
        }
    }
    return (int32_t)crc32_buf(buf, p);
}

static PyObject *Book_checksum(BookObject *self, PyObject *unused) {
    return PyLong_FromLongLong(book_checksum(self, CK_DEPTH));
}

static PyObject *Book_is_crossed(BookObject *self, PyObject *unused) {
    if (!self->bids.n || !self->asks.n) Py_RETURN_FALSE;
    return PyBool_FromLong(key_cmp(&self->bids.e[self->bids.n - 1].key,
                                   &self->asks.e[self->asks.n - 1].key) >= 0);
}

static PyObject *Book_get_nbids(BookObject *self, void *c) { return PyLong_FromSsize_t(self->bids.n); }
static PyObject *Book_get_nasks(BookObject *self, void *c) { return PyLong_FromSsize_t(self->asks.n); }

static PyMethodDef Book_methods[] = {
    {"apply_snapshot", (PyCFunction)Book_apply_snapshot, METH_VARARGS,
     "apply_snapshot(bids, asks): replace the book"},
    {"apply_update", (PyCFunction)Book_apply_update, METH_VARARGS,
     "apply_update(bids, asks): absolute sizes, 0 deletes; all or nothing"},
    {"clear", (PyCFunction)Book_clear, METH_NOARGS, "empty the book"},
    {"levels", (PyCFunction)Book_levels, METH_VARARGS,
     "levels(ask: bool, n=-1) -> [(px, sz, count)] best first"},
    {"best", (PyCFunction)Book_best, METH_O, "best(ask: bool) -> float price or NaN"},
    {"top", (PyCFunction)Book_top, METH_VARARGS, "top(ask, n) -> ([px], [sz]) floats"},
    {"depth", (PyCFunction)Book_depth, METH_VARARGS,
     "depth(ask, n_levels, limit: str, notional) -> float"},
    {"walk", (PyCFunction)Book_walk, METH_VARARGS,
     "walk(buy, amount, quote) -> (base, quote, best, worst, levels, remaining)"},
    {"checksum", (PyCFunction)Book_checksum, METH_NOARGS, "OKX checksum of the top 25 levels"},
    {"is_crossed", (PyCFunction)Book_is_crossed, METH_NOARGS, "best bid >= best ask"},
    {NULL}};

static PyGetSetDef Book_getset[] = {
    {"n_bids", (getter)Book_get_nbids, NULL, NULL, NULL},
    {"n_asks", (getter)Book_get_nasks, NULL, NULL, NULL},
    {NULL}};

static PyTypeObject BookType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "simlab._native.Book",
    .tp_basicsize = sizeof(BookObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "L2 book core: exact decimal keys, wire strings kept (see simlab.book.L2Book)",
    .tp_new = Book_new,
    .tp_init = (initproc)Book_init,
    .tp_dealloc = (destructor)Book_dealloc,
    .tp_methods = Book_methods,
    .tp_getset = Book_getset,
};


int book_add(PyObject *m) {
    if (PyType_Ready(&BookType) < 0) return -1;
    BookError = PyErr_NewExceptionWithDoc(
        "simlab._native.BookError",
        "A level that cannot be applied (not a plain decimal price > 0 / size >= 0).",
        PyExc_ValueError, NULL);
    if (!BookError) return -1;
    Py_INCREF(&BookType);
    if (PyModule_AddObject(m, "Book", (PyObject *)&BookType) < 0) return -1;
    Py_INCREF(BookError);
    return PyModule_AddObject(m, "BookError", BookError);
}
