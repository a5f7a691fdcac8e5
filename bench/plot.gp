# bench/plot.gp — called by bench/run:
#   gnuplot -e "dir='…'; s1='100k'; s2='1M'; out='….png'; title='…'" bench/plot.gp
set terminal pngcairo size 1500,1050 font "DejaVu Sans,11" noenhanced
set output out
max(a, b) = a > b ? a : b
set multiplot layout 2,2 title title font ",14"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set grid ytics
set key top left opaque box
set xtics rotate by -25 scale 0
set yrange [0:*]
set offsets 0, 0, graph 0.35, 0

set title sprintf("buzz.req (RLS) vs. hand-written SQL at %s events: median µs (label: req / hand)", s2)
set ylabel "µs"
plot dir.'/req_'.s2.'.dat' using 2:xtic(1) title "buzz.req (relay role, RLS)" lc rgb "#d95f02", \
     '' using 3 title "hand-written, community_id = $1" lc rgb "#1b9e77", \
     '' using 4 title "req's own statement, no RLS" lc rgb "#7570b3", \
     '' using 0:(max(max($2, $3), $4)):(sprintf("%.2f", $2 / $3)) with labels offset 0,0.8 notitle

set title sprintf("Growth: the same filters at %s and %s events (median µs)", s1, s2)
plot dir.'/growth.dat' using 2:xtic(1) title "buzz.req ".s1 lc rgb "#fdae6b", \
     '' using 3 title "buzz.req ".s2 lc rgb "#d95f02", \
     '' using 4 title "hand ".s1 lc rgb "#a1d99b", \
     '' using 5 title "hand ".s2 lc rgb "#1b9e77"

stats dir.'/publish.dat' using 2 every ::0::0 nooutput
buzz = STATS_max
stats dir.'/publish.dat' using 2 every ::1::1 nooutput
plain = STATS_max
set title sprintf("Publish throughput, 2 connections: ratio %.2f (goal ≥ 0.70)", buzz / plain)
set ylabel "events/s"
set xtics norotate
set style histogram clustered gap 3
unset key
plot dir.'/publish.dat' using 2:xtic(1) lc rgb "#386cb0", \
     '' using 0:2:(sprintf("%.0f", $2)) with labels offset 0,1

set title "buzz.enter with 1 vs 100,000 communities: µs per call (dashed: DESIGN's 5 µs)"
set ylabel "µs"
set xtics rotate by -15
set style histogram clustered gap 1
set key top right opaque box
set arrow 1 from graph 0, first 5 to graph 1, first 5 nohead dt 2 lw 1.5 lc rgb "#555555"
plot dir.'/enter.dat' using 2:xtic(1) title "1 community" lc rgb "#66c2a5", \
     '' using 3 title "100,000 communities" lc rgb "#fc8d62"
unset multiplot
