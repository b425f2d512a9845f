# tests/plugin.mk
