# Cycle time against the number of domains, log-log, for tests/bench/run.sh.
# Called with -e "libvirt='FILE'; sim='FILE'; out='PNG'"; libvirt has "N balloon virt floor floor10"
# rows and sim "N cycle floor" rows, in ms.
set terminal pngcairo size 900,600 noenhanced font ",11"
set output out
set title "collectd read cycle time (median) against the number of domains"
set xlabel "domains"
set ylabel "cycle wall time (ms)"
set logscale xy
set grid xtics ytics mxtics mytics
set key top left
set format x "%g"
set format y "%g"
plot libvirt using 1:3 with linespoints lw 2 pt 7 title "collectd virt plugin (libvirt, serial)", \
     libvirt using 1:2 with linespoints lw 2 pt 5 title "balloon plugin (libvirt)", \
     libvirt using 1:4 with linespoints lw 2 pt 9 dt 2 title "floor: bare virDomainQemuMonitorCommand, same pool", \
     libvirt using 1:5 with linespoints lw 1 pt 8 dt 3 title "floor with 10 commands in flight (one connection)", \
     sim using 1:2 with linespoints lw 2 pt 13 title "balloon plugin (balloon-sim, QMP sockets)", \
     sim using 1:3 with linespoints lw 2 pt 11 dt 2 title "floor: bare sendmsg/recv/yajl over the same sockets"
