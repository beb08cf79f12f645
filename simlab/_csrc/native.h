/*
 * What the C files of simlab._native share: one extension module, one file per concern.
 *
 *   module.c   the module: creates it and lets each file below add its part
 *   book.c     Book, one instrument's exact L2 book, and BookError
 *   scanner.c  scan_okx_book, the strict reader of OKX book pushes (ScannedBook, LevelsView)
 *   replay.c   replay_books, the columnar replay kernel
 *   crc32.c    CRC32 for the OKX checksum (and crc32_signed)
 *   levels.h   exact decimals and level spans, which the book and the scanner share
 *
 * Symbols one file takes from another are declared here, hidden from the shared library's
 * exports (only PyInit__native is exported).
 */
#ifndef SIMLAB_NATIVE_H
#define SIMLAB_NATIVE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__)
#define SL_HIDDEN __attribute__((visibility("hidden")))
#else
#define SL_HIDDEN
#endif

/* CRC32 (crc32.c): crc_init fills the tables and runs before anything else. */
SL_HIDDEN void crc_init(void);
SL_HIDDEN uint32_t crc32_buf(const char *buf, size_t n);

/* Each file adds its types and functions to the module: 0, or -1 with an exception set. */
SL_HIDDEN int book_add(PyObject *m);
SL_HIDDEN int scanner_add(PyObject *m);
SL_HIDDEN int replay_add(PyObject *m);
SL_HIDDEN int crc32_add(PyObject *m);

#endif /* SIMLAB_NATIVE_H */
