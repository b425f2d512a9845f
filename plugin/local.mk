# plugin/: balloon.so, the collectd read plugin. Only module_register is exported.
#
# The plugin's code is a convenience library so that the cmocka tests link exactly the objects that
# balloon.so is made of, against a fake collectd core. collectd's headers bring collectd's own
# config.h (-DHAVE_CONFIG_H): no plugin file includes ours.
noinst_LTLIBRARIES += plugin/libballoonplugin.la
plugin_libballoonplugin_la_CPPFLAGS = $(AM_CPPFLAGS) $(COLLECTD_CPPFLAGS)
plugin_libballoonplugin_la_SOURCES = \
	plugin/balloon.c \
	plugin/bp_config.c plugin/bp_config.h \
	plugin/bp_fdlimit.c plugin/bp_fdlimit.h \
	plugin/bp_metrics.c plugin/bp_metrics.h \
	plugin/bp_report.c plugin/bp_report.h \
	plugin/bp_series.c plugin/bp_series.h \
	plugin/bp_sources.c plugin/bp_sources.h

plugindir = $(COLLECTD_PLUGINDIR)
plugin_LTLIBRARIES = plugin/balloon.la
plugin_balloon_la_SOURCES =
plugin_balloon_la_LIBADD = plugin/libballoonplugin.la agent/libagent.la -lm
plugin_balloon_la_LDFLAGS = $(AM_LDFLAGS) -module -avoid-version -shared \
	-export-symbols-regex '^module_register$$'

dist_man_MANS += plugin/collectd-balloon.5
