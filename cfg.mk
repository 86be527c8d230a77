# cfg.mk: project settings and rules for gnulib's maintainer makefile
# (`make syntax-check`).  maint.mk and GNUmakefile come from Debian's gnulib
# package; autogen.sh copies them into the tree.
# SPDX-License-Identifier: LGPL-2.1-or-later

# gnulib checks that do not apply to a libvirt driver.
local-checks-to-skip = \
  sc_GPL_version \
  sc_copyright_check \
  sc_immutable_NEWS \
  sc_prohibit_strcmp \
  sc_prohibit_always_true_header_tests \
  sc_prohibit_gnu_make_extensions \
  sc_error_message_uppercase \
  sc_error_message_period \
  sc_unmarked_diagnostics \
  sc_bindtextdomain \
  sc_prohibit_atoi_atof \
  sc_program_name \
  sc_texinfo_acronym \
  sc_prohibit_intprops_without_use \
  sc_prohibit_magic_number_exit \
  sc_makefile_at_at_check \
  sc_cast_of_argument_to_free \
  sc_cast_of_x_alloc_return_value \
  sc_prohibit_test_minus_ao \
  sc_trailing_blank \
  sc_indent \
  sc_file_system \
  sc_changelog \
  sc_unportable_grep_q \
  sc_prohibit_stat_st_blocks \
  sc_prohibit_test_double_equal

# Files generated or taken from elsewhere are not ours to check.
VC_LIST_ALWAYS_EXCLUDE_REGEX = ^(build-aux/tap-driver\.sh|tests/.*data/.*\.json|tests/fuzz/corpus-.*/.*|po/.*\.po)$$

# The test guest is freestanding code that runs inside QEMU, not on the host.
exclude_file_name_regexp--sc_require_config_h = ^tests/guest/dirty/
exclude_file_name_regexp--sc_require_config_h_first = ^tests/guest/dirty/
# libvirt's own wording, kept for users who grep for it
exclude_file_name_regexp--sc_prohibit_undesirable_word_seq = ^src/qemu/qemu_domain_query\.c$$
# test scripts quote driver messages (and their French) but are not
# translated, and their command lines are no --help texts
exclude_file_name_regexp--sc_po_check = ^tests/
exclude_file_name_regexp--sc_two_space_separator_in_usage = ^tests/

# --- Tandem rules -------------------------------------------------------

# C sources are indented with spaces.
sc_TAB_in_C:
	@prohibit='	' in_vc_files='\.[ch]$$' \
	halt='indent C code with spaces, not TABs' \
	  $(_sc_search_regexp)

# No unbounded string functions.
sc_prohibit_sprintf:
	@prohibit='\<v?sprintf *\(' in_vc_files='\.[ch]$$' \
	halt='use g_strdup_printf or g_snprintf, not sprintf' \
	  $(_sc_search_regexp)

sc_prohibit_strcpy:
	@prohibit='\<(strcpy|strcat|stpcpy) *\(' in_vc_files='\.[ch]$$' \
	halt='use g_strdup/g_strlcpy, not strcpy/strcat' \
	  $(_sc_search_regexp)

# Memory comes from GLib: g_new0/g_free, never raw malloc.
sc_prohibit_raw_allocation:
	@prohibit='\<(malloc|calloc|realloc) *\(' in_vc_files='\.[ch]$$' \
	exclude='sc_prohibit_raw_allocation' \
	halt='use g_new0/g_renew/g_free, not malloc/calloc/realloc' \
	  $(_sc_search_regexp)

# Errors reported to users are translatable.
sc_libvirt_unmarked_diagnostics:
	@prohibit='\<virReportError *\([A-Z_]+, *"[^"]*[a-zA-Z]{2}' \
	in_vc_files='\.[ch]$$' \
	halt='mark virReportError messages for translation with _()' \
	  $(_sc_search_regexp)

# Every source file carries the project license.
sc_license_header:
	@fail=0; for f in $$($(VC_LIST_EXCEPT) | grep -E '\.(c|h|py|sh)$$|/run$$'); do \
	  grep -q 'SPDX-License-Identifier: LGPL-2.1-or-later' $$f || { echo "$$f: no SPDX line"; fail=1; }; \
	done; test $$fail = 0 || { echo 'add SPDX-License-Identifier: LGPL-2.1-or-later' 1>&2; exit 1; }

# Every file that marks messages is listed for gettext.
sc_po_files_listed:
	@fail=0; for f in $$($(VC_LIST_EXCEPT) | grep -E '^src/.*\.c$$'); do \
	  if grep -q '_("' $$f && ! grep -qx "$$f" $(srcdir)/po/POTFILES.in; then \
	    echo "$$f: marks messages but is not in po/POTFILES.in"; fail=1; fi; \
	done; test $$fail = 0 || exit 1

# The job model is ours: libvirt's generic job API stays unused.
sc_prohibit_libvirt_job_api:
	@prohibit='\<(virDomainObjBeginJob|virDomainObjEndJob|virDomainJobObj[A-Za-z]*) *\(' \
	in_vc_files='^src/.*\.[ch]$$' \
	halt='Tandem has its own job model (DESIGN.md 3): do not call libvirt job API' \
	  $(_sc_search_regexp)

# JSON is ours too (src/util/tdmjson): libvirt's virJSON is off limits.
sc_prohibit_libvirt_json:
	@prohibit='\<virJSON[A-Za-z]* *\(|"virjson\.h"' \
	in_vc_files='^src/.*\.[ch]$$' \
	halt='use tdmJSON (src/util/tdmjson.h), not libvirt virJSON' \
	  $(_sc_search_regexp)

# `make syntax-check` also works in a tree that is not configured
# (maint.mk then needs to be told the makefile that drives it).
ifeq ($(wildcard Makefile),)
_gl-Makefile := GNUmakefile
SED ?= sed
GREP ?= grep
EGREP ?= grep -E
.DEFAULT_GOAL := tandem-not-configured
tandem-not-configured:
	@echo "There is no Makefile: run ./autogen.sh first ('make syntax-check' works without it)." 1>&2
	@exit 1
endif
