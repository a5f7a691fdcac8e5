# bench/relay.gp — called by bench/relay: gnuplot -e "dir='…'; out='….png'" bench/relay.gp
set terminal pngcairo size 1400,520 font "DejaVu Sans,11" noenhanced
set output out
set multiplot layout 1,2 title "buzz-relay (extension, 10 communities) vs nostr-rs-relay (single tenant, SQLite), same machine, same load generator" font ",13"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set grid ytics
set key top left opaque box
set yrange [0:*]

set title "Accepted events/s (median over rounds) by publishing clients"
set xlabel "publishing clients"
plot dir.'/publish.dat' using 2:xtic(1) title "buzz-relay" lc rgb "#d95f02", \
     '' using 3 title "nostr-rs-relay" lc rgb "#1b9e77", \
     '' using 0:($2 > $3 ? $2 : $3):(sprintf("%.2f", $2 / $3)) with labels offset 0,0.8 notitle

set title "Publish → delivery latency, ms (p50 solid, p99 light) by live subscribers"
set xlabel "subscribers"
set logscale y
set yrange [*:*]
plot dir.'/delivery.dat' using 3:xtic(1) title "buzz-relay p99" lc rgb "#fdae6b", \
     '' using 2 title "buzz-relay p50" lc rgb "#d95f02", \
     '' using 5 title "nostr-rs-relay p99" lc rgb "#a1d99b", \
     '' using 4 title "nostr-rs-relay p50" lc rgb "#1b9e77"
unset multiplot
