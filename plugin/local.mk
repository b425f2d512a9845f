# plugin/: balloon.so, the collectd read plugin. Only module_register is exported.
