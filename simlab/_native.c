/*
 * simlab._native: the hot path of simlab in C.
 *
 * Why C: on the real OKX capture an average frame carries 20 book levels. Parsing it with
 * orjson costs ~4.4 us, and touching each level from Python adds ~3 us more, which caps a
 * pure-Python feed handler near 130k frames/s (measured; see benchmarks/). This module keeps
 * the per-level work out of Python:
 *
 *   - Book: one instrument's L2 book. Levels live in a sorted C array per side, keyed by the
 *     exact decimal value of the wire price (integer part + 18-digit fraction, no binary
 *     rounding), with the wire price/size strings kept verbatim for the checksum.
 *   - scan_okx_book(frame): a strict reader for OKX order-book pushes that produces level
 *     spans pointing into the frame, without creating Python objects per level. It accepts
 *     only the plain layout OKX sends; for anything else (escapes, unknown keys, floats where
 *     integers belong, other channels...) it returns None and the caller parses the frame
 *     with orjson, which stays the authority on what is valid JSON.
 *
 * simlab/book/_pybook.py is the pure-Python reference with identical behaviour; the tests
 * run both against each other.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__) || defined(_M_X64)
#include <emmintrin.h>
#endif

#define MAXS 32            /* longest price/size string kept, including the NUL */
#define FRAC_DIGITS 18
#define CK_DEPTH 25

static PyObject *BookError;

/* ----------------------------------------------------------------------------------------
 * Exact decimals
 * ------------------------------------------------------------------------------------- */

typedef struct {
    int64_t ip;   /* integer part */
    int64_t fr;   /* fraction * 1e18 */
} Key;

static const int64_t POW10[19] = {
    1LL, 10LL, 100LL, 1000LL, 10000LL, 100000LL, 1000000LL, 10000000LL, 100000000LL,
    1000000000LL, 10000000000LL, 100000000000LL, 1000000000000LL, 10000000000000LL,
    100000000000000LL, 1000000000000000LL, 10000000000000000LL, 100000000000000000LL,
    1000000000000000000LL};

static inline int key_cmp(const Key *a, const Key *b) {
    if (a->ip != b->ip) return a->ip < b->ip ? -1 : 1;
    if (a->fr != b->fr) return a->fr < b->fr ? -1 : 1;
    return 0;
}

/* Parse the strict grammar digits+ ('.' digits+)?, at most 18 digits on each side and
 * MAXS-1 characters in all. Returns 0 on success, -1 when the string is not of that form. */
static int parse_dec(const char *s, Py_ssize_t n, Key *k, int *is_zero) {
    Py_ssize_t i = 0;
    int64_t ip = 0, fr = 0;
    int nz = 0;
    if (n <= 0 || n >= MAXS) return -1;
    while (i < n && s[i] >= '0' && s[i] <= '9') {
        if (i >= 18) return -1;
        ip = ip * 10 + (s[i] - '0');
        nz |= s[i] != '0';
        i++;
    }
    if (i == 0) return -1;
    if (i < n) {
        Py_ssize_t j, nd;
        if (s[i] != '.') return -1;
        i++;
        if (i == n) return -1;
        nd = n - i;
        if (nd > FRAC_DIGITS) return -1;
        for (j = i; j < n; j++) {
            if (s[j] < '0' || s[j] > '9') return -1;
            fr = fr * 10 + (s[j] - '0');
            nz |= s[j] != '0';
        }
        fr *= POW10[FRAC_DIGITS - nd];
    }
    k->ip = ip;
    k->fr = fr;
    *is_zero = !nz;
    return 0;
}

static int parse_count(const char *s, Py_ssize_t n, int64_t *out) {
    int64_t v = 0;
    Py_ssize_t i;
    if (n <= 0 || n > 18) return -1;
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* float value of a validated decimal string, correctly rounded (locale independent) */
static double dec_to_double(const char *s) {
    double d = PyOS_string_to_double(s, NULL, NULL);
    if (d == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        return Py_NAN;
    }
    return d;
}

/* ----------------------------------------------------------------------------------------
 * CRC32 (IEEE 802.3, as zlib.crc32)
 * ------------------------------------------------------------------------------------- */

/* Slice-by-8: eight table lookups per 8 input bytes instead of one per byte (the checksum
 * runs on every book message; a top-25 string is ~1.2 KB). crc_table[0] is the classic
 * table; crc_table[k][i] advances crc_table[k-1][i] by one more zero byte. */
static uint32_t crc_table[8][256];

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int j = 0; j < 8; j++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int k = 1; k < 8; k++)
            crc_table[k][i] = (crc_table[k - 1][i] >> 8) ^ crc_table[0][crc_table[k - 1][i] & 0xFF];
}

static uint32_t crc32_buf(const char *buf, size_t n) {
    const uint8_t *p = (const uint8_t *)buf;
    uint32_t c = 0xFFFFFFFFu;
    while (n >= 8) {
        /* little-endian byte order, assembled explicitly so the result is the same on any host */
        uint32_t lo = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                           (uint32_t)p[3] << 24);
        uint32_t hi = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 |
                      (uint32_t)p[7] << 24;
        c = crc_table[7][lo & 0xFF] ^ crc_table[6][(lo >> 8) & 0xFF] ^
            crc_table[5][(lo >> 16) & 0xFF] ^ crc_table[4][lo >> 24] ^
            crc_table[3][hi & 0xFF] ^ crc_table[2][(hi >> 8) & 0xFF] ^
            crc_table[1][(hi >> 16) & 0xFF] ^ crc_table[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n--) c = crc_table[0][(c ^ *p++) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

/* ----------------------------------------------------------------------------------------
 * Level spans: one parsed wire level, pointing into a frame or a Python string
 * ------------------------------------------------------------------------------------- */

typedef struct {
    Key key;
    int64_t count;
    const char *px;
    const char *sz;
    uint8_t pxlen, szlen, zero, has_count;
    /* offsets of the (up to 4) wire elements, to rebuild the Python list on demand */
    uint32_t off[4];
    uint8_t len[4];
    uint8_t nelem;
} Span;

/* ----------------------------------------------------------------------------------------
 * The book
 * ------------------------------------------------------------------------------------- */

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

/* ----------------------------------------------------------------------------------------
 * Scanned OKX book messages
 * ------------------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    PyObject *frame;      /* bytes or str owning the memory the spans point into */
    const char *base;
    PyObject *channel, *inst_id, *action, *seq_id, *prev_seq_id, *checksum;
    long long ts;
    Span *spans;          /* bids then asks */
    Py_ssize_t nbids, nasks;
} ScannedObject;

typedef struct {
    PyObject_HEAD
    ScannedObject *msg;
    int ask;
} ViewObject;

static PyTypeObject ScannedType;
static PyTypeObject ViewType;

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

static int Book_init(BookObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kw, "", kwlist)) return -1;
    self->bids.asc = 1;
    self->asks.asc = 0;
    return 0;
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
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Book_init,
    .tp_dealloc = (destructor)Book_dealloc,
    .tp_methods = Book_methods,
    .tp_getset = Book_getset,
};

/* ----------------------------------------------------------------------------------------
 * The scanner
 * ------------------------------------------------------------------------------------- */

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

static PyTypeObject ViewType = {
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

/* ----------------------------------------------------------------------------------------
 * replay_books: rebuilding L2 books from a recording's columnar `levels` table
 *
 * Replaying a recording does not need the wire strings (the checksum was verified when it
 * was recorded), so this kernel keys levels by the float64 price the recorder stored. That
 * is exact enough: the floats were parsed from the wire strings with correct rounding, which
 * is monotonic, so equal decimals give equal doubles and the order of the doubles is the
 * order of the decimals. Two DISTINCT decimals can share a double only when they have more
 * than 15 significant digits (DBL_DIG; e.g. 0.1 and 0.10000000000000001, 17 digits) and
 * then they would merge into one level. Exchange prices are multiples of a tick with far
 * fewer digits, so two real levels never collide.
 *
 * Per stream and side a sorted array of (key, size) with the BEST AT THE END: most changes
 * touch the top of the book, where inserting or deleting moves few entries. The array has
 * free room at both ends, so a change near the bottom (levels entering or leaving the bottom
 * of a 400-level book, frequent on the real capture) moves the few entries below it instead
 * of the whole book. Asks are keyed by minus the price (negation is exact), so both sides
 * are ascending and share one code path.
 *
 * Walks and depths repeat Book_walk / Book_depth operation for operation, in the same
 * order, so that they are bitwise equal to what the exact Book gives live for the same levels.
 * ------------------------------------------------------------------------------------- */

/* rside_set is expanded at each of its call sites in the replay loop (calling it made the
 * whole replay about 20% slower, measured) */
#if defined(__GNUC__)
#define RINLINE static inline __attribute__((always_inline))
#elif defined(_MSC_VER)
#define RINLINE static __forceinline
#else
#define RINLINE static inline
#endif

typedef struct {
    double k;     /* price for bids, -price for asks */
    double sz;
} RLevel;

#define RSLACK 8   /* spare levels allocated beyond each end of a side's buffer (rmove_fixed
                      * copies exactly this many) */

typedef struct {
    RLevel *mem;  /* the allocation: cap + 2 * RSLACK levels */
    RLevel *buf;  /* mem + RSLACK; levels are buf[lo .. lo + n), ascending, best last */
    Py_ssize_t lo, n, cap;
    /* finger: the last change was at index `hint` with key `hkey`; v[hint].k >= hkey
     * (or hint == n). hkey = -inf: none. */
    Py_ssize_t hint;
    double hkey;
} RSide;

typedef struct {
    RSide s[2];   /* 0 bids, 1 asks */
} RBook;

enum {
    RERR_NONE, RERR_NOMEM, RERR_START, RERR_STREAM, RERR_SIDE, RERR_PX, RERR_SZ
};

/* Room for `need` levels with the live ones centred, so that both ends have free room. */
static int rside_recentre(RSide *S, Py_ssize_t need) {
    if (2 * need + 16 > S->cap) {
        Py_ssize_t cap = S->cap ? S->cap : 64;
        while (cap < 2 * need + 16) cap *= 2;
        /* raw allocator: this runs without the GIL */
        RLevel *p = PyMem_RawRealloc(S->mem, (size_t)(cap + 2 * RSLACK) * sizeof(RLevel));
        if (!p) return -1;
        S->mem = p;
        S->buf = p + RSLACK;
        S->cap = cap;
    }
    Py_ssize_t lo = (S->cap - S->n) / 2;
    if (S->n) memmove(&S->buf[lo], &S->buf[S->lo], (size_t)S->n * sizeof(RLevel));
    S->lo = lo;
    return 0;
}

#define RWIN 8  /* levels located by counting instead of bisecting (see rside_find) */

/* First index i in [0, hi] with v[i].k >= key, given v[hi].k >= key.
 *
 * A message lists each side's changes best first, so each change lands below the previous
 * one, usually within a few levels of it (on the real capture 72% within 4 levels, 90%
 * within 16), and the first ones near the top. The search therefore starts from a finger
 * (`hi`): it counts the keys below `key` in the RWIN levels under it, which costs no
 * branches (a bisection mispredicts about every other step), and only then gallops down
 * and bisects. */
static inline Py_ssize_t rside_find(const RLevel *v, Py_ssize_t hi, double key) {
    Py_ssize_t c = 0, lo, step;
    if (hi <= RWIN) {
        for (Py_ssize_t t = 0; t < hi; t++) c += v[t].k < key;
        return c;
    }
    const RLevel *w = v + hi - RWIN;
    if (w[0].k < key) {
        /* written out: -O2 leaves a loop, whose compare-and-branch costs as much again */
        c = (w[1].k < key) + (w[2].k < key) + (w[3].k < key) + (w[4].k < key) +
            (w[5].k < key) + (w[6].k < key) + (w[7].k < key);
        return hi - RWIN + 1 + c;
    }
    hi -= RWIN;   /* v[hi].k >= key */
    for (step = RWIN;; step <<= 1) {
        if (hi <= step) {
            lo = 0;
            break;
        }
        if (v[hi - step].k < key) {
            lo = hi - step + 1;
            break;
        }
        hi -= step;
    }
    while (lo < hi) {
        Py_ssize_t mid = (lo + hi) >> 1;
        if (v[mid].k < key) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* RSLACK levels from src to dst (overlapping by all but one): all loads, then all stores.
 * Spelt out with SSE2 where there is SSE2 (every x86-64): left to itself, gcc -O2 turned
 * the fixed-size copy into `rep movs` in one place, which made the replay 40% slower. */
static inline void rmove_fixed(RLevel *dst, const RLevel *src) {
#if defined(__SSE2__) || defined(_M_X64)
    /* eight named registers: an array here gets spilled to the stack */
    __m128d x0 = _mm_loadu_pd(&src[0].k), x1 = _mm_loadu_pd(&src[1].k);
    __m128d x2 = _mm_loadu_pd(&src[2].k), x3 = _mm_loadu_pd(&src[3].k);
    __m128d x4 = _mm_loadu_pd(&src[4].k), x5 = _mm_loadu_pd(&src[5].k);
    __m128d x6 = _mm_loadu_pd(&src[6].k), x7 = _mm_loadu_pd(&src[7].k);
    _mm_storeu_pd(&dst[0].k, x0);
    _mm_storeu_pd(&dst[1].k, x1);
    _mm_storeu_pd(&dst[2].k, x2);
    _mm_storeu_pd(&dst[3].k, x3);
    _mm_storeu_pd(&dst[4].k, x4);
    _mm_storeu_pd(&dst[5].k, x5);
    _mm_storeu_pd(&dst[6].k, x6);
    _mm_storeu_pd(&dst[7].k, x7);
#else
    RLevel t[RSLACK];
    memcpy(t, src, sizeof t);
    memcpy(dst, t, sizeof t);
#endif
}

/* Move the levels [src, src + cnt) one slot (dst = src +- 1). Most moves are short (half of
 * them 8 levels or fewer on the real capture) and a call to memmove costs more than the
 * copy, so short ones copy RSLACK levels: the block's far end is the end of the live levels
 * and the extra levels copied there are free room or slack, never a live level. */
static inline void rmove_top_block(RLevel *dst, const RLevel *src, Py_ssize_t cnt) {
    /* the block ends at the top: the extra levels land above it */
    if (cnt <= RSLACK) rmove_fixed(dst, src);
    else memmove(dst, src, (size_t)cnt * sizeof(RLevel));
}

static inline void rmove_bottom_block(RLevel *dst, const RLevel *src, Py_ssize_t cnt) {
    /* the block starts at the bottom: the extra levels land below it */
    if (cnt <= RSLACK) rmove_fixed(dst + cnt - RSLACK, src + cnt - RSLACK);
    else memmove(dst, src, (size_t)cnt * sizeof(RLevel));
}

/* Set the size at `key` (0 deletes; deleting an absent level is a no-op). Afterwards v[i]
 * (in the possibly shifted array) is the level at `key` or the first one above it, or
 * i == n: the finger for the next change. */
RINLINE int rside_set(RSide *S, double key, double sz) {
    Py_ssize_t n = S->n, i;
    RLevel *v = S->buf + S->lo;
    if (key < S->hkey && S->hint < n) i = rside_find(v, S->hint, key);
    else if (n == 0 || v[n - 1].k < key) i = n;        /* a new best */
    else if (v[n - 1].k == key) i = n - 1;             /* the best */
    else i = rside_find(v, n - 1, key);
    S->hint = i;
    S->hkey = key;
    if (n - i <= RSLACK && S->lo + n < S->cap) {
        /* Near the top with room above (most changes): whether this inserts, resizes,
         * deletes or does nothing cannot be predicted, so do all four without branching on
         * it: move the levels above i by +1, 0 or -1 slot (a fixed-size copy; v[i .. i + 9)
         * lies within the buffer and its slack), then store the level at v[i] or, when the
         * size is 0, into a scratch level. */
        int found = (i < n) & (v[i].k == key);
        int pos = sz > 0;
        Py_ssize_t ins = pos & (found ^ 1), del = (pos ^ 1) & found;
        RLevel scratch, *dst = pos ? &v[i] : &scratch;
        rmove_fixed(&v[i + ins], &v[i + del]);
        dst->k = key;
        dst->sz = sz;
        S->n = n + ins - del;
        return 0;
    }
    if (i < n && v[i].k == key) {
        if (sz > 0) {
            v[i].sz = sz;
        } else if (i < n - 1 - i) {                     /* delete: move the shorter part */
            rmove_bottom_block(&v[1], &v[0], i);
            S->lo++;
            S->n = n - 1;
        } else {
            rmove_top_block(&v[i], &v[i + 1], n - 1 - i);
            S->n = n - 1;
        }
        return 0;
    }
    if (!(sz > 0)) return 0;
    int down = i < n - i;                               /* insert: move the shorter part */
    if (down ? S->lo == 0 : S->lo + n == S->cap) {
        if (rside_recentre(S, n + 1) < 0) return -1;
        v = S->buf + S->lo;
    }
    if (down) {
        rmove_bottom_block(&v[-1], &v[0], i);
        S->lo--;
        v[i - 1].k = key;
        v[i - 1].sz = sz;
    } else {
        rmove_top_block(&v[i + 1], &v[i], n - i);
        v[i].k = key;
        v[i].sz = sz;
    }
    S->n = n + 1;
    return 0;
}

/* Book_walk, operation for operation (buy lifts asks, sell hits bids) */
static void rwalk(const RSide *S, int ask, double want, int quote, double *out) {
    const RLevel *v = S->buf + S->lo;
    double rem = want, gb = 0.0, gq = 0.0, best = Py_NAN, worst = Py_NAN;
    Py_ssize_t used = 0;
    for (Py_ssize_t i = 0; i < S->n && rem > 0; i++) {
        const RLevel *L = &v[S->n - 1 - i];
        double fpx = ask ? -L->k : L->k, fsz = L->sz;
        double take = quote ? (fsz < rem / fpx ? fsz : rem / fpx) : (fsz < rem ? fsz : rem);
        gb += take;
        gq += take * fpx;
        rem -= quote ? take * fpx : take;
        if (used == 0) best = fpx;
        worst = fpx;
        used++;
    }
    out[0] = gb;
    out[1] = gq;
    out[2] = best;
    out[3] = worst;
    out[4] = (double)used;
    out[5] = rem;
}

/* Book_depth(side, n, "", 0): the sizes of the top n levels, summed best first */
static double rdepth(const RSide *S, Py_ssize_t n) {
    const RLevel *v = S->buf + S->lo;
    double tot = 0.0;
    if (n > S->n) n = S->n;
    for (Py_ssize_t i = 0; i < n; i++) tot += v[S->n - 1 - i].sz;
    return tot;
}

typedef struct {
    const int64_t *start;
    const int32_t *stream;
    const uint8_t *flags, *side, *emit;
    const double *px, *sz, *orders;
    double *top, *walk, *depth;
    Py_ssize_t n, r, k, depth_n, n_streams;
    /* error report */
    int err;
    Py_ssize_t err_at;
    double err_val;
} Replay;

static inline int row_check(Replay *R, Py_ssize_t j) {
    uint8_t sd = R->side[j];
    double px = R->px[j], sz = R->sz[j];
    /* one test for the usual case (NaN fails every comparison) */
    if (sd == 2 || ((sd < 2) & (px > 0) & (px < Py_HUGE_VAL) & (sz >= 0) & (sz < Py_HUGE_VAL)))
        return 0;
    if (sd > 2) {
        R->err = RERR_SIDE;
        R->err_val = sd;
    } else if (!(R->px[j] > 0 && R->px[j] < Py_HUGE_VAL)) {
        R->err = RERR_PX;
        R->err_val = R->px[j];
    } else if (!(R->sz[j] >= 0 && R->sz[j] < Py_HUGE_VAL)) {
        R->err = RERR_SZ;
        R->err_val = R->sz[j];
    } else {
        return 0;
    }
    R->err_at = j;
    return -1;
}

/* Apply rows a..b-1 as updates (validated by the caller), one after the other: all of them
 * (only < 0) or those of side `only`. */
static int apply_rows(Replay *R, RBook *bk, int64_t a, int64_t b, int only) {
    const double *restrict px = R->px, *restrict szs = R->sz;
    const uint8_t *restrict side = R->side;
    for (int64_t j = a; j < b; j++) {
        uint8_t sd = side[j];
        if (sd == 2 || (only >= 0 && sd != only)) continue;
        if (rside_set(&bk->s[sd], sd ? -px[j] : px[j], szs[j]) < 0) {
            R->err = RERR_NOMEM;
            return -1;
        }
    }
    return 0;
}

/* Apply an update whose rows are the bids a..m-1 then the asks m..b-1 (the layout of a
 * recording's levels table; validated by the caller).
 *
 * Each change depends on the one before it on the same side (through the finger and the
 * array's bounds): a chain of loads and compares that leaves the core mostly waiting. The
 * two sides are independent, so their changes are applied in step, a bid then an ask, and
 * the processor overlaps the two chains (about 10% faster on the real capture). */
static int apply_split(Replay *R, RBook *bk, int64_t a, int64_t m, int64_t b) {
    const double *restrict px = R->px, *restrict szs = R->sz;
    RSide *B = &bk->s[0], *A = &bk->s[1];
    int64_t jb = a, ja = m;
    for (; jb < m && ja < b; jb++, ja++) {
        if (rside_set(B, px[jb], szs[jb]) < 0 || rside_set(A, -px[ja], szs[ja]) < 0) {
            R->err = RERR_NOMEM;
            return -1;
        }
    }
    if (apply_rows(R, bk, jb, m, 0) < 0 || apply_rows(R, bk, ja, b, 1) < 0) return -1;
    return 0;
}

/* A snapshot: the stream's book becomes rows a..b-1. Each side arrives best first, so it is
 * written from the top of a centred block downwards (inserting level by level would put
 * each one below all the others). A side that is not strictly ordered (a repeated price...)
 * is redone level by level in row order, which gives the exact Book's result: the last
 * size given for a price wins. */
static int replay_snapshot(Replay *R, RBook *bk, int64_t a, int64_t b) {
    const double *px = R->px, *szs = R->sz;
    const uint8_t *side = R->side;
    Py_ssize_t cnt[3] = {0, 0, 0}, top[2];
    int mono[2] = {1, 1};
    double last[2] = {Py_HUGE_VAL, Py_HUGE_VAL};
    for (int64_t j = a; j < b; j++) {
        if (row_check(R, j) < 0) return -1;
        cnt[side[j]]++;
    }
    for (int sd = 0; sd < 2; sd++) {
        RSide *S = &bk->s[sd];
        S->n = 0;
        if (rside_recentre(S, cnt[sd]) < 0) goto nomem;
        top[sd] = (S->cap + cnt[sd]) / 2;   /* the block [top - cnt, top) sits mid-buffer */
        S->lo = top[sd];
    }
    for (int64_t j = a; j < b; j++) {
        uint8_t sd = side[j];
        if (sd == 2 || !mono[sd]) continue;
        double key = sd ? -px[j] : px[j];
        if (!(key < last[sd])) {
            mono[sd] = 0;
            continue;
        }
        last[sd] = key;
        if (szs[j] > 0) {
            RSide *S = &bk->s[sd];
            S->lo--;
            S->buf[S->lo].k = key;
            S->buf[S->lo].sz = szs[j];
            S->n++;
        }
    }
    for (int sd = 0; sd < 2; sd++) {
        if (mono[sd]) continue;
        RSide *S = &bk->s[sd];
        S->n = 0;
        S->lo = S->cap / 2;
        if (apply_rows(R, bk, a, b, sd) < 0) return -1;
    }
    return 0;
nomem:
    R->err = RERR_NOMEM;
    return -1;
}

/* Replay every message; runs without the GIL. Returns -1 with R->err set on failure. */
static int replay_run(Replay *R, RBook *books) {
    for (Py_ssize_t i = 0; i < R->n; i++) {
        int64_t a = R->start[i], b = R->start[i + 1];
        if (a < 0 || b < a || b > R->r) {
            R->err = RERR_START;
            R->err_at = i;
            return -1;
        }
        int32_t si = R->stream[i];
        if (si < 0 || si >= R->n_streams) {
            R->err = RERR_STREAM;
            R->err_at = i;
            R->err_val = si;
            return -1;
        }
        RBook *bk = &books[si];
        bk->s[0].hkey = bk->s[1].hkey = -Py_HUGE_VAL;   /* no finger */
        uint8_t fl = R->flags[i];
        if (fl & 2) {
            /* skip: the stream's book is invalid until its next snapshot */
            for (int64_t j = a; j < b; j++)
                if (row_check(R, j) < 0) return -1;
            bk->s[0].n = bk->s[1].n = 0;
        } else if (fl & 1) {
            if (replay_snapshot(R, bk, a, b) < 0) return -1;
        } else {
            /* Validate, and see whether the rows are all the bids then all the asks, without
             * a branch per row; on a bad row, row_check finds and reports the first one. */
            const uint8_t *side = R->side;
            const double *px = R->px, *szs = R->sz;
            int64_t nbid = 0, nask = 0;
            int ok = 1, seen_ask = 0, unsplit = 0;
            for (int64_t j = a; j < b; j++) {
                int sd = side[j];
                double p = px[j], z = szs[j];
                ok &= (sd == 2) | ((sd < 2) & (p > 0) & (p < Py_HUGE_VAL) & (z >= 0) &
                                   (z < Py_HUGE_VAL));
                nbid += sd == 0;
                nask += sd == 1;
                unsplit |= (sd == 0) & seen_ask;
                seen_ask |= sd == 1;
            }
            if (!ok) {
                for (int64_t j = a; j < b; j++)
                    if (row_check(R, j) < 0) return -1;
            }
            if (nbid + nask == b - a && !unsplit) {
                if (apply_split(R, bk, a, a + nbid, b) < 0) return -1;
            } else if (apply_rows(R, bk, a, b, -1) < 0) {
                return -1;
            }
        }
        const RSide *B = &bk->s[0], *A = &bk->s[1];
        double *t = R->top + 4 * i;
        /* an empty side reads as L2Book gives it: NaN price and NaN size */
        if (B->n) {
            t[0] = B->buf[B->lo + B->n - 1].k;
            t[1] = B->buf[B->lo + B->n - 1].sz;
        } else {
            t[0] = t[1] = Py_NAN;
        }
        if (A->n) {
            t[2] = -A->buf[A->lo + A->n - 1].k;
            t[3] = A->buf[A->lo + A->n - 1].sz;
        } else {
            t[2] = t[3] = Py_NAN;
        }
        if (R->emit && !R->emit[i]) continue;
        for (Py_ssize_t o = 0; o < R->k; o++) {
            const double *od = R->orders + 3 * o;
            int buy = od[0] != 0.0;
            rwalk(buy ? A : B, buy, od[1], od[2] != 0.0, R->walk + 6 * (i * R->k + o));
        }
        if (R->depth_n > 0) {
            R->depth[2 * i] = rdepth(B, R->depth_n);
            R->depth[2 * i + 1] = rdepth(A, R->depth_n);
        }
    }
    return 0;
}

static const char *dtype_name(char kind, Py_ssize_t size) {
    if (kind == 'f') return "float64";
    if (kind == 'u') return "uint8";
    return size == 8 ? "int64" : "int32";
}

/* Get a C-contiguous buffer of the given kind ('i' signed, 'u' unsigned, 'f' float),
 * item size and number of dimensions; shape entries < 0 are free. Errors name `name`. */
static int get_array(PyObject *o, Py_buffer *b, const char *name, char kind, Py_ssize_t size,
                     int writable, int ndim, const Py_ssize_t *shape) {
    const char *want = dtype_name(kind, size);
    int fl = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(o, b, fl) < 0) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s must be a %sC-contiguous %s array, got %.200s", name,
                     writable ? "writable " : "", want, Py_TYPE(o)->tp_name);
        return -1;
    }
    const char *f = b->format ? b->format : "B";
    if (*f == '@' || *f == '=') f++;
#if PY_LITTLE_ENDIAN
    else if (*f == '<') f++;
#else
    else if (*f == '>' || *f == '!') f++;
#endif
    int ok = f[0] && !f[1] && b->itemsize == size &&
             (kind == 'f' ? f[0] == 'd'
              : kind == 'u' ? strchr("BHILQ", f[0]) != NULL
                            : strchr("bhilq", f[0]) != NULL);
    if (!ok) {
        PyErr_Format(PyExc_TypeError, "%s must have dtype %s, got buffer format '%s' (itemsize %zd)",
                     name, want, b->format ? b->format : "B", b->itemsize);
        goto fail;
    }
    int shape_ok = b->ndim == ndim;
    for (int d = 0; shape_ok && d < ndim; d++)
        if (shape[d] >= 0 && b->shape[d] != shape[d]) shape_ok = 0;
    if (!shape_ok) {
        char exp[96] = "", got[96] = "";
        int p = 0, q = 0;
        for (int d = 0; d < ndim; d++)
            p += shape[d] < 0 ? snprintf(exp + p, sizeof exp - (size_t)p, "%s*", d ? ", " : "")
                              : snprintf(exp + p, sizeof exp - (size_t)p, "%s%zd", d ? ", " : "",
                                         shape[d]);
        for (int d = 0; d < b->ndim && d < 8; d++)
            q += snprintf(got + q, sizeof got - (size_t)q, "%s%zd", d ? ", " : "", b->shape[d]);
        PyErr_Format(PyExc_ValueError, "%s must have shape (%s%s), got (%s%s)", name, exp,
                     ndim == 1 ? "," : "", got, b->ndim == 1 ? "," : "");
        goto fail;
    }
    return 0;
fail:
    PyBuffer_Release(b);
    b->obj = NULL;
    return -1;
}

static PyObject *replay_books(PyObject *mod, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"msg_start", "msg_stream", "msg_flags", "row_side", "row_px",
                             "row_sz", "n_streams", "out_top", "orders", "out_walk",
                             "depth_n", "out_depth", "emit", NULL};
    PyObject *o_start, *o_stream, *o_flags, *o_side, *o_px, *o_sz, *o_top, *o_orders, *o_walk,
        *o_depth, *o_emit = Py_None;
    Py_ssize_t n_streams, depth_n;
    enum { START, STREAM, FLAGS, SIDE, PX, SZ, TOP, ORDERS, WALK, DEPTH, EMIT, NBUF };
    Py_buffer buf[NBUF];
    RBook *books = NULL;
    PyObject *ret = NULL;
    memset(buf, 0, sizeof buf);
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOOOOnOOOnO|O", kwlist, &o_start, &o_stream,
                                     &o_flags, &o_side, &o_px, &o_sz, &n_streams, &o_top,
                                     &o_orders, &o_walk, &depth_n, &o_depth, &o_emit))
        return NULL;
    if (n_streams < 0) {
        PyErr_Format(PyExc_ValueError, "n_streams must be >= 0, got %zd", n_streams);
        return NULL;
    }
    if (depth_n < 0) {
        PyErr_Format(PyExc_ValueError, "depth_n must be >= 0, got %zd", depth_n);
        return NULL;
    }
    Py_ssize_t any[3] = {-1, -1, -1};
    if (get_array(o_stream, &buf[STREAM], "msg_stream", 'i', 4, 0, 1, any) < 0) goto done;
    Py_ssize_t n = buf[STREAM].shape[0];
    Py_ssize_t s_start[1] = {n + 1}, s_n[1] = {n};
    if (get_array(o_start, &buf[START], "msg_start", 'i', 8, 0, 1, s_start) < 0 ||
        get_array(o_flags, &buf[FLAGS], "msg_flags", 'u', 1, 0, 1, s_n) < 0 ||
        get_array(o_side, &buf[SIDE], "row_side", 'u', 1, 0, 1, any) < 0)
        goto done;
    Py_ssize_t r = buf[SIDE].shape[0];
    Py_ssize_t s_r[1] = {r}, s_top[2] = {n, 4}, s_orders[2] = {-1, 3};
    if (get_array(o_px, &buf[PX], "row_px", 'f', 8, 0, 1, s_r) < 0 ||
        get_array(o_sz, &buf[SZ], "row_sz", 'f', 8, 0, 1, s_r) < 0 ||
        get_array(o_top, &buf[TOP], "out_top", 'f', 8, 1, 2, s_top) < 0 ||
        get_array(o_orders, &buf[ORDERS], "orders", 'f', 8, 0, 2, s_orders) < 0)
        goto done;
    Py_ssize_t k = buf[ORDERS].shape[0];
    Py_ssize_t s_walk[3] = {n, k, 6}, s_depth[2] = {n, 2};
    if (get_array(o_walk, &buf[WALK], "out_walk", 'f', 8, 1, 3, s_walk) < 0) goto done;
    if (depth_n > 0 &&
        get_array(o_depth, &buf[DEPTH], "out_depth", 'f', 8, 1, 2, s_depth) < 0)
        goto done;
    if (o_emit != Py_None && get_array(o_emit, &buf[EMIT], "emit", 'u', 1, 0, 1, s_n) < 0)
        goto done;
    const double *orders = buf[ORDERS].buf;
    for (Py_ssize_t o = 0; o < k; o++) {
        const double *od = orders + 3 * o;
        if (!((od[0] == 0.0 || od[0] == 1.0) && (od[2] == 0.0 || od[2] == 1.0) &&
              od[1] > 0 && od[1] < Py_HUGE_VAL)) {
            PyObject *row = Py_BuildValue("(ddd)", od[0], od[1], od[2]);
            if (row) {
                PyErr_Format(PyExc_ValueError,
                             "orders[%zd] must be (buy 1/0, amount > 0 and finite, quote 1/0), "
                             "got %R", o, row);
                Py_DECREF(row);
            }
            goto done;
        }
    }
    books = PyMem_RawCalloc((size_t)(n_streams ? n_streams : 1), sizeof(RBook));
    if (!books) {
        PyErr_NoMemory();
        goto done;
    }
    Replay R = {buf[START].buf, buf[STREAM].buf, buf[FLAGS].buf, buf[SIDE].buf,
                o_emit != Py_None ? buf[EMIT].buf : NULL,
                buf[PX].buf, buf[SZ].buf, orders, buf[TOP].buf, buf[WALK].buf,
                depth_n > 0 ? buf[DEPTH].buf : NULL,
                n, r, k, depth_n, n_streams, RERR_NONE, 0, 0.0};
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = replay_run(&R, books);
    Py_END_ALLOW_THREADS
    if (rc < 0) {
        PyObject *v = PyFloat_FromDouble(R.err_val);
        const int64_t *st = R.start;
        switch (R.err) {
        case RERR_NOMEM:
            PyErr_NoMemory();
            break;
        case RERR_START:
            PyErr_Format(PyExc_ValueError,
                         "msg_start must be non-decreasing within [0, %zd] (the number of "
                         "rows), got msg_start[%zd]=%lld, msg_start[%zd]=%lld",
                         r, R.err_at, (long long)st[R.err_at], R.err_at + 1,
                         (long long)st[R.err_at + 1]);
            break;
        case RERR_STREAM:
            PyErr_Format(PyExc_ValueError, "msg_stream[%zd] must be in [0, %zd), got %lld",
                         R.err_at, n_streams, (long long)R.err_val);
            break;
        case RERR_SIDE:
            PyErr_Format(PyExc_ValueError,
                         "row_side[%zd] must be 0 (bid), 1 (ask) or 2 (no level), got %lld",
                         R.err_at, (long long)R.err_val);
            break;
        case RERR_PX:
            PyErr_Format(PyExc_ValueError, "row_px[%zd] must be a finite price > 0, got %R",
                         R.err_at, v);
            break;
        default:
            PyErr_Format(PyExc_ValueError, "row_sz[%zd] must be a finite size >= 0, got %R",
                         R.err_at, v);
            break;
        }
        Py_XDECREF(v);
        goto done;
    }
    ret = Py_None;
    Py_INCREF(ret);
done:
    if (books) {
        for (Py_ssize_t s = 0; s < n_streams; s++)
            for (int d = 0; d < 2; d++) PyMem_RawFree(books[s].s[d].mem);
        PyMem_RawFree(books);
    }
    for (int i = 0; i < NBUF; i++)
        if (buf[i].obj) PyBuffer_Release(&buf[i]);
    return ret;
}

/* ---- module ---- */

static PyObject *py_crc32_signed(PyObject *mod, PyObject *arg) {
    Py_buffer b;
    if (PyObject_GetBuffer(arg, &b, PyBUF_SIMPLE) < 0) return NULL;
    uint32_t c = crc32_buf(b.buf, (size_t)b.len);
    PyBuffer_Release(&b);
    return PyLong_FromLong((int32_t)c);
}

static PyMethodDef module_methods[] = {
    {"scan_okx_book", (PyCFunction)scan_okx_book, METH_O,
     "scan_okx_book(frame) -> ScannedBook, or None when the frame is not a plain OKX book "
     "push (parse it with orjson then)"},
    {"crc32_signed", (PyCFunction)py_crc32_signed, METH_O, "CRC32 of bytes as signed int32"},
    {"replay_books", (PyCFunction)(void (*)(void))replay_books, METH_VARARGS | METH_KEYWORDS,
     "replay_books(msg_start, msg_stream, msg_flags, row_side, row_px, row_sz, n_streams,\n"
     "             out_top, orders, out_walk, depth_n, out_depth, emit=None) -> None\n\n"
     "Rebuild L2 books from columnar level rows (see simlab.book.batch.rebuild_books).\n"
     "Message i owns rows msg_start[i]:msg_start[i+1] (int64[n+1]) of book msg_stream[i]\n"
     "(int32[n]); msg_flags[i] (uint8) bit0 = snapshot (clear, then apply), bit1 = skip\n"
     "(clear, do not apply). row_side uint8 (0 bid, 1 ask, 2 no level), row_px/row_sz\n"
     "float64; size 0 deletes. Writes out_top[n,4] (bid px, bid sz, ask px, ask sz; NaN\n"
     "for an empty side) after every message and, where emit[i] != 0 (uint8[n] or None),\n"
     "out_walk[n,k,6] = Book.walk(buy, amount, quote) for each orders[k,3] row and, when\n"
     "depth_n > 0, out_depth[n,2] = Book.depth(side, depth_n, '', False) per side."},
    {NULL}};

static struct PyModuleDef moduledef = {PyModuleDef_HEAD_INIT, "simlab._native",
                                       "simlab's hot path in C", -1, module_methods};

PyMODINIT_FUNC PyInit__native(void) {
    PyObject *m;
    crc_init();
    if (PyType_Ready(&BookType) < 0 || PyType_Ready(&ScannedType) < 0 ||
        PyType_Ready(&ViewType) < 0)
        return NULL;
    m = PyModule_Create(&moduledef);
    if (!m) return NULL;
    BookError = PyErr_NewExceptionWithDoc(
        "simlab._native.BookError",
        "A level that cannot be applied (not a plain decimal price > 0 / size >= 0).",
        PyExc_ValueError, NULL);
    if (!BookError) return NULL;
    Py_INCREF(&BookType);
    Py_INCREF(&ScannedType);
    Py_INCREF(&ViewType);
    if (PyModule_AddObject(m, "Book", (PyObject *)&BookType) < 0 ||
        PyModule_AddObject(m, "ScannedBook", (PyObject *)&ScannedType) < 0 ||
        PyModule_AddObject(m, "LevelsView", (PyObject *)&ViewType) < 0 ||
        PyModule_AddObject(m, "BookError", BookError) < 0)
        return NULL;
    return m;
}
