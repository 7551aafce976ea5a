set terminal pngcairo size 1000,560 font 'sans,11'
set output 'docs/bench/kvbench_bars.png'
set title 'kvbench: 2 MiB blocks, each path next to its references (medians)'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set ylabel 'GB/s'
set yrange [0:*]
set grid ytics
set xtics rotate by -30 scale 0
set key top right
plot 'docs/bench/kvbench_bars.dat' using 2:xtic(1) title '1 stream', '' using 3 title '4 streams'
