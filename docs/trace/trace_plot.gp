set terminal pngcairo size 900,560 font 'sans,11'
set datafile commentschars '#'
set logscale x
set grid
set key top left
set xlabel 'cache capacity (% of the trace''s distinct blocks)'
set output 'docs/trace/trace_hit_ratio.png'
set title 'Prefix hit ratio on the conversation trace'
set ylabel 'prefix hit ratio (%)'
set yrange [0:*]
plot 'docs/trace/trace_plot.dat' using 1:4 with linespoints lw 2 title 'Belady (offline)', '' using 1:2 with linespoints lw 3 title 'kvcache (replayed)', '' using 1:3 with linespoints lw 2 title 'LRU (offline)', '' using 1:10 with linespoints dt 2 title 'kvcache, concurrent workers'
set output 'docs/trace/trace_service.png'
set title 'Replay service figures (host tier)'
set ylabel 'latency (us)'
set logscale y
set yrange [*:*]
set y2label 'requests/s'
set y2tics
set ytics nomirror
plot 'docs/trace/trace_plot.dat' using 1:5 with linespoints title 'Lookup p50', '' using 1:6 with linespoints title 'Lookup p99', '' using 1:7 with linespoints title 'Fetch p50', '' using 1:8 with linespoints title 'Fetch p99', '' using 1:9 axes x1y2 with linespoints lw 3 title 'requests/s'
