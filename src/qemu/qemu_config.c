/*
 * qemu_config.c: qemu.conf, the settings of the Tandem driver: a parser
 * for libvirt's configuration file syntax and the table of known keys
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <config.h>

#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <unistd.h>

#include "qemu_config.h"
#include "virerror.h"
#include "virlog.h"

#define VIR_FROM_THIS VIR_FROM_QEMU

VIR_LOG_INIT("qemu.qemu_config");

/* Largest qemu.conf we are willing to read. */
#define QEMU_CONFIG_MAX_SIZE (1024 * 1024)

/* Timeouts are in seconds; callers turn them into milliseconds in an int. */
#define QEMU_CONFIG_TIMEOUT_MAX (INT_MAX / 1000)

/* ---------------------------------------------------------------------- */
/* Values and entries, as read from the file                              */
/* ---------------------------------------------------------------------- */

typedef enum {
    QEMU_CONF_VALUE_INT,
    QEMU_CONF_VALUE_STRING,
    QEMU_CONF_VALUE_LIST,
} qemuConfValueType;

typedef struct _qemuConfValue qemuConfValue;
struct _qemuConfValue {
    qemuConfValueType type;
    long long num;              /* QEMU_CONF_VALUE_INT */
    char *str;                  /* QEMU_CONF_VALUE_STRING */
    GPtrArray *items;           /* QEMU_CONF_VALUE_LIST: of qemuConfValue */
};

typedef struct _qemuConfEntry qemuConfEntry;
struct _qemuConfEntry {
    char *key;
    unsigned int line;
    qemuConfValue *value;
};

static void
qemuConfValueFree(qemuConfValue *value)
{
    if (!value)
        return;
    g_free(value->str);
    if (value->items)
        g_ptr_array_unref(value->items);
    g_free(value);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(qemuConfValue, qemuConfValueFree);

static void
qemuConfEntryFree(qemuConfEntry *entry)
{
    if (!entry)
        return;
    g_free(entry->key);
    qemuConfValueFree(entry->value);
    g_free(entry);
}

/* ---------------------------------------------------------------------- */
/* The parser                                                             */
/*                                                                        */
/*   file  := { blank | comment | stmt [';'] [comment] EOL }              */
/*   stmt  := key '=' value                                               */
/*   key   := [A-Za-z_][A-Za-z0-9_]*                                      */
/*   value := int | string | list                                         */
/*   int   := ['+'|'-'] digit+                                            */
/*   string:= '"' chars '"' | "'" chars "'"    (\\ \" \' are escapes)     */
/*   list  := '[' [ elem { ',' elem } [','] ] ']'  (may span lines and    */
/*            hold comments; elem is an int or a string)                  */
/* ---------------------------------------------------------------------- */

typedef struct _qemuConfParser qemuConfParser;
struct _qemuConfParser {
    const char *name;           /* file name, for messages */
    const char *cur;
    const char *end;
    unsigned int line;          /* 1-based line of @cur */
};

static void G_GNUC_PRINTF(3, 4)
qemuConfSyntaxError(qemuConfParser *p,
                    unsigned int line,
                    const char *fmt,
                    ...)
{
    va_list ap;
    g_autofree char *problem = NULL;

    va_start(ap, fmt);
    problem = g_strdup_vprintf(fmt, ap);
    va_end(ap);

    virReportError(VIR_ERR_CONF_SYNTAX, _("%s:%u: %s"),
                   p->name, line, problem);
}

static bool
qemuConfParserAtEnd(qemuConfParser *p)
{
    return p->cur >= p->end;
}

/* Spaces and tabs (and the CR of CRLF line ends), not newlines. */
static void
qemuConfParserSkipBlanks(qemuConfParser *p)
{
    while (!qemuConfParserAtEnd(p) &&
           (*p->cur == ' ' || *p->cur == '\t' || *p->cur == '\r'))
        p->cur++;
}

/* A comment runs from '#' to the end of the line (newline excluded). */
static void
qemuConfParserSkipComment(qemuConfParser *p)
{
    if (qemuConfParserAtEnd(p) || *p->cur != '#')
        return;
    while (!qemuConfParserAtEnd(p) && *p->cur != '\n')
        p->cur++;
}

/* Blanks, comments and newlines: the space between list elements. */
static void
qemuConfParserSkipSpace(qemuConfParser *p)
{
    while (!qemuConfParserAtEnd(p)) {
        qemuConfParserSkipBlanks(p);
        qemuConfParserSkipComment(p);
        if (qemuConfParserAtEnd(p) || *p->cur != '\n')
            return;
        p->cur++;
        p->line++;
    }
}

static char *
qemuConfParseKey(qemuConfParser *p)
{
    const char *start = p->cur;

    if (qemuConfParserAtEnd(p) ||
        !(g_ascii_isalpha(*p->cur) || *p->cur == '_'))
        return NULL;
    while (!qemuConfParserAtEnd(p) &&
           (g_ascii_isalnum(*p->cur) || *p->cur == '_'))
        p->cur++;
    return g_strndup(start, p->cur - start);
}

static qemuConfValue *
qemuConfParseInt(qemuConfParser *p,
                 const char *key)
{
    bool negative = false;
    unsigned long long magnitude = 0;
    bool overflow = false;
    qemuConfValue *value;

    if (*p->cur == '+' || *p->cur == '-') {
        negative = *p->cur == '-';
        p->cur++;
    }
    if (qemuConfParserAtEnd(p) || !g_ascii_isdigit(*p->cur)) {
        qemuConfSyntaxError(p, p->line, _("invalid number in the value of '%s'"),
                            key);
        return NULL;
    }
    while (!qemuConfParserAtEnd(p) && g_ascii_isdigit(*p->cur)) {
        unsigned int digit = *p->cur - '0';

        if (magnitude > ((unsigned long long) LLONG_MAX + 1 - digit) / 10)
            overflow = true;
        else
            magnitude = magnitude * 10 + digit;
        p->cur++;
    }
    if (overflow || (!negative && magnitude > LLONG_MAX)) {
        qemuConfSyntaxError(p, p->line, _("number out of range in the value of '%s'"),
                            key);
        return NULL;
    }

    value = g_new0(qemuConfValue, 1);
    value->type = QEMU_CONF_VALUE_INT;
    if (negative)
        value->num = magnitude == (unsigned long long) LLONG_MAX + 1 ?
            LLONG_MIN : -(long long) magnitude;
    else
        value->num = magnitude;
    return value;
}

static qemuConfValue *
qemuConfParseString(qemuConfParser *p,
                    const char *key)
{
    char quote = *p->cur;
    g_autoptr(GString) buf = g_string_new(NULL);
    qemuConfValue *value;

    p->cur++;
    for (;;) {
        if (qemuConfParserAtEnd(p) || *p->cur == '\n') {
            qemuConfSyntaxError(p, p->line,
                                _("unterminated string in the value of '%s'"),
                                key);
            return NULL;
        }
        if (*p->cur == quote) {
            p->cur++;
            break;
        }
        if (*p->cur == '\\' && p->cur + 1 < p->end &&
            (p->cur[1] == '\\' || p->cur[1] == '"' || p->cur[1] == '\'')) {
            /* a known escape; any other backslash is kept as written */
            g_string_append_c(buf, p->cur[1]);
            p->cur += 2;
            continue;
        }
        g_string_append_c(buf, *p->cur);
        p->cur++;
    }

    value = g_new0(qemuConfValue, 1);
    value->type = QEMU_CONF_VALUE_STRING;
    value->str = g_string_free(g_steal_pointer(&buf), FALSE);
    return value;
}

/* A scalar: an integer or a string. */
static qemuConfValue *
qemuConfParseScalar(qemuConfParser *p,
                    const char *key)
{
    if (qemuConfParserAtEnd(p) || *p->cur == '\n' || *p->cur == '#') {
        qemuConfSyntaxError(p, p->line, _("missing value for '%s'"), key);
        return NULL;
    }
    if (*p->cur == '"' || *p->cur == '\'')
        return qemuConfParseString(p, key);
    if (g_ascii_isdigit(*p->cur) || *p->cur == '+' || *p->cur == '-')
        return qemuConfParseInt(p, key);
    if (*p->cur == '[') {
        qemuConfSyntaxError(p, p->line, _("nested list in the value of '%s'"),
                            key);
        return NULL;
    }
    qemuConfSyntaxError(p, p->line,
                        _("invalid value for '%s': expected a number, a quoted string or a list"),
                        key);
    return NULL;
}

static qemuConfValue *
qemuConfParseList(qemuConfParser *p,
                  const char *key)
{
    unsigned int startLine = p->line;
    bool needSeparator = false;
    g_autoptr(qemuConfValue) list = g_new0(qemuConfValue, 1);

    list->type = QEMU_CONF_VALUE_LIST;
    list->items = g_ptr_array_new_with_free_func((GDestroyNotify) qemuConfValueFree);

    p->cur++; /* '[' */
    for (;;) {
        qemuConfValue *item;

        qemuConfParserSkipSpace(p);
        if (qemuConfParserAtEnd(p)) {
            qemuConfSyntaxError(p, startLine,
                                _("list in the value of '%s' is not closed by ']'"),
                                key);
            return NULL;
        }
        if (*p->cur == ']') {
            p->cur++;
            break;
        }
        if (needSeparator) {
            if (*p->cur != ',') {
                qemuConfSyntaxError(p, p->line,
                                    _("expected ',' or ']' in the list of '%s'"),
                                    key);
                return NULL;
            }
            p->cur++;
            needSeparator = false;
            continue;
        }
        if (*p->cur == ',') {
            qemuConfSyntaxError(p, p->line,
                                _("missing list element before ',' in the value of '%s'"),
                                key);
            return NULL;
        }
        if (!(item = qemuConfParseScalar(p, key)))
            return NULL;
        g_ptr_array_add(list->items, item);
        needSeparator = true;
    }

    return g_steal_pointer(&list);
}

static qemuConfValue *
qemuConfParseValue(qemuConfParser *p,
                   const char *key)
{
    if (!qemuConfParserAtEnd(p) && *p->cur == '[')
        return qemuConfParseList(p, key);
    return qemuConfParseScalar(p, key);
}

/* One statement 'key = value', @p at the first character of the key. */
static qemuConfEntry *
qemuConfParseStatement(qemuConfParser *p)
{
    g_autofree char *key = NULL;
    unsigned int line = p->line;
    qemuConfValue *value;
    qemuConfEntry *entry;

    if (!(key = qemuConfParseKey(p))) {
        qemuConfSyntaxError(p, p->line, "%s", _("expected a setting name"));
        return NULL;
    }
    qemuConfParserSkipBlanks(p);
    if (qemuConfParserAtEnd(p) || *p->cur != '=') {
        qemuConfSyntaxError(p, p->line, _("expected '=' after '%s'"), key);
        return NULL;
    }
    p->cur++;
    qemuConfParserSkipBlanks(p);
    if (!(value = qemuConfParseValue(p, key)))
        return NULL;

    entry = g_new0(qemuConfEntry, 1);
    entry->key = g_steal_pointer(&key);
    entry->line = line;
    entry->value = value;
    return entry;
}

/* Parse @len bytes of @text into a list of qemuConfEntry (in file order).
 * Returns NULL with an error reported on a syntax error. */
static GPtrArray *
qemuConfParse(const char *name,
              const char *text,
              size_t len)
{
    qemuConfParser p = { .name = name, .cur = text, .end = text + len, .line = 1 };
    g_autoptr(GPtrArray) entries = NULL;

    entries = g_ptr_array_new_with_free_func((GDestroyNotify) qemuConfEntryFree);

    while (!qemuConfParserAtEnd(&p)) {
        qemuConfEntry *entry;

        qemuConfParserSkipBlanks(&p);
        qemuConfParserSkipComment(&p);
        if (qemuConfParserAtEnd(&p))
            break;
        if (*p.cur == '\n') {
            p.cur++;
            p.line++;
            continue;
        }

        if (!(entry = qemuConfParseStatement(&p)))
            return NULL;
        g_ptr_array_add(entries, entry);

        /* what may follow a value: ';' and another statement, a comment,
         * the end of the line */
        qemuConfParserSkipBlanks(&p);
        if (!qemuConfParserAtEnd(&p) && *p.cur == ';') {
            p.cur++;
            continue;
        }
        qemuConfParserSkipComment(&p);
        if (!qemuConfParserAtEnd(&p) && *p.cur != '\n') {
            qemuConfSyntaxError(&p, p.line,
                                _("unexpected text after the value of '%s'"),
                                entry->key);
            return NULL;
        }
    }

    return g_steal_pointer(&entries);
}

/* ---------------------------------------------------------------------- */
/* The keys                                                               */
/* ---------------------------------------------------------------------- */

typedef enum {
    QEMU_CONFIG_KEY_UINT,       /* unsigned int field, range [min, max] */
    QEMU_CONFIG_KEY_BOOL,       /* bool field, written 0 or 1 */
    QEMU_CONFIG_KEY_STRING,     /* char * field, non-empty */
} qemuConfigKeyType;

/* Extra check of a string value: returns NULL when fine, or the problem
 * (translated, allocated). */
typedef char *(*qemuConfigKeyCheck)(const char *value);

typedef struct _qemuConfigKey qemuConfigKey;
struct _qemuConfigKey {
    const char *name;
    qemuConfigKeyType type;
    size_t offset;              /* of the field in qemuConfig */
    long long min;              /* QEMU_CONFIG_KEY_UINT */
    long long max;
    qemuConfigKeyCheck check;   /* QEMU_CONFIG_KEY_STRING, optional */
};

/* offsetof(qemuConfig, field), refusing to compile when the field does
 * not have type @ctype. */
#define QEMU_CONFIG_OFFSET(field, ctype) \
    (offsetof(qemuConfig, field) + \
     0 * sizeof(char[__builtin_types_compatible_p(__typeof__(((qemuConfig *)0)->field), \
                                                  ctype) ? 1 : -1]))

#define QEMU_CONFIG_UINT(key, field, lo, hi) \
    { key, QEMU_CONFIG_KEY_UINT, QEMU_CONFIG_OFFSET(field, unsigned int), lo, hi, NULL }
#define QEMU_CONFIG_BOOL(key, field) \
    { key, QEMU_CONFIG_KEY_BOOL, QEMU_CONFIG_OFFSET(field, bool), 0, 1, NULL }
#define QEMU_CONFIG_STRING(key, field, checker) \
    { key, QEMU_CONFIG_KEY_STRING, QEMU_CONFIG_OFFSET(field, char *), 0, 0, checker }

static const char *const qemuConfigImageFormats[] = {
    "raw", "gzip", "bzip2", "xz", "lzop", "zstd", NULL
};

static char *
qemuConfigCheckImageFormat(const char *value)
{
    g_autofree char *allowed = NULL;
    size_t i;

    for (i = 0; qemuConfigImageFormats[i]; i++) {
        if (g_str_equal(value, qemuConfigImageFormats[i]))
            return NULL;
    }

    allowed = g_strjoinv(", ", (char **) qemuConfigImageFormats);
    return g_strdup_printf(_("unknown image format '%s' (expected one of: %s)"),
                           value, allowed);
}

static char *
qemuConfigCheckAbsolutePath(const char *value)
{
    if (!g_path_is_absolute(value))
        return g_strdup(_("expected an absolute path"));
    return NULL;
}

static const qemuConfigKey qemuConfigKeys[] = {
    QEMU_CONFIG_UINT("job_wait_timeout", jobWaitTimeout, 1, QEMU_CONFIG_TIMEOUT_MAX),
    QEMU_CONFIG_UINT("monitor_timeout_query", monitorTimeoutQuery, 1, QEMU_CONFIG_TIMEOUT_MAX),
    QEMU_CONFIG_UINT("monitor_timeout_modify", monitorTimeoutModify, 1, QEMU_CONFIG_TIMEOUT_MAX),
    QEMU_CONFIG_UINT("monitor_timeout_long", monitorTimeoutLong, 1, QEMU_CONFIG_TIMEOUT_MAX),
    QEMU_CONFIG_UINT("agent_timeout", agentTimeout, 1, QEMU_CONFIG_TIMEOUT_MAX),
    QEMU_CONFIG_UINT("destroy_timeout", destroyTimeout, 0, QEMU_CONFIG_TIMEOUT_MAX),
    QEMU_CONFIG_UINT("migration_port_min", migrationPortMin, 1, 65535),
    QEMU_CONFIG_UINT("migration_port_max", migrationPortMax, 1, 65535),
    QEMU_CONFIG_STRING("migration_address", migrationAddress, NULL),
    QEMU_CONFIG_STRING("migration_host", migrationHost, NULL),
    QEMU_CONFIG_STRING("user", user, NULL),
    QEMU_CONFIG_STRING("group", group, NULL),
    QEMU_CONFIG_BOOL("dynamic_ownership", dynamicOwnership),
    QEMU_CONFIG_STRING("vnc_listen", vncListen, NULL),
    QEMU_CONFIG_STRING("spice_listen", spiceListen, NULL),
    QEMU_CONFIG_STRING("save_image_format", saveImageFormat, qemuConfigCheckImageFormat),
    QEMU_CONFIG_STRING("dump_image_format", dumpImageFormat, qemuConfigCheckImageFormat),
    QEMU_CONFIG_STRING("snapshot_image_format", snapshotImageFormat, qemuConfigCheckImageFormat),
    QEMU_CONFIG_STRING("emulator", emulator, qemuConfigCheckAbsolutePath),
    QEMU_CONFIG_UINT("max_queued", maxQueuedJobs, 0, UINT_MAX),
};

/* Index of @name in qemuConfigKeys, or -1 when it is not a known key. */
static ssize_t
qemuConfigKeyIndex(const char *name)
{
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(qemuConfigKeys); i++) {
        if (g_str_equal(qemuConfigKeys[i].name, name))
            return i;
    }
    return -1;
}

/* A value checked against its key, not yet stored in the config. */
typedef struct _qemuConfigPending qemuConfigPending;
struct _qemuConfigPending {
    const qemuConfEntry *entry;     /* NULL: the key was not in the file */
    long long num;
    const char *str;                /* borrowed from @entry */
};

static void G_GNUC_PRINTF(3, 4)
qemuConfigValueError(const char *name,
                     const char *key,
                     const char *fmt,
                     ...)
{
    va_list ap;
    g_autofree char *problem = NULL;

    va_start(ap, fmt);
    problem = g_strdup_vprintf(fmt, ap);
    va_end(ap);

    virReportError(VIR_ERR_CONF_SYNTAX, _("%s: invalid value for '%s': %s"),
                   name, key, problem);
}

static void
qemuConfigIntegerError(const char *name,
                       const qemuConfigKey *key)
{
    if (key->min == 0)
        qemuConfigValueError(name, key->name, "%s",
                             _("expected a non-negative integer"));
    else if (key->min == 1)
        qemuConfigValueError(name, key->name, "%s",
                             _("expected a positive integer"));
    else
        qemuConfigValueError(name, key->name, _("expected an integer of at least %lld"),
                             key->min);
}

/* Check @entry against @key and fill @pending.  Returns 0 / -1. */
static int
qemuConfigCheckEntry(const char *name,
                     const qemuConfigKey *key,
                     const qemuConfEntry *entry,
                     qemuConfigPending *pending)
{
    const qemuConfValue *value = entry->value;
    g_autofree char *problem = NULL;

    switch (key->type) {
    case QEMU_CONFIG_KEY_UINT:
        if (value->type != QEMU_CONF_VALUE_INT || value->num < key->min) {
            qemuConfigIntegerError(name, key);
            return -1;
        }
        if (value->num > key->max) {
            qemuConfigValueError(name, key->name,
                                 _("%lld is too large (the maximum is %lld)"),
                                 value->num, key->max);
            return -1;
        }
        pending->num = value->num;
        break;

    case QEMU_CONFIG_KEY_BOOL:
        if (value->type != QEMU_CONF_VALUE_INT ||
            (value->num != 0 && value->num != 1)) {
            qemuConfigValueError(name, key->name, "%s", _("expected 0 or 1"));
            return -1;
        }
        pending->num = value->num;
        break;

    case QEMU_CONFIG_KEY_STRING:
        if (value->type != QEMU_CONF_VALUE_STRING) {
            qemuConfigValueError(name, key->name, "%s",
                                 _("expected a quoted string"));
            return -1;
        }
        if (!*value->str) {
            qemuConfigValueError(name, key->name, "%s",
                                 _("expected a non-empty string"));
            return -1;
        }
        if (key->check && (problem = key->check(value->str))) {
            qemuConfigValueError(name, key->name, "%s", problem);
            return -1;
        }
        pending->str = value->str;
        break;
    }

    pending->entry = entry;
    return 0;
}

static unsigned int
qemuConfigPendingUInt(const qemuConfig *cfg,
                      const qemuConfigPending *pending,
                      const char *keyName)
{
    ssize_t idx = qemuConfigKeyIndex(keyName);

    if (idx < 0)
        return 0; /* cannot happen: callers name keys of the table */
    if (pending[idx].entry)
        return pending[idx].num;
    return *(const unsigned int *) ((const char *) cfg + qemuConfigKeys[idx].offset);
}

/* Checks that involve several keys, on the config as it would be. */
static int
qemuConfigCheckPending(const qemuConfig *cfg,
                       const qemuConfigPending *pending,
                       const char *name)
{
    unsigned int portMin = qemuConfigPendingUInt(cfg, pending, "migration_port_min");
    unsigned int portMax = qemuConfigPendingUInt(cfg, pending, "migration_port_max");

    if (portMin > portMax) {
        virReportError(VIR_ERR_CONF_SYNTAX,
                       _("%s: migration_port_min (%u) is greater than migration_port_max (%u)"),
                       name, portMin, portMax);
        return -1;
    }
    return 0;
}

static void
qemuConfigCommit(qemuConfig *cfg,
                 const qemuConfigPending *pending)
{
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(qemuConfigKeys); i++) {
        const qemuConfigKey *key = &qemuConfigKeys[i];
        char *field = (char *) cfg + key->offset;

        if (!pending[i].entry)
            continue;

        switch (key->type) {
        case QEMU_CONFIG_KEY_UINT:
            *(unsigned int *) field = pending[i].num;
            break;
        case QEMU_CONFIG_KEY_BOOL:
            *(bool *) field = pending[i].num != 0;
            break;
        case QEMU_CONFIG_KEY_STRING:
            g_free(*(char **) field);
            *(char **) field = g_strdup(pending[i].str);
            break;
        }
    }
}

/* Parse @len bytes of @text named @name and apply them to @cfg: either
 * every setting is applied, or (on error) none. */
static int
qemuConfigLoadBuffer(qemuConfig *cfg,
                     const char *text,
                     size_t len,
                     const char *name)
{
    g_autoptr(GPtrArray) entries = NULL;
    g_autofree qemuConfigPending *pending = NULL;
    size_t i;
    int ret = -1;

    if (!(entries = qemuConfParse(name, text, len)))
        goto cleanup;

    pending = g_new0(qemuConfigPending, G_N_ELEMENTS(qemuConfigKeys));

    for (i = 0; i < entries->len; i++) {
        const qemuConfEntry *entry = g_ptr_array_index(entries, i);
        ssize_t idx = qemuConfigKeyIndex(entry->key);

        if (idx < 0) {
            VIR_WARN("%s:%u: unknown setting '%s' ignored",
                     name, entry->line, entry->key);
            continue;
        }
        if (pending[idx].entry) {
            /* as libvirt does: the first occurrence counts */
            VIR_WARN("%s:%u: setting '%s' was already set on line %u; ignored",
                     name, entry->line, entry->key, pending[idx].entry->line);
            continue;
        }
        if (qemuConfigCheckEntry(name, &qemuConfigKeys[idx], entry, &pending[idx]) < 0)
            goto cleanup;
        VIR_DEBUG("%s:%u: %s set", name, entry->line, entry->key);
    }

    if (qemuConfigCheckPending(cfg, pending, name) < 0)
        goto cleanup;

    qemuConfigCommit(cfg, pending);
    ret = 0;

 cleanup:
    return ret;
}

/* ---------------------------------------------------------------------- */
/* The API                                                                */
/* ---------------------------------------------------------------------- */

qemuConfig *
qemuConfigNew(bool privileged)
{
    qemuConfig *cfg = g_new0(qemuConfig, 1);

    cfg->jobWaitTimeout = 30;
    cfg->monitorTimeoutQuery = 10;
    cfg->monitorTimeoutModify = 30;
    cfg->monitorTimeoutLong = 300;
    cfg->agentTimeout = 5;
    cfg->destroyTimeout = 10;

    cfg->migrationPortMin = 49152;
    cfg->migrationPortMax = 49215;

    if (privileged) {
        cfg->user = g_strdup("libvirt-qemu");
        cfg->group = g_strdup("libvirt-qemu");
    }
    cfg->dynamicOwnership = true;
    cfg->vncListen = g_strdup("127.0.0.1");
    cfg->spiceListen = g_strdup("127.0.0.1");
    cfg->saveImageFormat = g_strdup("raw");
    cfg->dumpImageFormat = g_strdup("raw");
    cfg->snapshotImageFormat = g_strdup("raw");
    cfg->emulator = g_strdup(QEMU_BINARY);
    cfg->maxQueuedJobs = 0;

    return cfg;
}

void
qemuConfigFree(qemuConfig *cfg)
{
    if (!cfg)
        return;
    g_free(cfg->migrationAddress);
    g_free(cfg->migrationHost);
    g_free(cfg->user);
    g_free(cfg->group);
    g_free(cfg->vncListen);
    g_free(cfg->spiceListen);
    g_free(cfg->saveImageFormat);
    g_free(cfg->dumpImageFormat);
    g_free(cfg->snapshotImageFormat);
    g_free(cfg->emulator);
    g_free(cfg);
}

int
qemuConfigLoadString(qemuConfig *cfg,
                     const char *text,
                     const char *name)
{
    return qemuConfigLoadBuffer(cfg, text, strlen(text), name ? name : "qemu.conf");
}

int
qemuConfigLoadFile(qemuConfig *cfg,
                   const char *path,
                   bool allowMissing)
{
    g_autoptr(GByteArray) buf = g_byte_array_new();
    int fd = -1;
    int ret = -1;

    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        if (errno == ENOENT && allowMissing) {
            VIR_DEBUG("no configuration file '%s', using the defaults", path);
            ret = 0;
            goto cleanup;
        }
        virReportSystemError(errno, _("cannot open configuration file '%s'"),
                             path);
        goto cleanup;
    }

    for (;;) {
        guint8 chunk[4096];
        ssize_t got = read(fd, chunk, sizeof(chunk));

        if (got < 0) {
            if (errno == EINTR)
                continue;
            virReportSystemError(errno, _("cannot read configuration file '%s'"),
                                 path);
            goto cleanup;
        }
        if (got == 0)
            break;
        if (buf->len + got > QEMU_CONFIG_MAX_SIZE) {
            virReportError(VIR_ERR_CONF_SYNTAX,
                           _("%s: configuration file larger than %d bytes"),
                           path, QEMU_CONFIG_MAX_SIZE);
            goto cleanup;
        }
        g_byte_array_append(buf, chunk, got);
    }

    VIR_DEBUG("loading configuration file '%s'", path);
    ret = qemuConfigLoadBuffer(cfg, (const char *) buf->data, buf->len, path);

 cleanup:
    if (fd >= 0)
        close(fd);
    return ret;
}
