/* cppcheck-macros.h: what `make cppcheck` knows of libvirt's macros.
 * cppcheck runs without libvirt's internal headers (with them it takes
 * minutes and reports inside libvirt); these stand-ins for the few macros it
 * cannot parse around keep the code around them analysed.
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#define VIR_ENUM_IMPL(name, lastVal, ...) \
    static const char *const name ## TypeList[] = { __VA_ARGS__ }
#define VIR_ENUM_DECL(name) \
    const char *name ## TypeToString(int type); \
    int name ## TypeFromString(const char *type)
#define VIR_XPATH_NODE_AUTORESTORE(ctxt) \
    xmlNodePtr ctxt ## _saved = (ctxt)->node
#define G_DEFINE_AUTOPTR_CLEANUP_FUNC(type, func)
#define G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(type, func)
#define G_LOCK_DEFINE_STATIC(name) static int name ## _lock
