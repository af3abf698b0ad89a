/* The C half of rerun_logging.capture's fast path (optional: without a compiler the
 * package builds without it, and capture() runs the same steps in Python).
 *
 * plain_capture(record) returns what capture() returns for the common record, a plain
 * LogRecord whose msg is a str and whose args, extras, exc_info and exc_text need
 * nothing done: a copy of record.__dict__ with MESSAGE_KEY (None) added last. For any
 * other record it returns None, and capture() takes its Python path. The tests check
 * that both give the same dict, key for key and in the same order.
 *
 * middles(states) makes the extras of a batch of captured records on the flusher.
 *
 * The copy is untracked by the cyclic GC: it lives until the flusher takes its batch,
 * thousands of records later, and tracked it would be traversed by every young
 * collection and survive into the oldest one, setting off full collections of the
 * app's heap. Nothing refers to it but the handler's queue and the flusher, so it is
 * never part of a cycle; what it refers to stays reachable until reference counting
 * frees the copy. Its args tuple (scalars only) is untracked too, as the GC itself would
 * untrack it at its first look. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

static PyObject *log_record_type = NULL; /* logging.LogRecord */
static PyObject *message_key = NULL;     /* capture.MESSAGE_KEY */
static Py_ssize_t standard_count = 0;    /* how many attributes LogRecord.__init__ sets */
static PyObject *str_dict = NULL, *str_msg = NULL, *str_args = NULL;
static PyObject *str_exc_info = NULL, *str_exc_text = NULL;

/* Whether ``value`` cannot change after emit: capture._SCALARS, by exact type. */
static inline int
is_scalar(PyObject *value)
{
    return value == Py_None || PyUnicode_CheckExact(value) || PyLong_CheckExact(value) ||
           PyFloat_CheckExact(value) || PyBool_Check(value);
}

/* 1 when ``state`` needs nothing of capture()'s Python path, 0 when it does, -1 on error. */
static int
is_plain(PyObject *state)
{
    PyObject *msg = PyDict_GetItemWithError(state, str_msg);
    if (msg == NULL || !PyUnicode_CheckExact(msg))
        return PyErr_Occurred() ? -1 : 0;
    PyObject *args = PyDict_GetItemWithError(state, str_args);
    if (args == NULL)
        return PyErr_Occurred() ? -1 : 0;
    if (args != Py_None) {
        if (!PyTuple_CheckExact(args))
            return 0; /* a mapping, a list: capture() decides */
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(args); i++)
            if (!is_scalar(PyTuple_GET_ITEM(args, i)))
                return 0;
    }
    PyObject *exc_info = PyDict_GetItemWithError(state, str_exc_info);
    if (exc_info == NULL || exc_info != Py_None)
        return PyErr_Occurred() ? -1 : 0;
    PyObject *exc_text = PyDict_GetItemWithError(state, str_exc_text);
    if (exc_text == NULL || exc_text != Py_None)
        return PyErr_Occurred() ? -1 : 0;
    /* The extras are the attributes after the standard ones (capture() counts them so). */
    Py_ssize_t pos = 0, index = 0;
    PyObject *key, *value;
    while (PyDict_Next(state, &pos, &key, &value)) {
        if (index++ >= standard_count && !is_scalar(value))
            return 0;
    }
    return 1;
}

/* Untrack the args tuple of a plain ``state`` (only scalars in it, checked by is_plain),
 * as the cyclic GC would untrack it at its first collection: it cannot be part of a cycle.
 * Kept in the queue, each tracked tuple would count toward and be traversed by young
 * collections, where the record the app made and freed at once never was. */
static void
untrack_args(PyObject *state)
{
    PyObject *args = PyDict_GetItem(state, str_args); /* borrowed; present (is_plain) */
    if (args != NULL && PyTuple_CheckExact(args) && PyObject_GC_IsTracked(args))
        PyObject_GC_UnTrack(args);
}

static PyObject *
plain_capture(PyObject *module, PyObject *record)
{
    if (log_record_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "rerun_logging._speedups is not configured");
        return NULL;
    }
    if ((PyObject *)Py_TYPE(record) != log_record_type)
        Py_RETURN_NONE; /* a subclass may override getMessage() */
    PyObject *state = PyObject_GetAttr(record, str_dict);
    if (state == NULL)
        return NULL;
    if (!PyDict_CheckExact(state)) {
        Py_DECREF(state);
        Py_RETURN_NONE;
    }
    int plain = is_plain(state);
    if (plain <= 0) {
        Py_DECREF(state);
        if (plain < 0)
            return NULL;
        Py_RETURN_NONE;
    }
    PyObject *copy = PyDict_Copy(state);
    Py_DECREF(state);
    if (copy == NULL)
        return NULL;
    if (PyDict_SetItem(copy, message_key, Py_None) < 0) {
        Py_DECREF(copy);
        return NULL;
    }
    PyObject_GC_UnTrack(copy);
    untrack_args(copy);
    return copy;
}

/* middles(states): for each dict of the list ``states``, a new dict of its entries after
 * the first standard_count and before the last (a captured record's extras, between its
 * standard attributes and MESSAGE_KEY), as capture._extras makes them in Python; None
 * when ``states`` is not a list of dicts (then the Python steps run). */
static PyObject *
middles(PyObject *module, PyObject *states)
{
    if (!PyList_CheckExact(states))
        Py_RETURN_NONE;
    Py_ssize_t count = PyList_GET_SIZE(states);
    for (Py_ssize_t i = 0; i < count; i++)
        if (!PyDict_CheckExact(PyList_GET_ITEM(states, i)))
            Py_RETURN_NONE;
    PyObject *result = PyList_New(count);
    if (result == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *state = PyList_GET_ITEM(states, i);
        Py_ssize_t end = PyDict_GET_SIZE(state) - 1, pos = 0, index = 0;
        PyObject *extras = PyDict_New(), *key, *value;
        if (extras == NULL) {
            Py_DECREF(result);
            return NULL;
        }
        PyList_SET_ITEM(result, i, extras);
        while (index < end && PyDict_Next(state, &pos, &key, &value)) {
            if (index++ >= standard_count && PyDict_SetItem(extras, key, value) < 0) {
                Py_DECREF(result);
                return NULL;
            }
        }
    }
    return result;
}

static PyObject *
configure(PyObject *module, PyObject *args)
{
    PyObject *record_type, *key;
    Py_ssize_t count;
    if (!PyArg_ParseTuple(args, "OUn:configure", &record_type, &key, &count))
        return NULL;
    if (!PyType_Check(record_type) || count <= 0) {
        PyErr_SetString(PyExc_ValueError, "configure(LogRecord, MESSAGE_KEY, standard_count)");
        return NULL;
    }
    Py_INCREF(record_type);
    Py_XSETREF(log_record_type, record_type);
    Py_INCREF(key);
    Py_XSETREF(message_key, key);
    standard_count = count;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"plain_capture", plain_capture, METH_O,
     "What capture() returns for a plain record (None: take the Python path)."},
    {"middles", middles, METH_O,
     "Each captured record's extras: its entries after the standard ones, before the last."},
    {"configure", configure, METH_VARARGS,
     "configure(LogRecord, MESSAGE_KEY, standard_count): set once by capture."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "rerun_logging._speedups",
    "The C half of rerun_logging.capture's fast path (optional).", -1, methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    str_dict = PyUnicode_InternFromString("__dict__");
    str_msg = PyUnicode_InternFromString("msg");
    str_args = PyUnicode_InternFromString("args");
    str_exc_info = PyUnicode_InternFromString("exc_info");
    str_exc_text = PyUnicode_InternFromString("exc_text");
    if (!str_dict || !str_msg || !str_args || !str_exc_info || !str_exc_text)
        return NULL;
    return PyModule_Create(&module_def);
}
