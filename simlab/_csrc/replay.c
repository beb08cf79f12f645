/*
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
 */
#include "native.h"
#if defined(__SSE2__) || defined(_M_X64)
#include <emmintrin.h>
#endif

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

static PyMethodDef replay_methods[] = {
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

int replay_add(PyObject *m) { return PyModule_AddFunctions(m, replay_methods); }
