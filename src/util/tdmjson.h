/*
 * tdmjson.h: a small JSON value API on top of yajl, used for QMP
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Values form a tree; every container owns its children.  Functions that
 * take a "tdmJSONValue **" steal the value on success (the pointer is set
 * to NULL) and leave it with the caller on failure.  Getters return
 * borrowed pointers that live as long as the container.
 *
 * Objects keep their keys in insertion order; parsing rejects duplicate
 * keys.  Numbers remember whether they were written as a signed integer,
 * an unsigned integer (too big for int64) or a floating point value.
 *
 * None of these functions lock: a value must not be modified by one thread
 * while another one reads it.
 */
#pragma once

#include "internal.h"

typedef enum {
    TDM_JSON_TYPE_OBJECT,
    TDM_JSON_TYPE_ARRAY,
    TDM_JSON_TYPE_STRING,
    TDM_JSON_TYPE_NUMBER,
    TDM_JSON_TYPE_BOOLEAN,
    TDM_JSON_TYPE_NULL,

    TDM_JSON_TYPE_LAST
} tdmJSONType;

/* Parser limits: nesting depth and input size. */
#define TDM_JSON_MAX_DEPTH 100   /* below yajl_gen's own limit of 128 */
#define TDM_JSON_MAX_SIZE (64 * 1024 * 1024)

typedef struct _tdmJSONValue tdmJSONValue;

/* Construction and destruction */
tdmJSONValue *tdmJSONValueNewObject(void);
tdmJSONValue *tdmJSONValueNewArray(void);
tdmJSONValue *tdmJSONValueNewString(const char *str);
tdmJSONValue *tdmJSONValueNewStringLen(const char *str, size_t len);
tdmJSONValue *tdmJSONValueNewNumberLLong(long long num);
tdmJSONValue *tdmJSONValueNewNumberULLong(unsigned long long num);
tdmJSONValue *tdmJSONValueNewNumberDouble(double num);
tdmJSONValue *tdmJSONValueNewBoolean(bool val);
tdmJSONValue *tdmJSONValueNewNull(void);
void tdmJSONValueFree(tdmJSONValue *value);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(tdmJSONValue, tdmJSONValueFree);
tdmJSONValue *tdmJSONValueCopy(const tdmJSONValue *value);
bool tdmJSONValueEqual(const tdmJSONValue *a, const tdmJSONValue *b);

tdmJSONType tdmJSONValueGetType(const tdmJSONValue *value);
const char *tdmJSONTypeToString(tdmJSONType type);

/* Scalars */
const char *tdmJSONValueGetString(const tdmJSONValue *value);
int tdmJSONValueGetNumberLLong(const tdmJSONValue *value, long long *num);
int tdmJSONValueGetNumberULLong(const tdmJSONValue *value, unsigned long long *num);
int tdmJSONValueGetNumberInt(const tdmJSONValue *value, int *num);
int tdmJSONValueGetNumberUInt(const tdmJSONValue *value, unsigned int *num);
int tdmJSONValueGetNumberDouble(const tdmJSONValue *value, double *num);
int tdmJSONValueGetBoolean(const tdmJSONValue *value, bool *val);
bool tdmJSONValueIsNull(const tdmJSONValue *value);

/* Arrays */
size_t tdmJSONValueArraySize(const tdmJSONValue *array);
tdmJSONValue *tdmJSONValueArrayGet(const tdmJSONValue *array, size_t idx);
int tdmJSONValueArrayAppend(tdmJSONValue *array, tdmJSONValue **value);
int tdmJSONValueArrayAppendString(tdmJSONValue *array, const char *str);

/* Objects */
size_t tdmJSONValueObjectKeysNumber(const tdmJSONValue *object);
const char *tdmJSONValueObjectGetKey(const tdmJSONValue *object, size_t idx);
tdmJSONValue *tdmJSONValueObjectGetValue(const tdmJSONValue *object, size_t idx);
bool tdmJSONValueObjectHasKey(const tdmJSONValue *object, const char *key);
tdmJSONValue *tdmJSONValueObjectGet(const tdmJSONValue *object, const char *key);
tdmJSONValue *tdmJSONValueObjectGetByType(const tdmJSONValue *object,
                                          const char *key,
                                          tdmJSONType type);
const char *tdmJSONValueObjectGetString(const tdmJSONValue *object, const char *key);
int tdmJSONValueObjectGetNumberLLong(const tdmJSONValue *object, const char *key,
                                     long long *num);
int tdmJSONValueObjectGetNumberULLong(const tdmJSONValue *object, const char *key,
                                      unsigned long long *num);
int tdmJSONValueObjectGetNumberInt(const tdmJSONValue *object, const char *key,
                                   int *num);
int tdmJSONValueObjectGetNumberUInt(const tdmJSONValue *object, const char *key,
                                    unsigned int *num);
int tdmJSONValueObjectGetNumberDouble(const tdmJSONValue *object, const char *key,
                                      double *num);
int tdmJSONValueObjectGetBoolean(const tdmJSONValue *object, const char *key,
                                 bool *val);
tdmJSONValue *tdmJSONValueObjectGetObject(const tdmJSONValue *object, const char *key);
tdmJSONValue *tdmJSONValueObjectGetArray(const tdmJSONValue *object, const char *key);
/* Removes @key and hands its value to the caller; NULL if absent. */
tdmJSONValue *tdmJSONValueObjectSteal(tdmJSONValue *object, const char *key);
int tdmJSONValueObjectRemove(tdmJSONValue *object, const char *key);

/* Adds @key or replaces its value. */
int tdmJSONValueObjectSet(tdmJSONValue *object, const char *key, tdmJSONValue **value);
int tdmJSONValueObjectSetString(tdmJSONValue *object, const char *key, const char *str);
int tdmJSONValueObjectSetNumberLLong(tdmJSONValue *object, const char *key, long long num);
int tdmJSONValueObjectSetNumberULLong(tdmJSONValue *object, const char *key,
                                      unsigned long long num);
int tdmJSONValueObjectSetNumberDouble(tdmJSONValue *object, const char *key, double num);
int tdmJSONValueObjectSetBoolean(tdmJSONValue *object, const char *key, bool val);
int tdmJSONValueObjectSetNull(tdmJSONValue *object, const char *key);

/*
 * Table builder: adds members described by (spec, value) pairs to @object,
 * terminated by NULL.  A spec is "T:key" where T is
 *   s  const char *          (must not be NULL)
 *   S  const char *          (skipped when NULL)
 *   i  int                   u  unsigned int
 *   I  long long             U  unsigned long long
 *   d  double                b  bool (passed as int)
 *   B  bool, skipped when false
 *   n  (no value) JSON null
 *   a  tdmJSONValue **       stolen, must not be NULL
 *   A  tdmJSONValue **       stolen, skipped when *value is NULL
 * Example: tdmJSONValueObjectAdd(obj, "s:uri", uri, "B:resume", resume, NULL)
 */
int tdmJSONValueObjectAdd(tdmJSONValue *object, ...) G_GNUC_NULL_TERMINATED;
int tdmJSONValueObjectAddVArgs(tdmJSONValue *object, va_list args);
/* Creates a new object from the same table; *@object is NULL on error. */
int tdmJSONValueObjectCreate(tdmJSONValue **object, ...) G_GNUC_NULL_TERMINATED;

/*
 * QMP command builder: {"execute": @cmdname, "arguments": {...}}, the
 * arguments described like tdmJSONValueObjectAdd; "arguments" is left out
 * when the table adds nothing.  The monitor adds the "id".
 */
tdmJSONValue *tdmJSONCommandBuild(const char *cmdname, ...) G_GNUC_NULL_TERMINATED;
/* Same, with an already built arguments object (stolen; may be NULL). */
tdmJSONValue *tdmJSONCommandBuildArgs(const char *cmdname, tdmJSONValue **args);

/* Parsing: exactly one JSON value (surrounding whitespace allowed). */
tdmJSONValue *tdmJSONValueFromString(const char *str);
tdmJSONValue *tdmJSONValueFromStringLen(const char *str, size_t len);

/* Formatting: compact and on one line, unless @pretty. */
char *tdmJSONValueToString(const tdmJSONValue *value, bool pretty);
