/* The C half of rerun_logging.capture's fast path (optional: without a compiler the
 * package builds without it, and capture() runs the same steps in Python).
 *
 * plain_capture(record) returns what capture() returns for the common record, a plain
 * LogRecord whose msg is a str and whose args, extras, exc_info and exc_text need
 * nothing done: a copy of record.__dict__ with MESSAGE_KEY (None) added last. For any
 * other record it returns None, and capture() takes its Python path. The tests check
 * that both give the same dict, key for key and in the same order.
 *
 * middles(states) makes the extras of a batch of captured records on the flusher, and
 * batch_rows(states) reads the rest of what record_batch() packs, in one pass. For the
 * sinks that read a batch in this process, render_rows renders its messages and
 * extra_columns_of makes its extras as columns, without a dict per record. The rerun
 * sinks' Arrow columns are made in _arrow.c (arrow_columns and group_rows), compiled
 * into this module, without giving up the GIL as pyarrow's kernels do.
 *
 * The copy is untracked by the cyclic GC: it lives until the flusher takes its batch,
 * thousands of records later, and tracked it would be traversed by every young
 * collection and survive into the oldest one, setting off full collections of the
 * app's heap. Nothing refers to it but the handler's queue and the flusher, so it is
 * never part of a cycle; what it refers to stays reachable until reference counting
 * frees the copy. Its args tuple (scalars only) is untracked too, as the GC itself would
 * untrack it at its first look.
 *
 * Handle is RerunHandler.handle for that common record: the checks of handle and emit,
 * plain_capture's steps and the append to the queue, in one C call from logging's.
 *
 * watch_signal, take_signal and deliverers, at the end, let rerun_logging.exits deliver
 * a terminating signal that the main thread missed. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <stddef.h>
#include <structmember.h>

static PyObject *log_record_type = NULL; /* logging.LogRecord */
static PyObject *message_key = NULL;     /* capture.MESSAGE_KEY */
static Py_ssize_t standard_count = 0;    /* how many attributes LogRecord.__init__ sets */
static PyObject *str_dict = NULL, *str_msg = NULL, *str_args = NULL;
static PyObject *str_exc_info = NULL, *str_exc_text = NULL;
static PyObject *str_created = NULL, *str_stack_info = NULL;
static PyObject *key_names = NULL;       /* capture._KEY_NAMES: a record's site and context */
static Py_ssize_t msg_at = 0;            /* where "msg" is in key_names */
#define MAX_STANDARD 64
static PyObject *standard_names = NULL;  /* capture._STANDARD_ATTRS: LogRecord.__init__'s, in order */
static Py_ssize_t key_at[32];            /* where each of key_names is among standard_names */
static Py_ssize_t created_at, args_at, exc_info_at, stack_info_at;

/* Whether ``value`` cannot change after emit: capture._SCALARS, by exact type. */
static inline int
is_scalar(PyObject *value)
{
    return value == Py_None || PyUnicode_CheckExact(value) || PyLong_CheckExact(value) ||
           PyFloat_CheckExact(value) || PyBool_Check(value);
}

/* The PyDict_Next position of the entry after the first standard_count of ``state`` (a
 * record's extras start there), found without walking those: PyDict_Next's positions
 * are the indexes of the dict's entries, in insertion order, and a dict that never lost
 * a key has no gap among them, so the position is standard_count itself. That holds
 * exactly when the entries from there on number size - standard_count (checked: they
 * are the few extras); a dict with a gap before is walked from its start instead. */
static Py_ssize_t
tail_start(PyObject *state)
{
    Py_ssize_t pos = standard_count, count = 0, size = PyDict_GET_SIZE(state);
    PyObject *key, *value;
    while (PyDict_Next(state, &pos, &key, &value))
        count++;
    if (count == size - standard_count)
        return standard_count;
    pos = 0;
    for (Py_ssize_t i = 0; i < standard_count && PyDict_Next(state, &pos, &key, &value); i++)
        ;
    return pos;
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
    Py_ssize_t pos = tail_start(state);
    PyObject *key, *value;
    while (PyDict_Next(state, &pos, &key, &value)) {
        if (!is_scalar(value))
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

/* What capture() returns for a record whose instance dict is ``state``: when it is plain
 * (is_plain), a copy with MESSAGE_KEY (None) added last, out of the cyclic GC; Py_None
 * (a new reference) when it is not; NULL on error. */
static PyObject *
captured_copy(PyObject *state)
{
    int plain = is_plain(state);
    if (plain <= 0)
        return plain < 0 ? NULL : Py_NewRef(Py_None);
    PyObject *copy = PyDict_Copy(state);
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

/* The instance dict of ``record`` when it is exactly a LogRecord with a dict (new
 * reference); Py_None (new reference) for any other record; NULL on error. */
static PyObject *
record_state(PyObject *record)
{
    if ((PyObject *)Py_TYPE(record) != log_record_type)
        Py_RETURN_NONE; /* a subclass may override getMessage() */
    /* The instance dict as object.__dict__ gets it, without looking the descriptor up
     * (LogRecord is a plain class; one replaced by the app may not keep its dict so). */
    PyObject *state = Py_TYPE(record)->tp_dictoffset != 0 ? PyObject_GenericGetDict(record, NULL)
                                                          : PyObject_GetAttr(record, str_dict);
    if (state != NULL && !PyDict_CheckExact(state)) {
        Py_DECREF(state);
        Py_RETURN_NONE;
    }
    return state;
}

static PyObject *
plain_capture(PyObject *module, PyObject *record)
{
    if (log_record_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "rerun_logging._speedups is not configured");
        return NULL;
    }
    PyObject *state = record_state(record);
    if (state == NULL || state == Py_None)
        return state;
    PyObject *copy = captured_copy(state);
    Py_DECREF(state);
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
        Py_ssize_t end = PyDict_GET_SIZE(state) - 1, index = standard_count;
        Py_ssize_t pos = tail_start(state);
        PyObject *extras = PyDict_New(), *key, *value;
        if (extras == NULL) {
            Py_DECREF(result);
            return NULL;
        }
        PyList_SET_ITEM(result, i, extras);
        while (index < end && PyDict_Next(state, &pos, &key, &value)) {
            index++;
            if (PyDict_SetItem(extras, key, value) < 0) {
                Py_DECREF(result);
                return NULL;
            }
        }
    }
    return result;
}

/* The rows' values of the key ``names`` of ``state`` into ``out`` (borrowed); 0 when one
 * is missing, -1 on error. */
static int
key_of(PyObject *state, PyObject **out, Py_ssize_t size)
{
    for (Py_ssize_t k = 0; k < size; k++) {
        out[k] = PyDict_GetItemWithError(state, PyTuple_GET_ITEM(key_names, k));
        if (out[k] == NULL)
            return PyErr_Occurred() ? -1 : 0;
    }
    return 1;
}

/* The values of the standard attributes of ``state`` into ``out`` (borrowed), read by
 * position: 1 when its first entries are exactly standard_names, in order (the same
 * interned name objects: a copy of a LogRecord's dict), else 0, and nothing is read.
 * One walk with pointer comparisons instead of a hashed lookup per attribute. */
static int
standard_values(PyObject *state, PyObject **out)
{
    if (standard_names == NULL)
        return 0;
    Py_ssize_t pos = 0, count = PyTuple_GET_SIZE(standard_names);
    PyObject *key, *value;
    for (Py_ssize_t j = 0; j < count; j++) {
        if (!PyDict_Next(state, &pos, &key, &value) || key != PyTuple_GET_ITEM(standard_names, j))
            return 0;
        out[j] = value;
    }
    return 1;
}

/* What batch_rows reads of ``state`` (borrowed; NULL where absent): the key (key_names)
 * into ``key``, and created, args, exc_info and stack_info. By position where the record
 * keeps LogRecord's order (standard_values), else looked up; 0 when the key, created or
 * args is missing, -1 on error. */
static int
read_fields(PyObject *state, PyObject **key, Py_ssize_t size, PyObject **created, PyObject **arg,
            PyObject **exc_info, PyObject **stack_info)
{
    PyObject *values[MAX_STANDARD];
    if (standard_values(state, values)) {
        for (Py_ssize_t k = 0; k < size; k++)
            key[k] = values[key_at[k]];
        *created = values[created_at];
        *arg = values[args_at];
        *exc_info = values[exc_info_at];
        *stack_info = values[stack_info_at];
        return 1;
    }
    int found = key_of(state, key, size);
    if (found <= 0)
        return found;
    PyObject *names[4] = {str_created, str_args, str_exc_info, str_stack_info};
    PyObject **found_at[4] = {created, arg, exc_info, stack_info};
    for (int n = 0; n < 4; n++) {
        *found_at[n] = PyDict_GetItemWithError(state, names[n]);
        if (*found_at[n] == NULL && PyErr_Occurred())
            return -1;
    }
    return *created != NULL && *arg != NULL;
}

/* 1 when the keys ``a`` and ``b`` differ (as tuples compare), 0 when not, -1 on error. */
static int
keys_differ(PyObject **a, PyObject **b, Py_ssize_t size)
{
    for (Py_ssize_t k = 0; k < size; k++) {
        if (a[k] == b[k])
            continue;
        if (PyLong_CheckExact(a[k]) && PyLong_CheckExact(b[k])) {
            /* thread and process ids: equal ints, new objects each record */
            int overflow_a = 0, overflow_b = 0;
            long long x = PyLong_AsLongLongAndOverflow(a[k], &overflow_a);
            long long y = PyLong_AsLongLongAndOverflow(b[k], &overflow_b);
            if (!overflow_a && !overflow_b && !PyErr_Occurred()) {
                if (x != y)
                    return 1;
                continue;
            }
            PyErr_Clear(); /* past 64 bits: compared as objects */
        }
        int equal = PyObject_RichCompareBool(a[k], b[k], Py_EQ);
        if (equal <= 0)
            return equal < 0 ? -1 : 1;
    }
    return 0;
}

static int
append_long(PyObject *list, long long value)
{
    PyObject *number = PyLong_FromLongLong(value);
    if (number == NULL)
        return -1;
    int failed = PyList_Append(list, number);
    Py_DECREF(number);
    return failed;
}

/* 1 when ``value`` (borrowed, may be NULL: absent) is true, 0 when not, -1 on error. */
static inline int
present(PyObject *value)
{
    return value == NULL || value == Py_None ? 0 : PyObject_IsTrue(value);
}

#define TIME_LIMIT 4.0e18 /* |ns| beyond this (year 2096): the Python steps (exact ints) */

/* batch_rows(states): what capture.record_batch reads of each captured record, as
 *   (messages, times, time_deltas, starts, heads, exc_rows, stack_rows, args)
 * where times are int(created * 1e9), starts the rows where the key (capture._KEY_NAMES)
 * differs from the row before and heads those rows' keys as tuples, exc_rows and
 * stack_rows the rows whose exc_info and stack_info are true. None when a record is not
 * the common one (a missing attribute, a msg that is not a str, a created that is not a
 * float in range): then the Python steps run, which the tests check give the same. */
static PyObject *
batch_rows(PyObject *module, PyObject *states)
{
    if (key_names == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "rerun_logging._speedups is not configured");
        return NULL;
    }
    if (!PyList_CheckExact(states))
        Py_RETURN_NONE;
    Py_ssize_t count = PyList_GET_SIZE(states), size = PyTuple_GET_SIZE(key_names);
    PyObject *stack_keys[2][32];
    if (size > 32)
        Py_RETURN_NONE;
    PyObject *messages = PyList_New(count), *times = PyList_New(count), *deltas = PyList_New(count);
    PyObject *args = PyList_New(count), *starts = PyList_New(0), *heads = PyList_New(0);
    PyObject *exc_rows = PyList_New(0), *stack_rows = PyList_New(0), *result = NULL;
    if (!messages || !times || !deltas || !args || !starts || !heads || !exc_rows || !stack_rows)
        goto done;
    long long previous_ns = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *state = PyList_GET_ITEM(states, i);
        PyObject **key = stack_keys[i & 1], **before = stack_keys[(i & 1) ^ 1];
        if (!PyDict_CheckExact(state))
            goto fallback;
        PyObject *created, *arg, *exc_info, *stack_info;
        int found = read_fields(state, key, size, &created, &arg, &exc_info, &stack_info);
        if (found <= 0)
            goto fail_or_fallback;
        if (!PyUnicode_CheckExact(key[msg_at]))
            goto fallback;
        PyObject *message = PyDict_GetItemWithError(state, message_key);
        if (message == NULL)
            goto fail_or_fallback;
        if (!PyFloat_CheckExact(created))
            goto fallback;
        double ns = PyFloat_AS_DOUBLE(created) * 1e9;
        if (!(ns > -TIME_LIMIT && ns < TIME_LIMIT)) /* NaN too */
            goto fallback;
        long long time_ns = (long long)ns; /* truncated toward zero, as int() does */
        PyObject *time_obj = PyLong_FromLongLong(time_ns);
        PyObject *delta_obj = PyLong_FromLongLong(i ? time_ns - previous_ns : time_ns);
        if (time_obj == NULL || delta_obj == NULL) {
            Py_XDECREF(time_obj);
            Py_XDECREF(delta_obj);
            goto done;
        }
        PyList_SET_ITEM(times, i, time_obj);
        PyList_SET_ITEM(deltas, i, delta_obj);
        previous_ns = time_ns;
        Py_INCREF(message);
        PyList_SET_ITEM(messages, i, message);
        Py_INCREF(arg);
        PyList_SET_ITEM(args, i, arg);
        int differs = i ? keys_differ(key, before, size) : 1;
        if (differs < 0)
            goto done;
        if (differs) {
            PyObject *head = PyTuple_New(size);
            if (head == NULL)
                goto done;
            for (Py_ssize_t k = 0; k < size; k++) {
                Py_INCREF(key[k]);
                PyTuple_SET_ITEM(head, k, key[k]);
            }
            int failed = PyList_Append(heads, head);
            Py_DECREF(head);
            if (failed || append_long(starts, i) < 0)
                goto done;
        }
        int exc = present(exc_info);
        if (exc < 0 || (exc && append_long(exc_rows, i) < 0))
            goto done;
        int stack = present(stack_info);
        if (stack < 0 || (stack && append_long(stack_rows, i) < 0))
            goto done;
    }
    result = PyTuple_Pack(8, messages, times, deltas, starts, heads, exc_rows, stack_rows, args);
    goto done;
fail_or_fallback:
    if (PyErr_Occurred())
        goto done;
fallback:
    result = Py_None;
    Py_INCREF(result);
done:
    Py_XDECREF(messages);
    Py_XDECREF(times);
    Py_XDECREF(deltas);
    Py_XDECREF(args);
    Py_XDECREF(starts);
    Py_XDECREF(heads);
    Py_XDECREF(exc_rows);
    Py_XDECREF(stack_rows);
    return result;
}

/* Bytes msgpack takes at most for ``value``, or -1 when the exact packer might refuse
 * it or pack it otherwise than as it is (anything but None, a bool, an int of 64 bits, a
 * float or a str). A str is counted at 4 bytes a character unless it is ASCII: a bound. */
static Py_ssize_t
packed_bound(PyObject *value)
{
    if (value == Py_None || PyBool_Check(value))
        return 1;
    if (PyFloat_CheckExact(value))
        return 9;
    if (PyLong_CheckExact(value)) {
        int overflow = 0;
        (void)PyLong_AsLongLongAndOverflow(value, &overflow);
        if (PyErr_Occurred()) {
            PyErr_Clear();
            return -1;
        }
        return overflow ? -1 : 9; /* past int64 (unsigned ones too): let the packer decide */
    }
    if (PyUnicode_CheckExact(value)) {
        Py_ssize_t length = PyUnicode_GET_LENGTH(value);
        return 5 + (PyUnicode_IS_ASCII(value) ? length : 4 * length);
    }
    return -1;
}

/* rows_fit(rows, cap): True when every row of ``rows`` (a list of None, dicts with str
 * keys, or tuples) holds scalar values only and certainly packs within ``cap`` bytes, so
 * that format's exact packing (pack_extras_exactly, pack_args_exactly) would pack it as
 * it is; False when that is not certain (then the packer decides). */
static PyObject *
rows_fit(PyObject *module, PyObject *args)
{
    PyObject *rows;
    Py_ssize_t cap;
    if (!PyArg_ParseTuple(args, "On:rows_fit", &rows, &cap))
        return NULL;
    if (!PyList_CheckExact(rows))
        Py_RETURN_FALSE;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(rows); i++) {
        PyObject *row = PyList_GET_ITEM(rows, i), *key, *value;
        Py_ssize_t size = 5; /* the map's or array's header */
        if (row == Py_None)
            continue;
        if (PyTuple_CheckExact(row)) {
            for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(row); k++) {
                Py_ssize_t v = packed_bound(PyTuple_GET_ITEM(row, k));
                if (v < 0 || (size += v) > cap)
                    Py_RETURN_FALSE;
            }
            continue;
        }
        if (!PyDict_CheckExact(row))
            Py_RETURN_FALSE;
        Py_ssize_t pos = 0;
        while (PyDict_Next(row, &pos, &key, &value)) {
            Py_ssize_t k = PyUnicode_CheckExact(key) ? packed_bound(key) : -1;
            Py_ssize_t v = packed_bound(value);
            if (k < 0 || v < 0 || (size += k + v) > cap)
                Py_RETURN_FALSE;
        }
    }
    Py_RETURN_TRUE;
}

/* The kind code of ``value`` for extra_columns: 'b', 'i' (int64), 'f', 's', or 'x'. */
static char
kind_of(PyObject *value)
{
    if (PyBool_Check(value))
        return 'b';
    if (PyFloat_CheckExact(value))
        return 'f';
    if (PyUnicode_CheckExact(value))
        return 's';
    if (PyLong_CheckExact(value)) {
        int overflow = 0;
        (void)PyLong_AsLongLongAndOverflow(value, &overflow);
        if (PyErr_Occurred()) {
            PyErr_Clear();
            return 'x';
        }
        return overflow ? 'x' : 'i';
    }
    return 'x';
}

/* Builds the (key, values, kind) columns of a batch's extras, a row at a time (see
 * extra_columns). The rows of a batch mostly have the same keys in the same order: the
 * k-th key of the row before, and its column, are tried first (compared by identity),
 * before the index is asked. The keys are borrowed from rows the caller keeps. */
#define RECENT_KEYS 16
typedef struct {
    Py_ssize_t count;  /* rows */
    PyObject *index;   /* key -> its column */
    PyObject *keys;    /* the keys, by column */
    PyObject *result;  /* the value lists, by column */
    char *kinds;
    Py_ssize_t kinds_size;
    PyObject *recent_key[RECENT_KEYS];
    Py_ssize_t recent_column[RECENT_KEYS];
} Columns;

static int
columns_init(Columns *c, Py_ssize_t count)
{
    memset(c, 0, sizeof *c);
    c->count = count;
    c->index = PyDict_New();
    c->keys = PyList_New(0);
    c->result = PyList_New(0);
    return c->index != NULL && c->keys != NULL && c->result != NULL ? 0 : -1;
}

static void
columns_free(Columns *c)
{
    PyMem_Free(c->kinds);
    Py_CLEAR(c->index);
    Py_CLEAR(c->keys);
    Py_CLEAR(c->result);
}

/* The column of ``key`` (made, all None, when it is new), or -1 on error; ``k``: where
 * the key is in its row. */
static Py_ssize_t
column_of(Columns *c, PyObject *key, Py_ssize_t k)
{
    if (k < RECENT_KEYS && c->recent_key[k] == key)
        return c->recent_column[k];
    PyObject *at = PyDict_GetItemWithError(c->index, key);
    Py_ssize_t column;
    if (at != NULL) {
        column = PyLong_AsSsize_t(at);
    } else {
        if (PyErr_Occurred())
            return -1;
        column = PyList_GET_SIZE(c->result);
        PyObject *values = PyList_New(c->count);
        if (values == NULL)
            return -1;
        for (Py_ssize_t r = 0; r < c->count; r++) {
            Py_INCREF(Py_None);
            PyList_SET_ITEM(values, r, Py_None);
        }
        PyObject *number = PyLong_FromSsize_t(column);
        int failed = number == NULL || PyDict_SetItem(c->index, key, number) < 0 ||
                     PyList_Append(c->keys, key) < 0 || PyList_Append(c->result, values) < 0;
        Py_XDECREF(number);
        Py_DECREF(values);
        if (failed)
            return -1;
        if (column >= c->kinds_size) {
            Py_ssize_t grown = c->kinds_size ? 2 * c->kinds_size : 16;
            char *more = PyMem_Realloc(c->kinds, grown);
            if (more == NULL) {
                PyErr_NoMemory();
                return -1;
            }
            c->kinds = more;
            c->kinds_size = grown;
        }
        c->kinds[column] = 0; /* no value yet */
    }
    if (k < RECENT_KEYS) {
        c->recent_key[k] = key;
        c->recent_column[k] = column;
    }
    return column;
}

/* Row ``row``'s ``value`` for ``key``, the row's ``k``-th; -1 on error. */
static int
columns_add(Columns *c, Py_ssize_t row, PyObject *key, PyObject *value, Py_ssize_t k)
{
    Py_ssize_t column = column_of(c, key, k);
    if (column < 0)
        return -1;
    Py_INCREF(value);
    PyList_SetItem(PyList_GET_ITEM(c->result, column), row, value); /* drops the None */
    if (value != Py_None && c->kinds[column] != 'x') {
        char kind = kind_of(value);
        c->kinds[column] = c->kinds[column] == 0 || c->kinds[column] == kind ? kind : 'x';
    }
    return 0;
}

/* The list of (key, values, kind), one per column in the order keys first came. */
static PyObject *
columns_finish(Columns *c)
{
    for (Py_ssize_t column = 0; column < PyList_GET_SIZE(c->result); column++) {
        PyObject *values = PyList_GET_ITEM(c->result, column), *kind, *entry;
        char code = c->kinds[column];
        if (code == 0) {
            kind = Py_NewRef(Py_None);
        } else {
            kind = PyUnicode_FromString(code == 'b' ? "bool" : code == 'i' ? "int" :
                                        code == 'f' ? "float" : code == 's' ? "text" : "");
            if (kind == NULL)
                return NULL;
        }
        entry = PyTuple_Pack(3, PyList_GET_ITEM(c->keys, column), values, kind);
        Py_DECREF(kind);
        if (entry == NULL)
            return NULL;
        PyList_SetItem(c->result, column, entry); /* drops the list; the tuple holds it */
    }
    return Py_NewRef(c->result);
}

/* extra_columns(extras): for each key of ``extras`` (a list of dicts or None), in the
 * order keys first come, (key, values, kind): values has one entry per row (None where
 * the row lacks the key), kind is what every value that is not None is, "bool", "int"
 * (within int64), "float" or "text" (exact types), "" when they are not all one of
 * those, None when every value is None. None when ``extras`` is not such a list. */
static PyObject *
extra_columns(PyObject *module, PyObject *extras)
{
    if (!PyList_CheckExact(extras))
        Py_RETURN_NONE;
    Py_ssize_t count = PyList_GET_SIZE(extras);
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *row = PyList_GET_ITEM(extras, i);
        if (row != Py_None && !PyDict_CheckExact(row))
            Py_RETURN_NONE;
    }
    Columns c;
    PyObject *result = NULL;
    if (columns_init(&c, count) < 0)
        goto done;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *row = PyList_GET_ITEM(extras, i), *key, *value;
        if (row == Py_None)
            continue;
        Py_ssize_t pos = 0;
        for (Py_ssize_t k = 0; PyDict_Next(row, &pos, &key, &value); k++)
            if (columns_add(&c, i, key, value, k) < 0)
                goto done;
    }
    result = columns_finish(&c);
done:
    columns_free(&c);
    return result;
}

/* extra_columns_of(states, reserved, cap): what extra_columns(middles(states)) gives,
 * made straight from the captured records without a dict per record, for a batch whose
 * extras need nothing of capture._extras' other steps and certainly pack as they are
 * (what rows_fit(extras, cap) tells); None for any other batch (then those steps run).
 * That is: str keys, none reserved (``reserved``), private (``_``) or ours (``\0``),
 * scalar values that are not None (a None extra reads back as a key with no value,
 * which columns cannot say), each row within ``cap`` bytes as rows_fit counts it. */
static PyObject *
extra_columns_of(PyObject *module, PyObject *args)
{
    PyObject *states, *reserved;
    Py_ssize_t cap;
    if (!PyArg_ParseTuple(args, "O!O!n:extra_columns_of", &PyList_Type, &states,
                          &PyFrozenSet_Type, &reserved, &cap))
        return NULL;
    Py_ssize_t count = PyList_GET_SIZE(states);
    for (Py_ssize_t i = 0; i < count; i++)
        if (!PyDict_CheckExact(PyList_GET_ITEM(states, i)))
            Py_RETURN_NONE;
    Columns c;
    PyObject *result = NULL;
    if (columns_init(&c, count) < 0)
        goto done;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *state = PyList_GET_ITEM(states, i), *key, *value;
        Py_ssize_t end = PyDict_GET_SIZE(state) - 1, index = standard_count, size = 5;
        Py_ssize_t pos = tail_start(state);
        for (Py_ssize_t k = 0; index < end && PyDict_Next(state, &pos, &key, &value); k++) {
            index++;
            if (!PyUnicode_CheckExact(key) || PyUnicode_GET_LENGTH(key) == 0 || value == Py_None)
                goto not_so;
            Py_UCS4 first = PyUnicode_READ_CHAR(key, 0);
            Py_ssize_t bound = packed_bound(value);
            if (first == '_' || first == 0 || bound < 0 || (size += packed_bound(key) + bound) > cap)
                goto not_so;
            int taken = PySet_Contains(reserved, key);
            if (taken != 0) {
                if (taken < 0)
                    goto done;
                goto not_so;
            }
            if (columns_add(&c, i, key, value, k) < 0)
                goto done;
        }
    }
    result = columns_finish(&c);
    goto done;
not_so:
    result = Py_NewRef(Py_None);
done:
    columns_free(&c);
    return result;
}

/* Where ``name`` is among ``names`` (a tuple of str), or -1. */
static Py_ssize_t
index_of(PyObject *names, PyObject *name)
{
    for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(names); j++) {
        PyObject *candidate = PyTuple_GET_ITEM(names, j);
        if (PyUnicode_Check(candidate) && PyUnicode_Compare(candidate, name) == 0)
            return j;
    }
    return -1;
}

/* Positions of the attributes batch_rows reads among standard_names; 0 when one is not
 * there (then every record's are looked up by name). */
static int
find_positions(PyObject *standard, PyObject *names)
{
    if (PyTuple_GET_SIZE(standard) > MAX_STANDARD)
        return 0;
    for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(names); k++)
        if ((key_at[k] = index_of(standard, PyTuple_GET_ITEM(names, k))) < 0)
            return 0;
    created_at = index_of(standard, str_created);
    args_at = index_of(standard, str_args);
    exc_info_at = index_of(standard, str_exc_info);
    stack_info_at = index_of(standard, str_stack_info);
    return created_at >= 0 && args_at >= 0 && exc_info_at >= 0 && stack_info_at >= 0;
}

static PyObject *
configure(PyObject *module, PyObject *args)
{
    PyObject *record_type, *key, *standard, *names;
    if (!PyArg_ParseTuple(args, "OUO!O!:configure", &record_type, &key, &PyTuple_Type, &standard,
                          &PyTuple_Type, &names))
        return NULL;
    Py_ssize_t at = -1;
    for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(names); k++) {
        PyObject *name = PyTuple_GET_ITEM(names, k);
        if (!PyUnicode_CheckExact(name))
            at = -2;
        else if (at == -1 && PyUnicode_CompareWithASCIIString(name, "msg") == 0)
            at = k;
    }
    if (!PyType_Check(record_type) || PyTuple_GET_SIZE(standard) == 0 || at < 0 ||
        PyTuple_GET_SIZE(names) > 32) {
        PyErr_SetString(PyExc_ValueError,
                        "configure(LogRecord, MESSAGE_KEY, standard_names, key_names with 'msg')");
        return NULL;
    }
    Py_INCREF(record_type);
    Py_XSETREF(log_record_type, record_type);
    Py_INCREF(key);
    Py_XSETREF(message_key, key);
    Py_INCREF(names);
    Py_XSETREF(key_names, names);
    standard_count = PyTuple_GET_SIZE(standard);
    msg_at = at;
    if (find_positions(standard, names)) {
        Py_INCREF(standard);
        Py_XSETREF(standard_names, standard);
    } else {
        Py_CLEAR(standard_names);
    }
    Py_RETURN_NONE;
}

/* render_rows(messages, site_rows, templates, args, cap): ``messages`` with each None row
 * rendered as format's _rendered_at_once renders it, ``template % args`` (a list's args
 * as a tuple; no args: the template itself), or None when one row would not be the same
 * that way (the template raises, gives no str, or a message over ``cap`` characters):
 * then format renders each row the careful way. The caller has checked the templates
 * (format.deferrable_template). */
static PyObject *
render_rows(PyObject *module, PyObject *args)
{
    PyObject *messages, *site_rows, *templates, *row_args;
    Py_ssize_t cap;
    if (!PyArg_ParseTuple(args, "O!O!O!O!n:render_rows", &PyList_Type, &messages, &PyList_Type,
                          &site_rows, &PyList_Type, &templates, &PyList_Type, &row_args, &cap))
        return NULL;
    Py_ssize_t count = PyList_GET_SIZE(messages), sites = PyList_GET_SIZE(templates);
    if (PyList_GET_SIZE(site_rows) != count || PyList_GET_SIZE(row_args) != count)
        Py_RETURN_NONE;
    PyObject *out = PyList_New(count);
    if (out == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *message = PyList_GET_ITEM(messages, i);
        if (message != Py_None) {
            Py_INCREF(message);
            PyList_SET_ITEM(out, i, message);
            continue;
        }
        Py_ssize_t site = PyLong_AsSsize_t(PyList_GET_ITEM(site_rows, i));
        if (site < 0 || site >= sites)
            goto not_so;
        PyObject *template = PyList_GET_ITEM(templates, site), *arg = PyList_GET_ITEM(row_args, i);
        int has_args = PyObject_IsTrue(arg);
        if (has_args < 0)
            goto not_so;
        PyObject *rendered;
        if (!has_args) {
            rendered = Py_NewRef(template);
        } else if (PyList_CheckExact(arg)) {
            PyObject *tuple = PyList_AsTuple(arg);
            rendered = tuple == NULL ? NULL : PyNumber_Remainder(template, tuple);
            Py_XDECREF(tuple);
        } else {
            rendered = PyNumber_Remainder(template, arg);
        }
        if (rendered == NULL)
            goto not_so;
        PyList_SET_ITEM(out, i, rendered);
        if (!PyUnicode_CheckExact(rendered) || PyUnicode_GET_LENGTH(rendered) > cap) {
            Py_DECREF(out);
            Py_RETURN_NONE;
        }
    }
    return out;
not_so:
    /* The rows from i on are still NULL in out: list_dealloc skips them. */
    Py_DECREF(out);
    PyErr_Clear();
    Py_RETURN_NONE;
}

/* --- Handle: RerunHandler.handle for the common record, in one C call ---
 *
 * RerunHandler's ``handle`` is a Handle: a method descriptor (as a C method is, so that
 * ``hdlr.handle(record)`` makes no bound method) called with the handler and the record.
 * For an accepting handler with no filters, no formatter, RerunHandler's own emit and a
 * running flusher, and a plain record logged on a thread that is not the package's, it
 * does what the Python handle and emit do: capture, append to the queue, wake the flusher when a batch is
 * full or the flusher was quiet. Anything else goes to the Python ``handle`` (``slow``)
 * before anything was done, so that one decides. It reads the handler's state from its
 * instance dict at every call: fork, set_sink, close and setFormatter change it there. */

static PyObject *str_accepting, *str_filters, *str_thread_attr, *str_formatter, *str_queue,
    *str_batch_size, *str_handoff, *str_quiet_until, *str_trace_imported, *str_on_batch_ready,
    *str_wake_flusher, *str_handle_error, *str_thread, *str_plain_capture, *str_emit;

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *slow;     /* RerunHandler.handle, the Python one: slow(handler, record) */
    PyObject *emit;     /* RerunHandler.emit: a handler whose emit is another gets slow */
    PyObject *append;   /* collections.deque.append */
    PyObject *own;      /* own_threads.OWN, the idents of the package's threads */
    PyObject *flags;    /* capture's globals, for _trace_imported and _plain_capture */
    int returns_record; /* Handler.handle returns the record (3.12+), else True */
} Handle;

/* The instance dict of ``obj`` (a new reference), or NULL with no error set. */
static PyObject *
dict_of(PyObject *obj)
{
    PyObject *found = PyObject_GenericGetDict(obj, NULL);
    if (found != NULL && PyDict_CheckExact(found))
        return found;
    Py_XDECREF(found);
    PyErr_Clear();
    return NULL;
}

/* 1 when the fast path applies to the handler in its state ``hd``, 0 when not. */
static int
handler_is_plain(Handle *self, PyObject *handler, PyObject *hd)
{
    if (PyDict_GetItemWithError(hd, str_accepting) != Py_True)
        return 0;
    /* An emit of a subclass, or one patched onto the class or the handler (a test's
     * mock), is called by the Python handle. */
    if (_PyType_Lookup(Py_TYPE(handler), str_emit) != self->emit ||
        PyDict_GetItemWithError(hd, str_emit) != NULL)
        return 0;
    PyObject *filters = PyDict_GetItemWithError(hd, str_filters);
    if (filters == NULL || !PyList_CheckExact(filters) || PyList_GET_SIZE(filters) != 0)
        return 0;
    PyObject *thread = PyDict_GetItemWithError(hd, str_thread_attr);
    if (thread == NULL || thread == Py_None)
        return 0;
    if (PyDict_GetItemWithError(hd, str_formatter) != Py_None)
        return 0;
    /* capture's own switches: the app imported opentelemetry.trace (the record's span is
     * read in Python), or the tests turned the C capture off. */
    PyObject *plain_capture = PyDict_GetItemWithError(self->flags, str_plain_capture);
    return PyDict_GetItemWithError(self->flags, str_trace_imported) == Py_False &&
           plain_capture != NULL && plain_capture != Py_None;
}

/* After a record is queued: wake the flusher as RerunHandler.emit does; -1 on error. */
static int
after_append(Handle *self, PyObject *handler, PyObject *hd, PyObject *queue, PyObject *state)
{
    PyObject *batch_size = PyDict_GetItemWithError(hd, str_batch_size);
    Py_ssize_t size = PyObject_Length(queue);
    if (batch_size == NULL || size < 0)
        return batch_size == NULL && !PyErr_Occurred() ? 0 : -1;
    Py_ssize_t batch = PyLong_AsSsize_t(batch_size);
    if (batch == -1 && PyErr_Occurred())
        return -1;
    PyObject *called = NULL;
    if (size >= batch) {
        called = PyObject_CallMethodOneArg(handler, str_on_batch_ready, queue);
    } else {
        PyObject *handoff = PyDict_GetItemWithError(hd, str_handoff);
        PyObject *created = PyDict_GetItemWithError(state, str_created);
        if (handoff == NULL || created == NULL)
            return PyErr_Occurred() ? -1 : 0;
        PyObject *quiet = PyObject_GetAttr(handoff, str_quiet_until);
        if (quiet == NULL)
            return -1;
        int due = PyObject_RichCompareBool(created, quiet, Py_GE);
        Py_DECREF(quiet);
        if (due <= 0)
            return due;
        called = PyObject_CallMethodNoArgs(handler, str_wake_flusher);
    }
    if (called == NULL)
        return -1;
    Py_DECREF(called);
    return 0;
}

/* The record was taken (or ``failed``: handleError was called, as emit does). */
static PyObject *
handled(Handle *self, PyObject *handler, PyObject *record, int failed)
{
    if (failed) {
        if (PyErr_ExceptionMatches(PyExc_RecursionError))
            return NULL; /* as emit: never swallowed */
        /* handleError reads the error from sys.exc_info(), as in emit's except block. */
        PyObject *type, *value, *traceback, *was_type, *was_value, *was_traceback;
        PyErr_Fetch(&type, &value, &traceback);
        PyErr_NormalizeException(&type, &value, &traceback);
        if (traceback != NULL && value != NULL)
            PyException_SetTraceback(value, traceback);
        PyErr_GetExcInfo(&was_type, &was_value, &was_traceback);
        PyErr_SetExcInfo(type, value, traceback);
        PyObject *done = PyObject_CallMethodOneArg(handler, str_handle_error, record);
        PyErr_SetExcInfo(was_type, was_value, was_traceback);
        if (done == NULL)
            return NULL;
        Py_DECREF(done);
    }
    PyObject *result = self->returns_record ? record : Py_True;
    Py_INCREF(result);
    return result;
}

/* The fast path for ``record`` given the handler's state ``hd``: NULL with no error set
 * when it does not apply (nothing was done: the Python handle decides). */
static PyObject *
handle_fast(Handle *self, PyObject *handler, PyObject *hd, PyObject *record)
{
    if (log_record_type == NULL || !handler_is_plain(self, handler, hd)) {
        PyErr_Clear();
        return NULL;
    }
    PyObject *state = record_state(record);
    if (state == NULL || state == Py_None) {
        Py_XDECREF(state);
        PyErr_Clear();
        return NULL;
    }
    /* A record of the package's own thread (the Python handle drops it), an unhashable
     * thread, a queue gone, a record capture() must see: nothing done here. */
    PyObject *thread = PyDict_GetItemWithError(state, str_thread);
    PyObject *queue = PyDict_GetItemWithError(hd, str_queue);
    PyObject *copy = NULL;
    if ((thread == NULL || PySet_GET_SIZE(self->own) == 0 || PySet_Contains(self->own, thread) == 0) &&
        queue != NULL)
        copy = captured_copy(state);
    if (copy == NULL || copy == Py_None) {
        Py_XDECREF(copy);
        Py_DECREF(state);
        PyErr_Clear();
        return NULL;
    }
    Py_INCREF(queue);
    PyObject *call[2] = {queue, copy};
    PyObject *appended = PyObject_Vectorcall(self->append, call, 2, NULL);
    Py_DECREF(copy);
    int failed = appended == NULL;
    Py_XDECREF(appended);
    if (!failed)
        failed = after_append(self, handler, hd, queue, state) < 0;
    Py_DECREF(queue);
    Py_DECREF(state);
    return handled(self, handler, record, failed);
}

static PyObject *
handle_call(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Handle *self = (Handle *)callable;
    if (PyVectorcall_NARGS(nargsf) != 2 || kwnames != NULL) {
        PyErr_SetString(PyExc_TypeError, "handle(handler, record) takes two arguments");
        return NULL;
    }
    PyObject *handler = args[0], *record = args[1];
    PyObject *hd = dict_of(handler);
    PyObject *result = hd != NULL ? handle_fast(self, handler, hd, record) : NULL;
    Py_XDECREF(hd);
    if (result != NULL || PyErr_Occurred())
        return result;
    return PyObject_Vectorcall(self->slow, args, 2, NULL);
}

/* ``handler.handle`` outside a call: bound as a function is. */
static PyObject *
handle_get(PyObject *self, PyObject *instance, PyObject *owner)
{
    if (instance == NULL || instance == Py_None)
        return Py_NewRef(self);
    return PyMethod_New(self, instance);
}

static PyObject *
handle_doc(Handle *self, void *closure)
{
    return PyObject_GetAttrString(self->slow, "__doc__");
}

static PyGetSetDef handle_getset[] = {
    {"__doc__", (getter)handle_doc, NULL, NULL, NULL},
    {NULL},
};

static PyMemberDef handle_members[] = {
    {"__wrapped__", T_OBJECT, offsetof(Handle, slow), READONLY, "The Python handle."},
    {NULL},
};

static PyObject *
handle_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    PyObject *slow, *emit, *append, *own, *flags;
    int returns_record;
    static char *names[] = {"slow", "emit", "append", "own", "flags", "returns_record", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOO!O!p:Handle", names, &slow, &emit, &append,
                                     &PySet_Type, &own, &PyDict_Type, &flags, &returns_record))
        return NULL;
    Handle *self = (Handle *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->vectorcall = handle_call;
    self->slow = Py_NewRef(slow);
    self->emit = Py_NewRef(emit);
    self->append = Py_NewRef(append);
    self->own = Py_NewRef(own);
    self->flags = Py_NewRef(flags);
    self->returns_record = returns_record;
    return (PyObject *)self;
}

static int
handle_traverse(Handle *self, visitproc visit, void *arg)
{
    Py_VISIT(self->slow);
    Py_VISIT(self->emit);
    Py_VISIT(self->append);
    Py_VISIT(self->own);
    Py_VISIT(self->flags);
    return 0;
}

static int
handle_clear(Handle *self)
{
    Py_CLEAR(self->slow);
    Py_CLEAR(self->emit);
    Py_CLEAR(self->append);
    Py_CLEAR(self->own);
    Py_CLEAR(self->flags);
    return 0;
}

static void
handle_dealloc(Handle *self)
{
    PyObject_GC_UnTrack(self);
    handle_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject HandleType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "rerun_logging._speedups.Handle",

    .tp_basicsize = sizeof(Handle),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL |
                Py_TPFLAGS_METHOD_DESCRIPTOR,
    .tp_descr_get = handle_get,
    .tp_getset = handle_getset,
    .tp_members = handle_members,
    .tp_new = handle_new,
    .tp_traverse = (traverseproc)handle_traverse,
    .tp_clear = (inquiry)handle_clear,
    .tp_dealloc = (destructor)handle_dealloc,
    .tp_vectorcall_offset = offsetof(Handle, vectorcall),
    .tp_call = PyVectorcall_Call,
};

/* --- signals a handler was installed for, noted as they arrive (rerun_logging.exits) ---
 *
 * Python runs a signal's handler on the main thread at its next bytecode. A signal that
 * another thread takes, or that lands just before the main thread blocks in C (sem_wait,
 * a lock, a read), only marks the handler as due: the main thread sleeps on and the
 * handler never runs. watch_signal(signum) puts noted_handler in front of the handler
 * Python installed (it calls that one, as before) and notes the signal; the flusher,
 * which wakes every flush_interval anyway, takes the note (take_signal) and delivers the
 * signal again to the main thread, whose wait then ends with EINTR and runs it.
 *
 * With no flusher running (deliverers: each one counts itself while it runs), nobody
 * would deliver it again, and there is nothing queued to keep: the signal then takes its
 * default action at once, as it would without the package. A forked child starts with
 * none (its flushers are the parent's, gone with the fork). */

#include <signal.h>
#include <string.h>

#ifndef _WIN32
#include <pthread.h>

#define MAX_SIGNAL 65
static struct sigaction chained[MAX_SIGNAL];
static volatile sig_atomic_t noted = 0;
static volatile sig_atomic_t running_deliverers = 0;

static void
default_action_now(int signum)
{
    struct sigaction fallback;
    memset(&fallback, 0, sizeof fallback);
    fallback.sa_handler = SIG_DFL;
    sigemptyset(&fallback.sa_mask);
    sigaction(signum, &fallback, NULL);
    raise(signum); /* blocked while this handler runs: delivered as it returns */
}

static void
noted_handler(int signum, siginfo_t *info, void *context)
{
    int saved = errno;
    noted = signum;
    if (running_deliverers <= 0) {
        default_action_now(signum);
    } else if (signum > 0 && signum < MAX_SIGNAL) {
        struct sigaction *next = &chained[signum];
        if (next->sa_flags & SA_SIGINFO)
            next->sa_sigaction(signum, info, context);
        else if (next->sa_handler != SIG_DFL && next->sa_handler != SIG_IGN)
            next->sa_handler(signum);
    }
    errno = saved;
}

static PyObject *
watch_signal(PyObject *module, PyObject *arg)
{
    long signum = PyLong_AsLong(arg);
    if (signum == -1 && PyErr_Occurred())
        return NULL;
    if (signum <= 0 || signum >= MAX_SIGNAL) {
        PyErr_Format(PyExc_ValueError, "watch_signal: no signal %ld", signum);
        return NULL;
    }
    struct sigaction current, ours;
    if (sigaction((int)signum, NULL, &current) != 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    int has_function = (current.sa_flags & SA_SIGINFO) ||
                       (current.sa_handler != SIG_DFL && current.sa_handler != SIG_IGN);
    if (!has_function || ((current.sa_flags & SA_SIGINFO) && current.sa_sigaction == noted_handler))
        Py_RETURN_FALSE;
    chained[signum] = current;
    memset(&ours, 0, sizeof ours);
    ours.sa_sigaction = noted_handler;
    ours.sa_mask = current.sa_mask;
    ours.sa_flags = (current.sa_flags & ~SA_RESETHAND) | SA_SIGINFO;
    if (sigaction((int)signum, &ours, NULL) != 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    Py_RETURN_TRUE;
}

static PyObject *
take_signal(PyObject *module, PyObject *unused)
{
    int signum = noted;
    noted = 0;
    return PyLong_FromLong(signum);
}

static PyObject *
deliverers(PyObject *module, PyObject *arg)
{
    long change = PyLong_AsLong(arg);
    if (change == -1 && PyErr_Occurred())
        return NULL;
    running_deliverers += (sig_atomic_t)change;
    return PyLong_FromLong(running_deliverers);
}

static void
forget_in_child(void)
{
    running_deliverers = 0;
    noted = 0;
}

static int
watch_at_fork(void)
{
    return pthread_atfork(NULL, NULL, forget_in_child);
}
#else /* no sigaction: nothing is watched */
static PyObject *
watch_signal(PyObject *module, PyObject *arg)
{
    Py_RETURN_FALSE;
}

static PyObject *
take_signal(PyObject *module, PyObject *unused)
{
    return PyLong_FromLong(0);
}

static PyObject *
deliverers(PyObject *module, PyObject *arg)
{
    return PyLong_FromLong(0);
}

static int
watch_at_fork(void)
{
    return 0;
}
#endif

/* In _arrow.c: the Arrow columns of rerun_sdk.mapping. */
PyObject *arrow_columns(PyObject *module, PyObject *args);
PyObject *group_rows(PyObject *module, PyObject *args);
int arrow_add_types(PyObject *module);

static PyMethodDef methods[] = {
    {"plain_capture", plain_capture, METH_O,
     "What capture() returns for a plain record (None: take the Python path)."},
    {"middles", middles, METH_O,
     "Each captured record's extras: its entries after the standard ones, before the last."},
    {"batch_rows", batch_rows, METH_O,
     "What record_batch reads of each captured record, in one pass (None: the Python steps)."},
    {"rows_fit", rows_fit, METH_VARARGS,
     "rows_fit(rows, cap): whether every row certainly packs as it is within cap bytes."},
    {"extra_columns", extra_columns, METH_O,
     "Each extra key's values, a row per record, and their common kind."},
    {"extra_columns_of", extra_columns_of, METH_VARARGS,
     "extra_columns_of(states, reserved, cap): extra_columns of the records' extras (None: not so)."},
    {"render_rows", render_rows, METH_VARARGS,
     "render_rows(messages, site_rows, templates, args, cap): the None rows rendered (None: not so)."},
    {"arrow_columns", arrow_columns, METH_VARARGS,
     "arrow_columns(fields, index, rows): each field's Arrow column (None: not made here)."},
    {"group_rows", group_rows, METH_VARARGS,
     "group_rows(site_rows, site_groups, groups): each group's rows, in order."},
    {"configure", configure, METH_VARARGS,
     "configure(LogRecord, MESSAGE_KEY, standard_names, key_names): set once by capture."},
    {"watch_signal", watch_signal, METH_O,
     "Note each arrival of signum, in front of its current handler (False: it has none)."},
    {"take_signal", take_signal, METH_NOARGS,
     "The last watched signal that arrived since the last call (0: none), and forget it."},
    {"deliverers", deliverers, METH_O,
     "Add change to the count of running flushers (0: a watched signal kills at once)."},
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
    str_created = PyUnicode_InternFromString("created");
    str_stack_info = PyUnicode_InternFromString("stack_info");
    if (!str_dict || !str_msg || !str_args || !str_exc_info || !str_exc_text || !str_created ||
        !str_stack_info)
        return NULL;
    static const char *const texts[] = {"_accepting", "filters", "_thread", "formatter", "_queue",
                                        "batch_size", "_handoff", "quiet_until", "_trace_imported",
                                        "_on_batch_ready", "_wake_flusher", "handleError", "thread",
                                        "_plain_capture", "emit"};
    PyObject **const interned[] = {&str_accepting, &str_filters, &str_thread_attr, &str_formatter,
                                   &str_queue, &str_batch_size, &str_handoff, &str_quiet_until,
                                   &str_trace_imported, &str_on_batch_ready, &str_wake_flusher,
                                   &str_handle_error, &str_thread, &str_plain_capture, &str_emit};
    for (size_t k = 0; k < sizeof texts / sizeof texts[0]; k++)
        if ((*interned[k] = PyUnicode_InternFromString(texts[k])) == NULL)
            return NULL;
    if (PyType_Ready(&HandleType) < 0)
        return NULL;
    int failed = watch_at_fork();
    if (failed) {
        errno = failed; /* pthread_atfork returns its error */
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    PyObject *module = PyModule_Create(&module_def);
    if (module != NULL && (PyModule_AddObjectRef(module, "Handle", (PyObject *)&HandleType) < 0 ||
                           arrow_add_types(module) < 0)) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
