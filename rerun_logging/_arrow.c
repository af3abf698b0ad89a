/* The Arrow columns of rerun_sdk.mapping, made in C and handed to Rerun through the
 * Arrow C data interface (part of rerun_logging._speedups, whose method table names
 * these functions).
 *
 * arrow_columns(fields, index, rows) makes one ArrowColumn per field from Python values.
 * Each field is (values, kind, as_list); row i of every field's column holds
 * values[index[rows[i]]] (index None: values[rows[i]]; rows None: as if rows were
 * range(len(index)), or range(len(values))). The site and context fields of a batch
 * share their index (site_rows, ctx_rows), so one call takes them all: each row's entry
 * is found once, and each entry's value read once however many rows have it.
 *
 * As a list column (as_list), each row is a one-value list, or null where the value is
 * None; otherwise no row may be None. Kinds: ARROW_UTF8 (str), ARROW_INT64 and
 * ARROW_UINT64 (int; one they cannot hold is null, as mapping._in_range makes it),
 * ARROW_TIMESTAMP (int64 ns, a time before 1970 clamped to it; never null),
 * ARROW_FLOAT64 (float) and ARROW_BOOL (bool). A field is None where a value is of
 * another type, text has no UTF-8 form (a lone surrogate), or the text is too long for
 * int32 offsets: mapping then takes its Python steps for that field.
 *
 * An ArrowColumn has len(), null_count and nbytes, and __arrow_c_array__ (the PyCapsule
 * interface), which rr.send_columns takes as it takes a pyarrow array, and pa.array()
 * reads. Why not pyarrow: its constructors (from_buffers validates the array), take,
 * filter, is_valid and nbytes give up the GIL while they run, and the flusher then
 * waits for the app's logging thread to give it back, up to the switch interval (5 ms)
 * each time: forty such waits a batch made the rerun sinks fall behind a fast app.
 * Nothing here lets the GIL go.
 *
 * The buffers are malloc'd, owned by a reference-counted payload that each exported
 * array holds: Rerun releases arrays on its own threads, without the GIL, and maybe
 * after the interpreter has ended, so a release only decrements a count and frees. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* --- the Arrow C data interface (https://arrow.apache.org/docs/format/CDataInterface.html) */

#define ARROW_FLAG_NULLABLE 2

struct ArrowSchema {
    const char *format;
    const char *name;
    const char *metadata;
    int64_t flags;
    int64_t n_children;
    struct ArrowSchema **children;
    struct ArrowSchema *dictionary;
    void (*release)(struct ArrowSchema *);
    void *private_data;
};

struct ArrowArray {
    int64_t length;
    int64_t null_count;
    int64_t offset;
    int64_t n_buffers;
    int64_t n_children;
    const void **buffers;
    struct ArrowArray **children;
    struct ArrowArray *dictionary;
    void (*release)(struct ArrowArray *);
    void *private_data;
};

enum { ARROW_UTF8 = 0, ARROW_INT64 = 1, ARROW_UINT64 = 2, ARROW_TIMESTAMP = 3, ARROW_FLOAT64 = 4, ARROW_BOOL = 5 };
static const char *const FORMATS[] = {"u", "l", "L", "tsn:", "g", "b"};

/* --- the payload: a column's buffers, shared by the Python object and its exports ---- */

typedef struct {
    long refs;
    int kind, as_list;
    int64_t rows, nulls, values;     /* rows (the list's, else the values'), null rows, values */
    void *validity, *list_offsets;   /* the list's (validity NULL: no nulls) */
    void *value_offsets, *data;      /* the values' (value_offsets: text only) */
    int64_t nbytes;
    const void *list_buffers[2];     /* what an exported list array points at */
    const void *value_buffers[3];    /* ... and its values (or the array itself) */
} Payload;

static void
payload_ref(Payload *payload)
{
#ifdef _MSC_VER
    _InterlockedIncrement(&payload->refs);
#else
    __atomic_add_fetch(&payload->refs, 1, __ATOMIC_RELAXED);
#endif
}

/* Drops a reference; frees the payload with the last. Needs no GIL (see the top). */
static void
payload_unref(Payload *payload)
{
#ifdef _MSC_VER
    long left = _InterlockedDecrement(&payload->refs);
#else
    long left = __atomic_sub_fetch(&payload->refs, 1, __ATOMIC_ACQ_REL);
#endif
    if (left)
        return;
    free(payload->validity);
    free(payload->list_offsets);
    free(payload->value_offsets);
    free(payload->data);
    free(payload);
}

/* A zeroed block of ``size`` bytes (at least one: a buffer is never NULL), into *out and
 * counted in nbytes; 0 when out of memory. */
static int
buffer_of(Payload *payload, void **out, size_t size)
{
    *out = calloc(size ? size : 1, 1);
    payload->nbytes += (int64_t)size;
    return *out != NULL;
}

/* --- export ------------------------------------------------------------------------------ */

static void
release_schema(struct ArrowSchema *schema)
{
    for (int64_t i = 0; i < schema->n_children; i++) {
        struct ArrowSchema *child = schema->children[i];
        if (child->release != NULL)
            child->release(child);
        free(child);
    }
    free(schema->children);
    schema->release = NULL;
}

/* A child array: its memory is its parent's, its buffers the payload's. */
static void
release_child(struct ArrowArray *array)
{
    payload_unref(array->private_data);
    array->release = NULL;
}

static void
release_array(struct ArrowArray *array)
{
    for (int64_t i = 0; i < array->n_children; i++) {
        struct ArrowArray *child = array->children[i];
        if (child->release != NULL)
            child->release(child);
        free(child);
    }
    free(array->children);
    payload_unref(array->private_data);
    array->release = NULL;
}

static int
export_schema(const Payload *payload, struct ArrowSchema *schema)
{
    memset(schema, 0, sizeof *schema);
    schema->format = FORMATS[payload->kind];
    schema->name = "";
    schema->flags = ARROW_FLAG_NULLABLE;
    schema->release = release_schema;
    if (!payload->as_list)
        return 0;
    struct ArrowSchema *child = calloc(1, sizeof *child);
    schema->children = malloc(sizeof *schema->children);
    if (child == NULL || schema->children == NULL) {
        free(child);
        return -1;  /* release_schema frees what was made */
    }
    child->format = FORMATS[payload->kind];
    child->name = "item";
    child->flags = ARROW_FLAG_NULLABLE;
    child->release = release_schema;
    schema->children[0] = child;
    schema->n_children = 1;
    schema->format = "+l";
    return 0;
}

static void
values_array(Payload *payload, struct ArrowArray *array, void (*release)(struct ArrowArray *))
{
    memset(array, 0, sizeof *array);
    array->length = payload->values;
    array->null_count = payload->as_list ? 0 : payload->nulls;
    array->n_buffers = payload->kind == ARROW_UTF8 ? 3 : 2;
    array->buffers = payload->value_buffers;
    array->release = release;
    array->private_data = payload;
    payload_ref(payload);
}

static int
export_array(Payload *payload, struct ArrowArray *array)
{
    if (!payload->as_list) {
        values_array(payload, array, release_array);
        return 0;
    }
    memset(array, 0, sizeof *array);
    array->length = payload->rows;
    array->null_count = payload->nulls;
    array->n_buffers = 2;
    array->buffers = payload->list_buffers;
    array->release = release_array;
    array->private_data = payload;
    payload_ref(payload);
    struct ArrowArray *child = malloc(sizeof *child);
    array->children = malloc(sizeof *array->children);
    if (child == NULL || array->children == NULL) {
        free(child);
        return -1;  /* release_array frees what was made */
    }
    values_array(payload, child, release_child);
    array->children[0] = child;
    array->n_children = 1;
    return 0;
}

static void
schema_capsule_free(PyObject *capsule)
{
    struct ArrowSchema *schema = PyCapsule_GetPointer(capsule, "arrow_schema");
    if (schema != NULL && schema->release != NULL)
        schema->release(schema);
    free(schema);
}

static void
array_capsule_free(PyObject *capsule)
{
    struct ArrowArray *array = PyCapsule_GetPointer(capsule, "arrow_array");
    if (array != NULL && array->release != NULL)
        array->release(array);
    free(array);
}

/* --- ArrowColumn ------------------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    Payload *payload;
} ArrowColumn;

static void
column_dealloc(ArrowColumn *self)
{
    if (self->payload != NULL)
        payload_unref(self->payload);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static Py_ssize_t
column_length(ArrowColumn *self)
{
    return (Py_ssize_t)self->payload->rows;
}

static PyObject *
column_export(ArrowColumn *self, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"requested_schema", NULL};
    PyObject *requested = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O:__arrow_c_array__", names, &requested))
        return NULL;
    if (requested != Py_None) {
        PyErr_SetString(PyExc_NotImplementedError, "ArrowColumn is exported with its own schema only");
        return NULL;
    }
    struct ArrowSchema *schema = calloc(1, sizeof *schema);
    struct ArrowArray *array = calloc(1, sizeof *array);
    PyObject *schema_capsule = NULL, *array_capsule = NULL;
    if (schema == NULL || array == NULL) {
        free(schema);
        free(array);
        return PyErr_NoMemory();
    }
    int failed = export_schema(self->payload, schema) | export_array(self->payload, array);
    schema_capsule = PyCapsule_New(schema, "arrow_schema", schema_capsule_free);
    if (schema_capsule == NULL) {
        schema->release(schema);
        free(schema);
    }
    array_capsule = PyCapsule_New(array, "arrow_array", array_capsule_free);
    if (array_capsule == NULL) {
        array->release(array);
        free(array);
    }
    if (failed || schema_capsule == NULL || array_capsule == NULL) {
        Py_XDECREF(schema_capsule);
        Py_XDECREF(array_capsule);
        return PyErr_Occurred() ? NULL : PyErr_NoMemory();
    }
    return Py_BuildValue("NN", schema_capsule, array_capsule);
}

static PyObject *
column_null_count(ArrowColumn *self, void *closure)
{
    return PyLong_FromLongLong(self->payload->nulls);
}

static PyObject *
column_nbytes(ArrowColumn *self, void *closure)
{
    return PyLong_FromLongLong(self->payload->nbytes);
}

static PyMethodDef column_methods[] = {
    {"__arrow_c_array__", (PyCFunction)(void (*)(void))column_export, METH_VARARGS | METH_KEYWORDS,
     "The column as (schema, array) PyCapsules of the Arrow C data interface."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef column_getset[] = {
    {"null_count", (getter)column_null_count, NULL, "How many rows are null.", NULL},
    {"nbytes", (getter)column_nbytes, NULL, "The bytes of the column's buffers.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PySequenceMethods column_as_sequence = {.sq_length = (lenfunc)column_length};

static PyTypeObject ArrowColumnType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "rerun_logging._speedups.ArrowColumn",
    .tp_basicsize = sizeof(ArrowColumn),
    .tp_dealloc = (destructor)column_dealloc,
    .tp_as_sequence = &column_as_sequence,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "An Arrow column made by arrow_columns, exported through __arrow_c_array__.",
    .tp_methods = column_methods,
    .tp_getset = column_getset,
};

int
arrow_add_types(PyObject *module)
{
    if (PyType_Ready(&ArrowColumnType) < 0)
        return -1;
    return PyModule_AddObjectRef(module, "ArrowColumn", (PyObject *)&ArrowColumnType);
}

/* --- making a column ---------------------------------------------------------------------- */

/* What one of a field's values goes into its column as, read once (fits: 1 a value, 0
 * null, -1 not of the kind, ENTRY_UNSEEN not read yet). */
typedef struct {
    const char *text;
    Py_ssize_t size;
    long long number;
    signed char fits;
} Entry;
#define ENTRY_UNSEEN 2

/* The ``at``-th of the ints ``items`` as an index below ``limit``; -1 with an error set. */
static Py_ssize_t
index_at(PyObject **items, Py_ssize_t at, Py_ssize_t limit)
{
    PyObject *item = items[at];
    Py_ssize_t found = PyLong_CheckExact(item) ? PyLong_AsSsize_t(item) : -1;
    if (found < 0 || found >= limit) {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_IndexError, "row index at %zd out of range", at);
        return -1;
    }
    return found;
}

/* ``value`` read as a ``kind`` column's entry (no error is ever left set). */
static void
read_entry(PyObject *value, int kind, Entry *entry)
{
    entry->fits = -1;
    if (value == Py_None) {
        entry->fits = 0;
    } else if (kind == ARROW_UTF8) {
        if (!PyUnicode_CheckExact(value))
            return;
        entry->text = PyUnicode_AsUTF8AndSize(value, &entry->size);
        if (entry->text == NULL) {
            PyErr_Clear();
            return;
        }
        entry->fits = 1;
    } else if (kind == ARROW_FLOAT64) {
        if (!PyFloat_CheckExact(value))
            return;
        double real = PyFloat_AS_DOUBLE(value);
        memcpy(&entry->number, &real, sizeof real);
        entry->fits = 1;
    } else if (kind == ARROW_BOOL) {
        if (!PyBool_Check(value))
            return;
        entry->number = value == Py_True;
        entry->fits = 1;
    } else if (PyLong_CheckExact(value)) {
        if (kind == ARROW_UINT64) {
            unsigned long long number = PyLong_AsUnsignedLongLong(value);
            if (number == (unsigned long long)-1 && PyErr_Occurred()) {
                PyErr_Clear();
                entry->fits = 0;  /* negative, or past uint64 */
                return;
            }
            memcpy(&entry->number, &number, sizeof number);
            entry->fits = 1;
            return;
        }
        int overflow = 0;
        entry->number = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (overflow) {
            entry->fits = kind == ARROW_TIMESTAMP ? -1 : 0;
            return;
        }
        if (entry->number == -1 && PyErr_Occurred()) {
            PyErr_Clear();
            return;
        }
        if (kind == ARROW_TIMESTAMP && entry->number < 0)
            entry->number = 0;
        entry->fits = 1;
    }
}

/* Fills ``payload``'s buffers from the rows' entries (read by make_column). 0 when out
 * of memory. */
static int
fill(Payload *payload, const Py_ssize_t *at, const Entry *entries, const char *present, Py_ssize_t text_bytes)
{
    Py_ssize_t n = payload->rows;
    if (payload->as_list) {
        if (!buffer_of(payload, &payload->list_offsets, (n + 1) * 4))
            return 0;
        int32_t *offsets = payload->list_offsets, total = 0;
        for (Py_ssize_t i = 0; i < n; i++)
            offsets[i + 1] = (total += present[i]);
        if (payload->nulls) {
            if (!buffer_of(payload, &payload->validity, (n + 7) / 8))
                return 0;
            unsigned char *bits = payload->validity;
            for (Py_ssize_t i = 0; i < n; i++)
                bits[i >> 3] |= (unsigned char)(present[i] << (i & 7));
        }
    }
    Py_ssize_t k = 0;
    if (payload->kind == ARROW_UTF8) {
        if (!buffer_of(payload, &payload->value_offsets, (payload->values + 1) * 4) ||
            !buffer_of(payload, &payload->data, text_bytes))
            return 0;
        int32_t *offsets = payload->value_offsets;
        char *out = payload->data;
        Py_ssize_t written = 0;
        for (Py_ssize_t i = 0; i < n; i++) {
            if (present[i]) {
                const Entry *entry = &entries[at[i]];
                memcpy(out + written, entry->text, entry->size);
                written += entry->size;
                offsets[++k] = (int32_t)written;
            }
        }
    } else if (payload->kind == ARROW_BOOL) {
        if (!buffer_of(payload, &payload->data, (payload->values + 7) / 8))
            return 0;
        unsigned char *bits = payload->data;
        for (Py_ssize_t i = 0; i < n; i++) {
            if (present[i]) {
                bits[k >> 3] |= (unsigned char)(entries[at[i]].number << (k & 7));
                k++;
            }
        }
    } else {
        if (!buffer_of(payload, &payload->data, payload->values * 8))
            return 0;
        long long *out = payload->data;
        for (Py_ssize_t i = 0; i < n; i++)
            if (present[i])
                out[k++] = entries[at[i]].number;
    }
    payload->list_buffers[0] = payload->validity;
    payload->list_buffers[1] = payload->list_offsets;
    payload->value_buffers[0] = NULL;
    payload->value_buffers[1] = payload->kind == ARROW_UTF8 ? payload->value_offsets : payload->data;
    payload->value_buffers[2] = payload->data;
    return 1;
}

/* The ArrowColumn of one field, Py_None when it is not so, NULL on error. ``at`` gives
 * each of the ``n`` rows' entry among the ``count`` ``values``; ``entries`` and
 * ``present`` have room for ``count`` and ``n``. */
static PyObject *
make_column(PyObject **values, Py_ssize_t count, const Py_ssize_t *at, Py_ssize_t n, int kind,
            int as_list, Entry *entries, char *present)
{
    for (Py_ssize_t i = 0; i < count; i++)
        entries[i].fits = ENTRY_UNSEEN;
    Py_ssize_t nulls = 0, text_bytes = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Entry *entry = &entries[at[i]];
        if (entry->fits == ENTRY_UNSEEN)
            read_entry(values[at[i]], kind, entry);
        if (entry->fits < 0 || (entry->fits == 0 && !as_list))
            Py_RETURN_NONE;
        present[i] = (char)entry->fits;
        nulls += !entry->fits;
        if (entry->fits && kind == ARROW_UTF8)
            text_bytes += entry->size;
    }
    if (text_bytes > INT32_MAX || n > INT32_MAX - 1)
        Py_RETURN_NONE;
    Payload *payload = calloc(1, sizeof *payload);
    if (payload == NULL)
        return PyErr_NoMemory();
    payload->refs = 1;
    payload->kind = kind;
    payload->as_list = as_list;
    payload->rows = n;
    payload->nulls = nulls;
    payload->values = n - nulls;
    if (!fill(payload, at, entries, present, text_bytes)) {
        payload_unref(payload);
        return PyErr_NoMemory();
    }
    ArrowColumn *column = PyObject_New(ArrowColumn, &ArrowColumnType);
    if (column == NULL) {
        payload_unref(payload);
        return NULL;
    }
    column->payload = payload;
    return (PyObject *)column;
}

/* Each row's entry (index[rows[i]], see the top) into a new array of *n; NULL on error.
 * *largest is the largest entry (-1: no rows). */
static Py_ssize_t *
row_entries(PyObject *index, PyObject *rows, Py_ssize_t *n, Py_ssize_t *largest)
{
    Py_ssize_t indexes = index ? PySequence_Fast_GET_SIZE(index) : PY_SSIZE_T_MAX;
    *n = rows ? PySequence_Fast_GET_SIZE(rows) : indexes;
    Py_ssize_t *at = PyMem_Malloc((*n > 0 ? *n : 1) * sizeof *at);
    if (at == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    *largest = -1;
    for (Py_ssize_t i = 0; i < *n; i++) {
        Py_ssize_t j = rows ? index_at(PySequence_Fast_ITEMS(rows), i, indexes) : i;
        if (j >= 0 && index)
            j = index_at(PySequence_Fast_ITEMS(index), j, PY_SSIZE_T_MAX);
        if (j < 0) {
            PyMem_Free(at);
            return NULL;
        }
        at[i] = j;
        if (j > *largest)
            *largest = j;
    }
    return at;
}

/* The identity entries 0..count-1 into *at (reallocated), or 0 when out of memory. */
static int
every_entry(Py_ssize_t **at, Py_ssize_t count)
{
    PyMem_Free(*at);
    *at = PyMem_Malloc((count > 0 ? count : 1) * sizeof **at);
    if (*at == NULL)
        return 0;
    for (Py_ssize_t i = 0; i < count; i++)
        (*at)[i] = i;
    return 1;
}

PyObject *
arrow_columns(PyObject *module, PyObject *args)
{
    PyObject *fields, *index_arg, *rows_arg;
    if (!PyArg_ParseTuple(args, "O!OO:arrow_columns", &PyList_Type, &fields, &index_arg, &rows_arg))
        return NULL;
    PyObject *index = NULL, *rows = NULL, *result = NULL, *values = NULL;
    Py_ssize_t *at = NULL, n = -1, largest = -1;
    Entry *entries = NULL;
    char *present = NULL;
    if (index_arg != Py_None && !(index = PySequence_Fast(index_arg, "arrow_columns: index must be a sequence")))
        goto done;
    if (rows_arg != Py_None && !(rows = PySequence_Fast(rows_arg, "arrow_columns: rows must be a sequence")))
        goto done;
    if ((index || rows) && !(at = row_entries(index, rows, &n, &largest)))
        goto done;
    if ((result = PyList_New(PyList_GET_SIZE(fields))) == NULL)
        goto done;
    for (Py_ssize_t f = 0; f < PyList_GET_SIZE(fields); f++) {
        PyObject *values_arg;
        int kind, as_list;
        if (!PyArg_ParseTuple(PyList_GET_ITEM(fields, f), "Oip:arrow_columns field", &values_arg, &kind, &as_list))
            goto error;
        if (kind < ARROW_UTF8 || kind > ARROW_BOOL) {
            PyErr_Format(PyExc_ValueError, "arrow_columns: unknown kind %d", kind);
            goto error;
        }
        if ((values = PySequence_Fast(values_arg, "arrow_columns: values must be a sequence")) == NULL)
            goto error;
        Py_ssize_t count = PySequence_Fast_GET_SIZE(values);
        if (!index && !rows && (at == NULL || n != count)) {
            if (!every_entry(&at, count)) {
                PyErr_NoMemory();
                goto error;
            }
            n = count;
            largest = count - 1;
        }
        if (largest >= count) {
            PyErr_Format(PyExc_IndexError, "arrow_columns: entry %zd of %zd values", largest, count);
            goto error;
        }
        PyMem_Free(entries);
        PyMem_Free(present);
        entries = PyMem_Malloc((count > 0 ? count : 1) * sizeof *entries);
        present = PyMem_Malloc(n > 0 ? n : 1);
        if (entries == NULL || present == NULL) {
            PyErr_NoMemory();
            goto error;
        }
        PyObject *column = make_column(PySequence_Fast_ITEMS(values), count, at, n, kind, as_list, entries, present);
        if (column == NULL)
            goto error;
        PyList_SET_ITEM(result, f, column);
        Py_CLEAR(values);
    }
    goto done;
error:
    Py_CLEAR(result);
done:
    Py_XDECREF(values);
    Py_XDECREF(index);
    Py_XDECREF(rows);
    PyMem_Free(at);
    PyMem_Free(entries);
    PyMem_Free(present);
    return result;
}

/* group_rows(site_rows, site_groups, groups): for each of ``groups`` groups, the rows
 * whose site is in it (site_groups[site_rows[row]]), in order: a batch's rows by entity
 * path, for mapping.batch_columns. */
PyObject *
group_rows(PyObject *module, PyObject *args)
{
    PyObject *site_rows, *site_groups;
    Py_ssize_t groups;
    if (!PyArg_ParseTuple(args, "O!O!n:group_rows", &PyList_Type, &site_rows, &PyList_Type, &site_groups, &groups))
        return NULL;
    if (groups < 0) {
        PyErr_SetString(PyExc_ValueError, "group_rows: groups must be >= 0");
        return NULL;
    }
    PyObject *found = PyList_New(groups);
    if (found == NULL)
        return NULL;
    for (Py_ssize_t g = 0; g < groups; g++) {
        PyObject *rows = PyList_New(0);
        if (rows == NULL)
            goto error;
        PyList_SET_ITEM(found, g, rows);
    }
    Py_ssize_t sites = PyList_GET_SIZE(site_groups);
    for (Py_ssize_t row = 0; row < PyList_GET_SIZE(site_rows); row++) {
        Py_ssize_t site = index_at(PySequence_Fast_ITEMS(site_rows), row, sites);
        if (site < 0)
            goto error;
        Py_ssize_t group = index_at(PySequence_Fast_ITEMS(site_groups), site, groups);
        if (group < 0)
            goto error;
        PyObject *number = PyLong_FromSsize_t(row);
        if (number == NULL || PyList_Append(PyList_GET_ITEM(found, group), number) < 0) {
            Py_XDECREF(number);
            goto error;
        }
        Py_DECREF(number);
    }
    return found;
error:
    Py_DECREF(found);
    return NULL;
}
