/*
 * jsontest.c: unit tests for the JSON value API (src/util/tdmjson.c)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <config.h>

#include <stdio.h>
#include <math.h>

#include "tdmjson.h"
#include "virerror.h"

static int failures;

#define CHECK(name, cond) \
    do { \
        if (cond) { \
            printf("ok - %s\n", name); \
        } else { \
            printf("not ok - %s\n", name); \
            failures++; \
        } \
    } while (0)


/* Parses @in and formats it back compactly; compares with @out. */
static bool
roundTrip(const char *in, const char *out)
{
    g_autoptr(tdmJSONValue) value = tdmJSONValueFromString(in);
    g_autofree char *text = NULL;

    if (!value) {
        fprintf(stderr, "# parse failed: %s: %s\n", in, virGetLastErrorMessage());
        return false;
    }
    if (!(text = tdmJSONValueToString(value, false)))
        return false;
    if (STRNEQ(text, out)) {
        fprintf(stderr, "# got '%s' want '%s'\n", text, out);
        return false;
    }
    return true;
}


static bool
rejects(const char *in)
{
    g_autoptr(tdmJSONValue) value = tdmJSONValueFromString(in);

    virResetLastError();
    return value == NULL;
}


static void
testParseFormat(void)
{
    CHECK("parse/format object",
          roundTrip(" { \"a\" : 1, \"b\": [true, false, null], \"c\": \"x\\ny\" } ",
                    "{\"a\":1,\"b\":[true,false,null],\"c\":\"x\\ny\"}"));
    CHECK("parse/format numbers",
          roundTrip("[-9223372036854775808, 18446744073709551615, 1.5, 1e3, 0]",
                    "[-9223372036854775808,18446744073709551615,1.5,1000.0,0]"));
    CHECK("parse/format nested empty", roundTrip("{\"a\":{},\"b\":[]}", "{\"a\":{},\"b\":[]}"));
    CHECK("parse/format unicode", roundTrip("\"\\u00e9\\u2603\"", "\"\xc3\xa9\xe2\x98\x83\""));
    CHECK("format has no newline",
          roundTrip("{\"a\":\"line1\\nline2\\r\"}", "{\"a\":\"line1\\nline2\\r\"}"));
    CHECK("parse scalar top level", roundTrip("42", "42"));

    CHECK("reject trailing garbage", rejects("{} x"));
    CHECK("reject two values", rejects("{} {}"));
    CHECK("reject truncated", rejects("{\"a\": [1, 2"));
    CHECK("reject empty", rejects(""));
    CHECK("reject whitespace only", rejects("   "));
    CHECK("reject duplicate key", rejects("{\"a\":1,\"a\":2}"));
    CHECK("reject bad utf8", rejects("\"\xff\xfe\""));
    CHECK("reject NUL in string", rejects("\"a\\u0000b\""));
    CHECK("reject number overflow", rejects("1e999"));
    CHECK("reject single quotes", rejects("{'a': 1}"));
    CHECK("reject comments", rejects("{\"a\": 1 /* x */}"));
}


static void
testDepth(void)
{
    g_autoptr(GString) deep = g_string_new(NULL);
    g_autoptr(GString) ok = g_string_new(NULL);
    g_autoptr(tdmJSONValue) value = NULL;
    size_t i;

    for (i = 0; i < TDM_JSON_MAX_DEPTH + 1; i++)
        g_string_append_c(deep, '[');
    for (i = 0; i < TDM_JSON_MAX_DEPTH + 1; i++)
        g_string_append_c(deep, ']');
    CHECK("reject depth over the limit", rejects(deep->str));

    for (i = 0; i < TDM_JSON_MAX_DEPTH; i++)
        g_string_append(ok, "{\"a\":");
    g_string_append(ok, "1");
    for (i = 0; i < TDM_JSON_MAX_DEPTH; i++)
        g_string_append_c(ok, '}');
    value = tdmJSONValueFromString(ok->str);
    CHECK("accept depth at the limit", value != NULL);
    if (value) {
        g_autofree char *text = tdmJSONValueToString(value, false);
        CHECK("format depth at the limit", text && STREQ(text, ok->str));
    }
}


static void
testSize(void)
{
    g_autofree char *big = g_new0(char, (size_t) TDM_JSON_MAX_SIZE + 3);
    g_autoptr(tdmJSONValue) value = NULL;

    big[0] = '"';
    memset(big + 1, 'a', TDM_JSON_MAX_SIZE);
    big[TDM_JSON_MAX_SIZE + 1] = '"';
    value = tdmJSONValueFromStringLen(big, TDM_JSON_MAX_SIZE + 2);
    virResetLastError();
    CHECK("reject input over the size limit", value == NULL);
}


static void
testGetters(void)
{
    g_autoptr(tdmJSONValue) v =
        tdmJSONValueFromString("{\"s\":\"str\",\"i\":-5,\"u\":18446744073709551615,"
                               "\"d\":2.5,\"b\":true,\"n\":null,\"o\":{\"x\":1},"
                               "\"a\":[1,2,3],\"big\":4294967296}");
    long long ll = 0;
    unsigned long long ull = 0;
    int i = 0;
    unsigned int ui = 0;
    double d = 0;
    bool b = false;

    if (!v) {
        CHECK("getters: parse", false);
        return;
    }
    CHECK("get string", STREQ_NULLABLE(tdmJSONValueObjectGetString(v, "s"), "str"));
    CHECK("get string wrong type", tdmJSONValueObjectGetString(v, "i") == NULL);
    CHECK("get missing key", tdmJSONValueObjectGet(v, "missing") == NULL);
    CHECK("get llong", tdmJSONValueObjectGetNumberLLong(v, "i", &ll) == 0 && ll == -5);
    CHECK("get ullong of negative fails", tdmJSONValueObjectGetNumberULLong(v, "i", &ull) < 0);
    CHECK("get ullong max", tdmJSONValueObjectGetNumberULLong(v, "u", &ull) == 0 &&
          ull == ULLONG_MAX);
    CHECK("get llong of huge fails", tdmJSONValueObjectGetNumberLLong(v, "u", &ll) < 0);
    CHECK("get int", tdmJSONValueObjectGetNumberInt(v, "i", &i) == 0 && i == -5);
    CHECK("get int overflow fails", tdmJSONValueObjectGetNumberInt(v, "big", &i) < 0);
    CHECK("get uint overflow fails", tdmJSONValueObjectGetNumberUInt(v, "big", &ui) < 0);
    CHECK("get double", tdmJSONValueObjectGetNumberDouble(v, "d", &d) == 0 && d == 2.5);
    CHECK("get double of int", tdmJSONValueObjectGetNumberDouble(v, "i", &d) == 0 && d == -5);
    CHECK("get llong of double fails", tdmJSONValueObjectGetNumberLLong(v, "d", &ll) < 0);
    CHECK("get boolean", tdmJSONValueObjectGetBoolean(v, "b", &b) == 0 && b);
    CHECK("is null", tdmJSONValueIsNull(tdmJSONValueObjectGet(v, "n")));
    CHECK("get object", tdmJSONValueObjectGetObject(v, "o") != NULL);
    CHECK("get object wrong type", tdmJSONValueObjectGetObject(v, "a") == NULL);
    CHECK("get array", tdmJSONValueArraySize(tdmJSONValueObjectGetArray(v, "a")) == 3);
    CHECK("array get out of range",
          tdmJSONValueArrayGet(tdmJSONValueObjectGetArray(v, "a"), 3) == NULL);
    CHECK("keys in order", tdmJSONValueObjectKeysNumber(v) == 9 &&
          STREQ(tdmJSONValueObjectGetKey(v, 0), "s") &&
          STREQ(tdmJSONValueObjectGetKey(v, 8), "big"));
    CHECK("getters on wrong container are safe",
          tdmJSONValueObjectGet(tdmJSONValueObjectGetArray(v, "a"), "x") == NULL &&
          tdmJSONValueArrayGet(v, 0) == NULL);
}


static void
testBuilders(void)
{
    g_autoptr(tdmJSONValue) arr = tdmJSONValueNewArray();
    g_autoptr(tdmJSONValue) obj = NULL;
    g_autoptr(tdmJSONValue) cmd = NULL;
    g_autoptr(tdmJSONValue) cmd2 = NULL;
    g_autoptr(tdmJSONValue) copy = NULL;
    g_autofree char *text = NULL;
    g_autofree char *text2 = NULL;
    g_autofree char *pretty = NULL;

    tdmJSONValueArrayAppendString(arr, "x");
    CHECK("object create",
          tdmJSONValueObjectCreate(&obj,
                                   "s:str", "v",
                                   "S:skipped", NULL,
                                   "i:int", -3,
                                   "u:uint", 3U,
                                   "I:ll", -1LL,
                                   "U:ull", ULLONG_MAX,
                                   "d:dbl", 0.25,
                                   "b:f", false,
                                   "B:skipfalse", false,
                                   "B:t", true,
                                   "n:nul",
                                   "a:arr", &arr,
                                   NULL) == 0 && obj && !arr);
    text = obj ? tdmJSONValueToString(obj, false) : NULL;
    CHECK("object create format",
          STREQ_NULLABLE(text, "{\"str\":\"v\",\"int\":-3,\"uint\":3,\"ll\":-1,"
                         "\"ull\":18446744073709551615,\"dbl\":0.25,\"f\":false,"
                         "\"t\":true,\"nul\":null,\"arr\":[\"x\"]}"));
    virResetLastError();
    {
        g_autoptr(tdmJSONValue) bad = NULL;
        CHECK("object create rejects NULL 's'",
              tdmJSONValueObjectCreate(&bad, "s:k", NULL, NULL) < 0 && !bad);
        CHECK("object create rejects bad spec",
              tdmJSONValueObjectCreate(&bad, "k", 1, NULL) < 0 && !bad);
        virResetLastError();
    }

    cmd = tdmJSONCommandBuild("migrate", "s:uri", "tcp:127.0.0.1:4444", "B:resume", false, NULL);
    text2 = cmd ? tdmJSONValueToString(cmd, false) : NULL;
    CHECK("command build",
          STREQ_NULLABLE(text2, "{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"tcp:127.0.0.1:4444\"}}"));
    cmd2 = tdmJSONCommandBuild("query-status", NULL);
    g_free(text2);
    text2 = cmd2 ? tdmJSONValueToString(cmd2, false) : NULL;
    CHECK("command build without arguments",
          STREQ_NULLABLE(text2, "{\"execute\":\"query-status\"}"));

    copy = tdmJSONValueCopy(obj);
    CHECK("copy equal", tdmJSONValueEqual(copy, obj));
    tdmJSONValueObjectSetString(copy, "str", "w");
    CHECK("set replaces", STREQ_NULLABLE(tdmJSONValueObjectGetString(copy, "str"), "w") &&
          tdmJSONValueObjectKeysNumber(copy) == tdmJSONValueObjectKeysNumber(obj));
    CHECK("copy is deep", !tdmJSONValueEqual(copy, obj) &&
          STREQ_NULLABLE(tdmJSONValueObjectGetString(obj, "str"), "v"));
    {
        tdmJSONValue *stolen = tdmJSONValueObjectSteal(copy, "arr");
        CHECK("steal", stolen && tdmJSONValueArraySize(stolen) == 1 &&
              !tdmJSONValueObjectHasKey(copy, "arr"));
        tdmJSONValueFree(stolen);
    }
    pretty = tdmJSONValueToString(obj, true);
    CHECK("pretty format", pretty && strchr(pretty, '\n'));
    {
        g_autoptr(tdmJSONValue) nan = tdmJSONValueNewNumberDouble(NAN);
        g_autofree char *t = tdmJSONValueToString(nan, false);
        virResetLastError();
        CHECK("format rejects NaN", t == NULL);
    }
    {
        g_autoptr(tdmJSONValue) bad = tdmJSONValueNewString("\xff");
        g_autofree char *t = tdmJSONValueToString(bad, false);
        virResetLastError();
        CHECK("format rejects invalid UTF-8", t == NULL);
    }
}


static void
testBigObject(void)
{
    g_autoptr(GString) s = g_string_new("{");
    g_autoptr(tdmJSONValue) v = NULL;
    long long n = -1;
    size_t i;

    for (i = 0; i < 1000; i++)
        g_string_append_printf(s, "%s\"k%zu\":%zu", i ? "," : "", i, i);
    g_string_append_c(s, '}');
    v = tdmJSONValueFromString(s->str);
    CHECK("big object parse", v && tdmJSONValueObjectKeysNumber(v) == 1000);
    CHECK("big object lookup", v && tdmJSONValueObjectGetNumberLLong(v, "k777", &n) == 0 &&
          n == 777);
    if (v) {
        tdmJSONValueObjectRemove(v, "k500");
        CHECK("big object remove then lookup",
              !tdmJSONValueObjectHasKey(v, "k500") &&
              tdmJSONValueObjectGetNumberLLong(v, "k999", &n) == 0 && n == 999);
    }

    g_string_truncate(s, 0);
    g_string_append_c(s, '{');
    for (i = 0; i < 100; i++)
        g_string_append_printf(s, "\"k%zu\":1,", i);
    g_string_append(s, "\"k42\":2}");
    CHECK("big object duplicate key rejected", rejects(s->str));
}


int
main(void)
{
    if (virInitialize() < 0) {
        fprintf(stderr, "virInitialize failed\n");
        return EXIT_FAILURE;
    }

    testParseFormat();
    testDepth();
    testSize();
    testGetters();
    testBuilders();
    testBigObject();

    return failures ? EXIT_FAILURE : EXIT_SUCCESS;
}
