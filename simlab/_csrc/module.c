/*
 * simlab._native: the hot path of simlab in C, one extension module built from one file per
 * concern (see native.h): the book, the frame scanner, the replay kernel and CRC32. Each
 * file adds its own types and functions to the module here.
 *
 * Python imports it only through simlab.core, which falls back to the pure-Python
 * references when it is missing or SIMLAB_PURE_PYTHON=1 asks for them.
 */
#include "native.h"

static struct PyModuleDef moduledef = {PyModuleDef_HEAD_INIT, "simlab._native",
                                       "simlab's hot path in C", -1, NULL};

PyMODINIT_FUNC PyInit__native(void) {
    crc_init();
    PyObject *m = PyModule_Create(&moduledef);
    if (!m) return NULL;
    if (book_add(m) < 0 || scanner_add(m) < 0 || replay_add(m) < 0 || crc32_add(m) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
