/*
 * tdmjson.c: a small JSON value API on top of yajl, used for QMP
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <config.h>

#include <math.h>
#include <errno.h>
#include <yajl/yajl_parse.h>
#include <yajl/yajl_gen.h>

#include "tdmjson.h"
#include "virerror.h"
#include "virlog.h"

#define VIR_FROM_THIS VIR_FROM_NONE

VIR_LOG_INIT("util.tdmjson");

/* Objects with more keys than this get a hash index for lookups. */
#define TDM_JSON_INDEX_THRESHOLD 16

typedef enum {
    TDM_JSON_NUMBER_LLONG,
    TDM_JSON_NUMBER_ULLONG,   /* only for values above LLONG_MAX */
    TDM_JSON_NUMBER_DOUBLE,
} tdmJSONNumberKind;

typedef struct _tdmJSONMember tdmJSONMember;
struct _tdmJSONMember {
    char *key;
    tdmJSONValue *value;
};

struct _tdmJSONValue {
    tdmJSONType type;
    union {
        struct {
            tdmJSONMember *members;
            size_t nmembers;
            size_t allocated;
            GHashTable *index;      /* key -> position + 1, or NULL */
        } object;
        struct {
            tdmJSONValue **values;
            size_t nvalues;
            size_t allocated;
        } array;
        char *str;
        struct {
            tdmJSONNumberKind kind;
            union {
                long long ll;
                unsigned long long ull;
                double d;
            } v;
        } number;
        bool boolean;
    } data;
};

static const char *const tdmJSONTypeNames[] = {
    "object", "array", "string", "number", "boolean", "null",
};
G_STATIC_ASSERT(G_N_ELEMENTS(tdmJSONTypeNames) == TDM_JSON_TYPE_LAST);


const char *
tdmJSONTypeToString(tdmJSONType type)
{
    if ((int) type < 0 || type >= TDM_JSON_TYPE_LAST)
        return "unknown";
    return tdmJSONTypeNames[type];
}


static tdmJSONValue *
tdmJSONValueNew(tdmJSONType type)
{
    tdmJSONValue *value = g_new0(tdmJSONValue, 1);

    value->type = type;
    return value;
}


tdmJSONValue *
tdmJSONValueNewObject(void)
{
    return tdmJSONValueNew(TDM_JSON_TYPE_OBJECT);
}


tdmJSONValue *
tdmJSONValueNewArray(void)
{
    return tdmJSONValueNew(TDM_JSON_TYPE_ARRAY);
}


tdmJSONValue *
tdmJSONValueNewString(const char *str)
{
    tdmJSONValue *value;

    if (!str)
        return tdmJSONValueNewNull();
    value = tdmJSONValueNew(TDM_JSON_TYPE_STRING);
    value->data.str = g_strdup(str);
    return value;
}


tdmJSONValue *
tdmJSONValueNewStringLen(const char *str, size_t len)
{
    tdmJSONValue *value;

    if (!str)
        return tdmJSONValueNewNull();
    value = tdmJSONValueNew(TDM_JSON_TYPE_STRING);
    value->data.str = g_strndup(str, len);
    return value;
}


tdmJSONValue *
tdmJSONValueNewNumberLLong(long long num)
{
    tdmJSONValue *value = tdmJSONValueNew(TDM_JSON_TYPE_NUMBER);

    value->data.number.kind = TDM_JSON_NUMBER_LLONG;
    value->data.number.v.ll = num;
    return value;
}


tdmJSONValue *
tdmJSONValueNewNumberULLong(unsigned long long num)
{
    tdmJSONValue *value;

    if (num <= LLONG_MAX)
        return tdmJSONValueNewNumberLLong((long long) num);

    value = tdmJSONValueNew(TDM_JSON_TYPE_NUMBER);
    value->data.number.kind = TDM_JSON_NUMBER_ULLONG;
    value->data.number.v.ull = num;
    return value;
}


tdmJSONValue *
tdmJSONValueNewNumberDouble(double num)
{
    tdmJSONValue *value = tdmJSONValueNew(TDM_JSON_TYPE_NUMBER);

    value->data.number.kind = TDM_JSON_NUMBER_DOUBLE;
    value->data.number.v.d = num;
    return value;
}


tdmJSONValue *
tdmJSONValueNewBoolean(bool val)
{
    tdmJSONValue *value = tdmJSONValueNew(TDM_JSON_TYPE_BOOLEAN);

    value->data.boolean = val;
    return value;
}


tdmJSONValue *
tdmJSONValueNewNull(void)
{
    return tdmJSONValueNew(TDM_JSON_TYPE_NULL);
}


void
tdmJSONValueFree(tdmJSONValue *value)
{
    size_t i;

    if (!value)
        return;

    switch (value->type) {
    case TDM_JSON_TYPE_OBJECT:
        for (i = 0; i < value->data.object.nmembers; i++) {
            g_free(value->data.object.members[i].key);
            tdmJSONValueFree(value->data.object.members[i].value);
        }
        g_free(value->data.object.members);
        if (value->data.object.index)
            g_hash_table_unref(value->data.object.index);
        break;
    case TDM_JSON_TYPE_ARRAY:
        for (i = 0; i < value->data.array.nvalues; i++)
            tdmJSONValueFree(value->data.array.values[i]);
        g_free(value->data.array.values);
        break;
    case TDM_JSON_TYPE_STRING:
        g_free(value->data.str);
        break;
    case TDM_JSON_TYPE_NUMBER:
    case TDM_JSON_TYPE_BOOLEAN:
    case TDM_JSON_TYPE_NULL:
    case TDM_JSON_TYPE_LAST:
        break;
    }
    g_free(value);
}


tdmJSONType
tdmJSONValueGetType(const tdmJSONValue *value)
{
    return value->type;
}


/* ------------------------------------------------------------------ */
/* Objects                                                             */
/* ------------------------------------------------------------------ */

static void
tdmJSONObjectIndexRebuild(tdmJSONValue *object)
{
    size_t i;

    if (object->data.object.index) {
        g_hash_table_unref(object->data.object.index);
        object->data.object.index = NULL;
    }
    if (object->data.object.nmembers <= TDM_JSON_INDEX_THRESHOLD)
        return;

    object->data.object.index = g_hash_table_new(g_str_hash, g_str_equal);
    for (i = 0; i < object->data.object.nmembers; i++)
        g_hash_table_insert(object->data.object.index,
                            object->data.object.members[i].key,
                            GSIZE_TO_POINTER(i + 1));
}


/* Position of @key in @object, or -1. */
static ssize_t
tdmJSONObjectFind(const tdmJSONValue *object, const char *key)
{
    size_t i;

    if (object->type != TDM_JSON_TYPE_OBJECT || !key)
        return -1;

    if (object->data.object.index) {
        gpointer pos = g_hash_table_lookup(object->data.object.index, key);
        return pos ? (ssize_t) GPOINTER_TO_SIZE(pos) - 1 : -1;
    }

    for (i = 0; i < object->data.object.nmembers; i++) {
        if (strcmp(object->data.object.members[i].key, key) == 0)
            return i;
    }
    return -1;
}


/* Appends without looking for an existing @key (the caller did). */
static void
tdmJSONObjectAppendNew(tdmJSONValue *object, char *key, tdmJSONValue *value)
{
    size_t n = object->data.object.nmembers;

    if (n == object->data.object.allocated) {
        object->data.object.allocated = MAX(4, object->data.object.allocated * 2);
        object->data.object.members = g_renew(tdmJSONMember,
                                              object->data.object.members,
                                              object->data.object.allocated);
        /* the index points at keys, not at members: still valid */
    }
    object->data.object.members[n].key = key;
    object->data.object.members[n].value = value;
    object->data.object.nmembers++;

    if (object->data.object.index) {
        g_hash_table_insert(object->data.object.index, key, GSIZE_TO_POINTER(n + 1));
    } else if (object->data.object.nmembers > TDM_JSON_INDEX_THRESHOLD) {
        tdmJSONObjectIndexRebuild(object);
    }
}


int
tdmJSONValueObjectSet(tdmJSONValue *object, const char *key, tdmJSONValue **value)
{
    ssize_t pos;

    if (object->type != TDM_JSON_TYPE_OBJECT) {
        virReportError(VIR_ERR_INTERNAL_ERROR,
                       _("cannot set key '%s' in a JSON %s"),
                       key, tdmJSONTypeToString(object->type));
        return -1;
    }
    if (!*value) {
        virReportError(VIR_ERR_INTERNAL_ERROR,
                       _("no value for JSON key '%s'"), key);
        return -1;
    }

    if ((pos = tdmJSONObjectFind(object, key)) >= 0) {
        tdmJSONValueFree(object->data.object.members[pos].value);
        object->data.object.members[pos].value = g_steal_pointer(value);
        return 0;
    }

    tdmJSONObjectAppendNew(object, g_strdup(key), g_steal_pointer(value));
    return 0;
}


int
tdmJSONValueObjectSetString(tdmJSONValue *object, const char *key, const char *str)
{
    g_autoptr(tdmJSONValue) value = tdmJSONValueNewString(str);

    return tdmJSONValueObjectSet(object, key, &value);
}


int
tdmJSONValueObjectSetNumberLLong(tdmJSONValue *object, const char *key, long long num)
{
    g_autoptr(tdmJSONValue) value = tdmJSONValueNewNumberLLong(num);

    return tdmJSONValueObjectSet(object, key, &value);
}


int
tdmJSONValueObjectSetNumberULLong(tdmJSONValue *object, const char *key,
                                  unsigned long long num)
{
    g_autoptr(tdmJSONValue) value = tdmJSONValueNewNumberULLong(num);

    return tdmJSONValueObjectSet(object, key, &value);
}


int
tdmJSONValueObjectSetNumberDouble(tdmJSONValue *object, const char *key, double num)
{
    g_autoptr(tdmJSONValue) value = tdmJSONValueNewNumberDouble(num);

    return tdmJSONValueObjectSet(object, key, &value);
}


int
tdmJSONValueObjectSetBoolean(tdmJSONValue *object, const char *key, bool val)
{
    g_autoptr(tdmJSONValue) value = tdmJSONValueNewBoolean(val);

    return tdmJSONValueObjectSet(object, key, &value);
}


int
tdmJSONValueObjectSetNull(tdmJSONValue *object, const char *key)
{
    g_autoptr(tdmJSONValue) value = tdmJSONValueNewNull();

    return tdmJSONValueObjectSet(object, key, &value);
}


size_t
tdmJSONValueObjectKeysNumber(const tdmJSONValue *object)
{
    if (object->type != TDM_JSON_TYPE_OBJECT)
        return 0;
    return object->data.object.nmembers;
}


const char *
tdmJSONValueObjectGetKey(const tdmJSONValue *object, size_t idx)
{
    if (object->type != TDM_JSON_TYPE_OBJECT ||
        idx >= object->data.object.nmembers)
        return NULL;
    return object->data.object.members[idx].key;
}


tdmJSONValue *
tdmJSONValueObjectGetValue(const tdmJSONValue *object, size_t idx)
{
    if (object->type != TDM_JSON_TYPE_OBJECT ||
        idx >= object->data.object.nmembers)
        return NULL;
    return object->data.object.members[idx].value;
}


bool
tdmJSONValueObjectHasKey(const tdmJSONValue *object, const char *key)
{
    return tdmJSONObjectFind(object, key) >= 0;
}


tdmJSONValue *
tdmJSONValueObjectGet(const tdmJSONValue *object, const char *key)
{
    ssize_t pos = tdmJSONObjectFind(object, key);

    if (pos < 0)
        return NULL;
    return object->data.object.members[pos].value;
}


tdmJSONValue *
tdmJSONValueObjectGetByType(const tdmJSONValue *object,
                            const char *key,
                            tdmJSONType type)
{
    tdmJSONValue *value = tdmJSONValueObjectGet(object, key);

    if (!value || value->type != type)
        return NULL;
    return value;
}


tdmJSONValue *
tdmJSONValueObjectSteal(tdmJSONValue *object, const char *key)
{
    ssize_t pos = tdmJSONObjectFind(object, key);
    tdmJSONValue *value;

    if (pos < 0)
        return NULL;

    value = object->data.object.members[pos].value;
    g_free(object->data.object.members[pos].key);
    memmove(object->data.object.members + pos,
            object->data.object.members + pos + 1,
            sizeof(tdmJSONMember) * (object->data.object.nmembers - pos - 1));
    object->data.object.nmembers--;
    tdmJSONObjectIndexRebuild(object);
    return value;
}


int
tdmJSONValueObjectRemove(tdmJSONValue *object, const char *key)
{
    tdmJSONValue *value = tdmJSONValueObjectSteal(object, key);

    if (!value)
        return -1;
    tdmJSONValueFree(value);
    return 0;
}


const char *
tdmJSONValueObjectGetString(const tdmJSONValue *object, const char *key)
{
    tdmJSONValue *value = tdmJSONValueObjectGet(object, key);

    if (!value)
        return NULL;
    return tdmJSONValueGetString(value);
}


int
tdmJSONValueObjectGetNumberLLong(const tdmJSONValue *object, const char *key,
                                 long long *num)
{
    tdmJSONValue *value = tdmJSONValueObjectGet(object, key);

    if (!value)
        return -1;
    return tdmJSONValueGetNumberLLong(value, num);
}


int
tdmJSONValueObjectGetNumberULLong(const tdmJSONValue *object, const char *key,
                                  unsigned long long *num)
{
    tdmJSONValue *value = tdmJSONValueObjectGet(object, key);

    if (!value)
        return -1;
    return tdmJSONValueGetNumberULLong(value, num);
}


int
tdmJSONValueObjectGetNumberInt(const tdmJSONValue *object, const char *key,
                               int *num)
{
    tdmJSONValue *value = tdmJSONValueObjectGet(object, key);

    if (!value)
        return -1;
    return tdmJSONValueGetNumberInt(value, num);
}


int
tdmJSONValueObjectGetNumberUInt(const tdmJSONValue *object, const char *key,
                                unsigned int *num)
{
    tdmJSONValue *value = tdmJSONValueObjectGet(object, key);

    if (!value)
        return -1;
    return tdmJSONValueGetNumberUInt(value, num);
}


int
tdmJSONValueObjectGetNumberDouble(const tdmJSONValue *object, const char *key,
                                  double *num)
{
    tdmJSONValue *value = tdmJSONValueObjectGet(object, key);

    if (!value)
        return -1;
    return tdmJSONValueGetNumberDouble(value, num);
}


int
tdmJSONValueObjectGetBoolean(const tdmJSONValue *object, const char *key,
                             bool *val)
{
    tdmJSONValue *value = tdmJSONValueObjectGet(object, key);

    if (!value)
        return -1;
    return tdmJSONValueGetBoolean(value, val);
}


tdmJSONValue *
tdmJSONValueObjectGetObject(const tdmJSONValue *object, const char *key)
{
    return tdmJSONValueObjectGetByType(object, key, TDM_JSON_TYPE_OBJECT);
}


tdmJSONValue *
tdmJSONValueObjectGetArray(const tdmJSONValue *object, const char *key)
{
    return tdmJSONValueObjectGetByType(object, key, TDM_JSON_TYPE_ARRAY);
}


/* ------------------------------------------------------------------ */
/* Scalars                                                             */
/* ------------------------------------------------------------------ */

const char *
tdmJSONValueGetString(const tdmJSONValue *value)
{
    if (!value || value->type != TDM_JSON_TYPE_STRING)
        return NULL;
    return value->data.str;
}


int
tdmJSONValueGetNumberLLong(const tdmJSONValue *value, long long *num)
{
    if (!value || value->type != TDM_JSON_TYPE_NUMBER ||
        value->data.number.kind != TDM_JSON_NUMBER_LLONG)
        return -1;
    *num = value->data.number.v.ll;
    return 0;
}


int
tdmJSONValueGetNumberULLong(const tdmJSONValue *value, unsigned long long *num)
{
    if (!value || value->type != TDM_JSON_TYPE_NUMBER)
        return -1;

    switch (value->data.number.kind) {
    case TDM_JSON_NUMBER_LLONG:
        if (value->data.number.v.ll < 0)
            return -1;
        *num = (unsigned long long) value->data.number.v.ll;
        return 0;
    case TDM_JSON_NUMBER_ULLONG:
        *num = value->data.number.v.ull;
        return 0;
    case TDM_JSON_NUMBER_DOUBLE:
        break;
    }
    return -1;
}


int
tdmJSONValueGetNumberInt(const tdmJSONValue *value, int *num)
{
    long long ll;

    if (tdmJSONValueGetNumberLLong(value, &ll) < 0 ||
        ll < INT_MIN || ll > INT_MAX)
        return -1;
    *num = (int) ll;
    return 0;
}


int
tdmJSONValueGetNumberUInt(const tdmJSONValue *value, unsigned int *num)
{
    unsigned long long ull;

    if (tdmJSONValueGetNumberULLong(value, &ull) < 0 || ull > UINT_MAX)
        return -1;
    *num = (unsigned int) ull;
    return 0;
}


int
tdmJSONValueGetNumberDouble(const tdmJSONValue *value, double *num)
{
    if (!value || value->type != TDM_JSON_TYPE_NUMBER)
        return -1;

    switch (value->data.number.kind) {
    case TDM_JSON_NUMBER_LLONG:
        *num = (double) value->data.number.v.ll;
        break;
    case TDM_JSON_NUMBER_ULLONG:
        *num = (double) value->data.number.v.ull;
        break;
    case TDM_JSON_NUMBER_DOUBLE:
        *num = value->data.number.v.d;
        break;
    }
    return 0;
}


int
tdmJSONValueGetBoolean(const tdmJSONValue *value, bool *val)
{
    if (!value || value->type != TDM_JSON_TYPE_BOOLEAN)
        return -1;
    *val = value->data.boolean;
    return 0;
}


bool
tdmJSONValueIsNull(const tdmJSONValue *value)
{
    return value && value->type == TDM_JSON_TYPE_NULL;
}


/* ------------------------------------------------------------------ */
/* Arrays                                                              */
/* ------------------------------------------------------------------ */

size_t
tdmJSONValueArraySize(const tdmJSONValue *array)
{
    if (!array || array->type != TDM_JSON_TYPE_ARRAY)
        return 0;
    return array->data.array.nvalues;
}


tdmJSONValue *
tdmJSONValueArrayGet(const tdmJSONValue *array, size_t idx)
{
    if (!array || array->type != TDM_JSON_TYPE_ARRAY ||
        idx >= array->data.array.nvalues)
        return NULL;
    return array->data.array.values[idx];
}


int
tdmJSONValueArrayAppend(tdmJSONValue *array, tdmJSONValue **value)
{
    if (array->type != TDM_JSON_TYPE_ARRAY) {
        virReportError(VIR_ERR_INTERNAL_ERROR,
                       _("cannot append to a JSON %s"),
                       tdmJSONTypeToString(array->type));
        return -1;
    }
    if (!*value) {
        virReportError(VIR_ERR_INTERNAL_ERROR, "%s",
                       _("no value to append to the JSON array"));
        return -1;
    }

    if (array->data.array.nvalues == array->data.array.allocated) {
        array->data.array.allocated = MAX(4, array->data.array.allocated * 2);
        array->data.array.values = g_renew(tdmJSONValue *,
                                           array->data.array.values,
                                           array->data.array.allocated);
    }
    array->data.array.values[array->data.array.nvalues++] = g_steal_pointer(value);
    return 0;
}


int
tdmJSONValueArrayAppendString(tdmJSONValue *array, const char *str)
{
    g_autoptr(tdmJSONValue) value = tdmJSONValueNewString(str);

    return tdmJSONValueArrayAppend(array, &value);
}


/* ------------------------------------------------------------------ */
/* Copy and comparison                                                 */
/* ------------------------------------------------------------------ */

tdmJSONValue *
tdmJSONValueCopy(const tdmJSONValue *value)
{
    tdmJSONValue *copy;
    size_t i;

    if (!value)
        return NULL;

    copy = tdmJSONValueNew(value->type);
    switch (value->type) {
    case TDM_JSON_TYPE_OBJECT:
        copy->data.object.allocated = value->data.object.nmembers;
        copy->data.object.members = g_new0(tdmJSONMember, copy->data.object.allocated);
        for (i = 0; i < value->data.object.nmembers; i++) {
            copy->data.object.members[i].key = g_strdup(value->data.object.members[i].key);
            copy->data.object.members[i].value =
                tdmJSONValueCopy(value->data.object.members[i].value);
        }
        copy->data.object.nmembers = value->data.object.nmembers;
        tdmJSONObjectIndexRebuild(copy);
        break;
    case TDM_JSON_TYPE_ARRAY:
        copy->data.array.allocated = value->data.array.nvalues;
        copy->data.array.values = g_new0(tdmJSONValue *, copy->data.array.allocated);
        for (i = 0; i < value->data.array.nvalues; i++)
            copy->data.array.values[i] = tdmJSONValueCopy(value->data.array.values[i]);
        copy->data.array.nvalues = value->data.array.nvalues;
        break;
    case TDM_JSON_TYPE_STRING:
        copy->data.str = g_strdup(value->data.str);
        break;
    case TDM_JSON_TYPE_NUMBER:
        copy->data.number = value->data.number;
        break;
    case TDM_JSON_TYPE_BOOLEAN:
        copy->data.boolean = value->data.boolean;
        break;
    case TDM_JSON_TYPE_NULL:
    case TDM_JSON_TYPE_LAST:
        break;
    }
    return copy;
}


/* Structural equality; object member order does not matter. */
bool
tdmJSONValueEqual(const tdmJSONValue *a, const tdmJSONValue *b)
{
    size_t i;

    if (!a || !b)
        return a == b;
    if (a->type != b->type)
        return false;

    switch (a->type) {
    case TDM_JSON_TYPE_OBJECT:
        if (a->data.object.nmembers != b->data.object.nmembers)
            return false;
        for (i = 0; i < a->data.object.nmembers; i++) {
            tdmJSONValue *other = tdmJSONValueObjectGet(b, a->data.object.members[i].key);
            if (!tdmJSONValueEqual(a->data.object.members[i].value, other))
                return false;
        }
        return true;
    case TDM_JSON_TYPE_ARRAY:
        if (a->data.array.nvalues != b->data.array.nvalues)
            return false;
        for (i = 0; i < a->data.array.nvalues; i++) {
            if (!tdmJSONValueEqual(a->data.array.values[i], b->data.array.values[i]))
                return false;
        }
        return true;
    case TDM_JSON_TYPE_STRING:
        return strcmp(a->data.str, b->data.str) == 0;
    case TDM_JSON_TYPE_NUMBER:
        if (a->data.number.kind != b->data.number.kind)
            return false;
        switch (a->data.number.kind) {
        case TDM_JSON_NUMBER_LLONG:
            return a->data.number.v.ll == b->data.number.v.ll;
        case TDM_JSON_NUMBER_ULLONG:
            return a->data.number.v.ull == b->data.number.v.ull;
        case TDM_JSON_NUMBER_DOUBLE:
            return a->data.number.v.d == b->data.number.v.d;
        }
        return false;
    case TDM_JSON_TYPE_BOOLEAN:
        return a->data.boolean == b->data.boolean;
    case TDM_JSON_TYPE_NULL:
        return true;
    case TDM_JSON_TYPE_LAST:
        break;
    }
    return false;
}


/* ------------------------------------------------------------------ */
/* Table builders                                                      */
/* ------------------------------------------------------------------ */

int
tdmJSONValueObjectAddVArgs(tdmJSONValue *object, va_list args)
{
    const char *spec;

    while ((spec = va_arg(args, const char *))) {
        const char *key = spec + 2;
        g_autoptr(tdmJSONValue) value = NULL;
        char type = spec[0];

        if (spec[0] == '\0' || spec[1] != ':' || key[0] == '\0') {
            virReportError(VIR_ERR_INTERNAL_ERROR,
                           _("invalid JSON builder spec '%s'"), spec);
            return -1;
        }

        switch (type) {
        case 's':
        case 'S': {
            const char *str = va_arg(args, const char *);
            if (!str) {
                if (type == 'S')
                    continue;
                virReportError(VIR_ERR_INTERNAL_ERROR,
                               _("JSON string for key '%s' must not be NULL"), key);
                return -1;
            }
            value = tdmJSONValueNewString(str);
            break;
        }
        case 'i':
            value = tdmJSONValueNewNumberLLong(va_arg(args, int));
            break;
        case 'u':
            value = tdmJSONValueNewNumberULLong(va_arg(args, unsigned int));
            break;
        case 'I':
            value = tdmJSONValueNewNumberLLong(va_arg(args, long long));
            break;
        case 'U':
            value = tdmJSONValueNewNumberULLong(va_arg(args, unsigned long long));
            break;
        case 'd':
            value = tdmJSONValueNewNumberDouble(va_arg(args, double));
            break;
        case 'b':
        case 'B': {
            bool val = va_arg(args, int) != 0;
            if (type == 'B' && !val)
                continue;
            value = tdmJSONValueNewBoolean(val);
            break;
        }
        case 'n':
            value = tdmJSONValueNewNull();
            break;
        case 'a':
        case 'A': {
            tdmJSONValue **valp = va_arg(args, tdmJSONValue **);
            if (!valp || !*valp) {
                if (type == 'A')
                    continue;
                virReportError(VIR_ERR_INTERNAL_ERROR,
                               _("JSON value for key '%s' must not be NULL"), key);
                return -1;
            }
            value = g_steal_pointer(valp);
            break;
        }
        default:
            virReportError(VIR_ERR_INTERNAL_ERROR,
                           _("invalid JSON builder type '%c' for key '%s'"),
                           type, key);
            return -1;
        }

        if (tdmJSONValueObjectSet(object, key, &value) < 0)
            return -1;
    }
    return 0;
}


int
tdmJSONValueObjectAdd(tdmJSONValue *object, ...)
{
    va_list args;
    int ret;

    va_start(args, object);
    ret = tdmJSONValueObjectAddVArgs(object, args);
    va_end(args);
    return ret;
}


int
tdmJSONValueObjectCreate(tdmJSONValue **object, ...)
{
    g_autoptr(tdmJSONValue) obj = tdmJSONValueNewObject();
    va_list args;
    int ret;

    *object = NULL;
    va_start(args, object);
    ret = tdmJSONValueObjectAddVArgs(obj, args);
    va_end(args);
    if (ret < 0)
        return -1;
    *object = g_steal_pointer(&obj);
    return 0;
}


tdmJSONValue *
tdmJSONCommandBuildArgs(const char *cmdname, tdmJSONValue **args)
{
    g_autoptr(tdmJSONValue) cmd = tdmJSONValueNewObject();

    if (tdmJSONValueObjectSetString(cmd, "execute", cmdname) < 0)
        return NULL;
    if (args && *args) {
        if ((*args)->type != TDM_JSON_TYPE_OBJECT) {
            virReportError(VIR_ERR_INTERNAL_ERROR,
                           _("arguments of QMP command '%s' must be an object"),
                           cmdname);
            return NULL;
        }
        if (tdmJSONValueObjectSet(cmd, "arguments", args) < 0)
            return NULL;
    }
    return g_steal_pointer(&cmd);
}


tdmJSONValue *
tdmJSONCommandBuild(const char *cmdname, ...)
{
    g_autoptr(tdmJSONValue) args = tdmJSONValueNewObject();
    va_list ap;
    int ret;

    va_start(ap, cmdname);
    ret = tdmJSONValueObjectAddVArgs(args, ap);
    va_end(ap);
    if (ret < 0)
        return NULL;

    if (tdmJSONValueObjectKeysNumber(args) == 0)
        g_clear_pointer(&args, tdmJSONValueFree);
    return tdmJSONCommandBuildArgs(cmdname, &args);
}


/* ------------------------------------------------------------------ */
/* Parsing                                                             */
/* ------------------------------------------------------------------ */

typedef struct _tdmJSONParser tdmJSONParser;
struct _tdmJSONParser {
    tdmJSONValue *root;
    tdmJSONValue *stack[TDM_JSON_MAX_DEPTH];
    char *keys[TDM_JSON_MAX_DEPTH];   /* pending key per open object */
    size_t depth;
    const char *error;                /* our own reason to stop, or NULL */
};


/* Puts @value into the current container (or makes it the root). */
static int
tdmJSONParserAdd(tdmJSONParser *parser, tdmJSONValue *value)
{
    tdmJSONValue *parent;

    if (parser->depth == 0) {
        if (parser->root) {
            parser->error = "more than one value";
            tdmJSONValueFree(value);
            return 0;
        }
        parser->root = value;
        return 1;
    }

    parent = parser->stack[parser->depth - 1];
    if (parent->type == TDM_JSON_TYPE_ARRAY) {
        if (tdmJSONValueArrayAppend(parent, &value) < 0) {
            tdmJSONValueFree(value);
            parser->error = "internal error";
            return 0;
        }
        return 1;
    }

    if (!parser->keys[parser->depth - 1]) {
        parser->error = "object member without a key";
        tdmJSONValueFree(value);
        return 0;
    }
    tdmJSONObjectAppendNew(parent, g_steal_pointer(&parser->keys[parser->depth - 1]), value);
    return 1;
}


static int
tdmJSONParserNull(void *ctx)
{
    return tdmJSONParserAdd(ctx, tdmJSONValueNewNull());
}


static int
tdmJSONParserBoolean(void *ctx, int val)
{
    return tdmJSONParserAdd(ctx, tdmJSONValueNewBoolean(val != 0));
}


static int
tdmJSONParserNumber(void *ctx, const char *text, size_t len)
{
    tdmJSONParser *parser = ctx;
    g_autofree char *str = g_strndup(text, len);
    char *end = NULL;

    if (!strpbrk(str, ".eE")) {
        long long ll;
        unsigned long long ull;

        errno = 0;
        ll = g_ascii_strtoll(str, &end, 10);
        if (errno == 0 && end && *end == '\0')
            return tdmJSONParserAdd(parser, tdmJSONValueNewNumberLLong(ll));

        if (str[0] != '-') {
            errno = 0;
            ull = g_ascii_strtoull(str, &end, 10);
            if (errno == 0 && end && *end == '\0')
                return tdmJSONParserAdd(parser, tdmJSONValueNewNumberULLong(ull));
        }
        /* out of the 64-bit range: keep it as a double */
    }

    errno = 0;
    {
        double d = g_ascii_strtod(str, &end);

        if (!end || *end != '\0' || !isfinite(d)) {
            parser->error = "number out of range";
            return 0;
        }
        return tdmJSONParserAdd(parser, tdmJSONValueNewNumberDouble(d));
    }
}


static int
tdmJSONParserString(void *ctx, const unsigned char *text, size_t len)
{
    tdmJSONParser *parser = ctx;

    if (memchr(text, '\0', len)) {
        parser->error = "NUL character in a string";
        return 0;
    }
    return tdmJSONParserAdd(parser, tdmJSONValueNewStringLen((const char *) text, len));
}


static int
tdmJSONParserPush(tdmJSONParser *parser, tdmJSONValue *container)
{
    if (parser->depth >= TDM_JSON_MAX_DEPTH) {
        parser->error = "nested too deeply";
        tdmJSONValueFree(container);
        return 0;
    }
    if (!tdmJSONParserAdd(parser, container))
        return 0;
    parser->stack[parser->depth] = container;
    parser->keys[parser->depth] = NULL;
    parser->depth++;
    return 1;
}


static int
tdmJSONParserStartMap(void *ctx)
{
    return tdmJSONParserPush(ctx, tdmJSONValueNewObject());
}


static int
tdmJSONParserMapKey(void *ctx, const unsigned char *text, size_t len)
{
    tdmJSONParser *parser = ctx;
    tdmJSONValue *object;
    g_autofree char *key = NULL;

    if (parser->depth == 0) {
        parser->error = "key outside of an object";
        return 0;
    }
    object = parser->stack[parser->depth - 1];
    if (memchr(text, '\0', len)) {
        parser->error = "NUL character in a key";
        return 0;
    }
    key = g_strndup((const char *) text, len);
    if (tdmJSONObjectFind(object, key) >= 0) {
        parser->error = "duplicate key";
        return 0;
    }
    g_free(parser->keys[parser->depth - 1]);
    parser->keys[parser->depth - 1] = g_steal_pointer(&key);
    return 1;
}


static int
tdmJSONParserPop(void *ctx)
{
    tdmJSONParser *parser = ctx;

    if (parser->depth == 0) {
        parser->error = "unbalanced container";
        return 0;
    }
    parser->depth--;
    g_clear_pointer(&parser->keys[parser->depth], g_free);
    return 1;
}


static int
tdmJSONParserStartArray(void *ctx)
{
    return tdmJSONParserPush(ctx, tdmJSONValueNewArray());
}


static const yajl_callbacks tdmJSONParserCallbacks = {
    .yajl_null = tdmJSONParserNull,
    .yajl_boolean = tdmJSONParserBoolean,
    .yajl_number = tdmJSONParserNumber,
    .yajl_string = tdmJSONParserString,
    .yajl_start_map = tdmJSONParserStartMap,
    .yajl_map_key = tdmJSONParserMapKey,
    .yajl_end_map = tdmJSONParserPop,
    .yajl_start_array = tdmJSONParserStartArray,
    .yajl_end_array = tdmJSONParserPop,
};


tdmJSONValue *
tdmJSONValueFromStringLen(const char *str, size_t len)
{
    tdmJSONParser parser = { 0 };
    yajl_handle hand = NULL;
    yajl_status rc;
    tdmJSONValue *ret = NULL;
    size_t i;

    if (len > TDM_JSON_MAX_SIZE) {
        virReportError(VIR_ERR_INTERNAL_ERROR,
                       _("cannot parse JSON of %zu bytes: limit is %d bytes"),
                       len, TDM_JSON_MAX_SIZE);
        return NULL;
    }

    hand = yajl_alloc(&tdmJSONParserCallbacks, NULL, &parser);
    if (!hand) {
        virReportError(VIR_ERR_INTERNAL_ERROR, "%s",
                       _("cannot allocate the JSON parser"));
        return NULL;
    }

    rc = yajl_parse(hand, (const unsigned char *) str, len);
    if (rc == yajl_status_ok)
        rc = yajl_complete_parse(hand);

    if (rc != yajl_status_ok || parser.error || !parser.root || parser.depth != 0) {
        if (parser.error) {
            virReportError(VIR_ERR_INTERNAL_ERROR,
                           _("cannot parse JSON: %s"), parser.error);
        } else if (rc != yajl_status_ok) {
            unsigned char *msg = yajl_get_error(hand, 0, NULL, 0);
            virReportError(VIR_ERR_INTERNAL_ERROR,
                           _("cannot parse JSON: %s"),
                           msg ? (const char *) msg : "?");
            if (msg)
                yajl_free_error(hand, msg);
        } else {
            virReportError(VIR_ERR_INTERNAL_ERROR, "%s",
                           _("cannot parse JSON: incomplete document"));
        }
        tdmJSONValueFree(parser.root);
        goto cleanup;
    }

    ret = parser.root;

 cleanup:
    for (i = 0; i < TDM_JSON_MAX_DEPTH; i++)
        g_free(parser.keys[i]);
    yajl_free(hand);
    return ret;
}


tdmJSONValue *
tdmJSONValueFromString(const char *str)
{
    if (!str) {
        virReportError(VIR_ERR_INTERNAL_ERROR, "%s", _("no JSON to parse"));
        return NULL;
    }
    return tdmJSONValueFromStringLen(str, strlen(str));
}


/* ------------------------------------------------------------------ */
/* Formatting                                                          */
/* ------------------------------------------------------------------ */

static int
tdmJSONValueGenerate(const tdmJSONValue *value, yajl_gen gen, size_t depth)
{
    size_t i;

    if (depth > TDM_JSON_MAX_DEPTH) {
        virReportError(VIR_ERR_INTERNAL_ERROR, "%s",
                       _("cannot format JSON: nested too deeply"));
        return -1;
    }

    switch (value->type) {
    case TDM_JSON_TYPE_OBJECT:
        if (yajl_gen_map_open(gen) != yajl_gen_status_ok)
            goto error;
        for (i = 0; i < value->data.object.nmembers; i++) {
            const char *key = value->data.object.members[i].key;
            if (yajl_gen_string(gen, (const unsigned char *) key, strlen(key)) !=
                yajl_gen_status_ok)
                goto error;
            if (tdmJSONValueGenerate(value->data.object.members[i].value, gen,
                                     depth + 1) < 0)
                return -1;
        }
        if (yajl_gen_map_close(gen) != yajl_gen_status_ok)
            goto error;
        break;
    case TDM_JSON_TYPE_ARRAY:
        if (yajl_gen_array_open(gen) != yajl_gen_status_ok)
            goto error;
        for (i = 0; i < value->data.array.nvalues; i++) {
            if (tdmJSONValueGenerate(value->data.array.values[i], gen, depth + 1) < 0)
                return -1;
        }
        if (yajl_gen_array_close(gen) != yajl_gen_status_ok)
            goto error;
        break;
    case TDM_JSON_TYPE_STRING:
        if (yajl_gen_string(gen, (const unsigned char *) value->data.str,
                            strlen(value->data.str)) != yajl_gen_status_ok)
            goto error;
        break;
    case TDM_JSON_TYPE_NUMBER: {
        char buf[G_ASCII_DTOSTR_BUF_SIZE] = "";

        switch (value->data.number.kind) {
        case TDM_JSON_NUMBER_LLONG:
            g_snprintf(buf, sizeof(buf), "%lld", value->data.number.v.ll);
            break;
        case TDM_JSON_NUMBER_ULLONG:
            g_snprintf(buf, sizeof(buf), "%llu", value->data.number.v.ull);
            break;
        case TDM_JSON_NUMBER_DOUBLE:
            if (!isfinite(value->data.number.v.d)) {
                virReportError(VIR_ERR_INTERNAL_ERROR, "%s",
                               _("cannot format a non-finite number as JSON"));
                return -1;
            }
            /* locale independent, shortest round-trip form; keep it a
             * floating point number when read back ("1" -> "1.0") */
            g_ascii_dtostr(buf, sizeof(buf), value->data.number.v.d);
            if (!strpbrk(buf, ".eE") && strlen(buf) + 2 < sizeof(buf))
                g_strlcat(buf, ".0", sizeof(buf));
            break;
        }
        if (yajl_gen_number(gen, buf, strlen(buf)) != yajl_gen_status_ok)
            goto error;
        break;
    }
    case TDM_JSON_TYPE_BOOLEAN:
        if (yajl_gen_bool(gen, value->data.boolean) != yajl_gen_status_ok)
            goto error;
        break;
    case TDM_JSON_TYPE_NULL:
        if (yajl_gen_null(gen) != yajl_gen_status_ok)
            goto error;
        break;
    case TDM_JSON_TYPE_LAST:
        goto error;
    }
    return 0;

 error:
    virReportError(VIR_ERR_INTERNAL_ERROR,
                   _("cannot format a JSON %s (invalid UTF-8 or nesting?)"),
                   tdmJSONTypeToString(value->type));
    return -1;
}


char *
tdmJSONValueToString(const tdmJSONValue *value, bool pretty)
{
    yajl_gen gen;
    const unsigned char *buf;
    size_t len;
    char *ret = NULL;

    if (!(gen = yajl_gen_alloc(NULL))) {
        virReportError(VIR_ERR_INTERNAL_ERROR, "%s",
                       _("cannot allocate the JSON generator"));
        return NULL;
    }
    yajl_gen_config(gen, yajl_gen_beautify, pretty ? 1 : 0);
    yajl_gen_config(gen, yajl_gen_indent_string, pretty ? "  " : "");
    yajl_gen_config(gen, yajl_gen_validate_utf8, 1);

    if (tdmJSONValueGenerate(value, gen, 0) < 0)
        goto cleanup;

    if (yajl_gen_get_buf(gen, &buf, &len) != yajl_gen_status_ok) {
        virReportError(VIR_ERR_INTERNAL_ERROR, "%s",
                       _("cannot get the formatted JSON"));
        goto cleanup;
    }
    ret = g_strndup((const char *) buf, len);
    if (pretty && len > 0 && ret[len - 1] == '\n')
        ret[len - 1] = '\0';

 cleanup:
    yajl_gen_free(gen);
    return ret;
}
