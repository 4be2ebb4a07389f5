# The soak figure (scripts/soak.sh): four panels over the run's minutes, from the driver's
# CSV (one row per 10 s). Called as
#   gnuplot -e "csv='soak.csv'; png='soak.png'; title='...'; have_entries=0" scripts/soak/plot.gp
# Columns: 1 t_s, 2 rss_kb, 3 fds, 4 threads, 5 replay_entries, 6 token_cache_entries,
# 7 requests, 8 rps, 9 p50_ms, 10 p99_ms, 11 max_ms, 12 unexpected, 13 errors, 14 skipped.
# The entry columns are empty when tollgate's /metrics does not export those gauges.

set datafile separator ","
set datafile missing ""
set terminal pngcairo size 1200,1300 font "sans,10" noenhanced
set output png
set key top left horizontal opaque
# Headroom above the data for the key.
set offsets 0, 0, graph 0.25, 0
set grid
set xlabel "minutes"
set xrange [0:*]
set lmargin 12
set rmargin 12

# have_entries=1 (set by the caller) when the entry gauges were sampled at all.
if (!exists("have_entries")) have_entries = 0

set multiplot layout 4,1 title title font "sans,13"

set title "tollgate memory and descriptors"
set ylabel "RSS (MB)"
set y2label "open fds, threads"
set ytics nomirror
set y2tics
set yrange [0:*]
set y2range [0:*]
plot csv using ($1/60):($2/1024) skip 1 with lines lw 2 title "RSS (MB)", \
     csv using ($1/60):3 skip 1 axes x1y2 with lines lw 2 title "open fds", \
     csv using ($1/60):4 skip 1 axes x1y2 with lines dt 2 title "threads"
unset y2tics
unset y2label
# Panels without a right axis: a fixed range, nothing to autoscale.
set y2range [0:1]

set title "entries held"
set ylabel "entries"
if (have_entries) {
    plot csv using ($1/60):5 skip 1 with lines lw 2 title "replay store", \
         csv using ($1/60):6 skip 1 with lines lw 2 title "token cache"
} else {
    set label 1 "tollgate_replay_store_entries / tollgate_token_cache_entries not exported by /metrics: not sampled" at graph 0.5, 0.5 center
    set yrange [0:1]
    plot csv using ($1/60):(0) skip 1 with lines lc rgb "#cccccc" notitle
    unset label 1
    set yrange [0:*]
}

set title "latency at the client, per 10 s window"
set ylabel "ms"
set logscale y
set yrange [*:*]
plot csv using ($1/60):9 skip 1 with lines lw 2 title "p50", \
     csv using ($1/60):10 skip 1 with lines lw 2 title "p99", \
     csv using ($1/60):11 skip 1 with points pt 7 ps 0.4 title "max"
unset logscale y

set title "traffic"
set ylabel "requests/s"
set y2label "per window"
set y2tics
set yrange [0:*]
stats csv using ($12 + $13) skip 1 nooutput
set y2range [0:(STATS_max > 0 ? STATS_max * 1.25 : 1)]
plot csv using ($1/60):8 skip 1 with lines lw 2 title "requests/s", \
     csv using ($1/60):12 skip 1 axes x1y2 with impulses lw 2 title "unexpected answers", \
     csv using ($1/60):13 skip 1 axes x1y2 with impulses lw 2 title "failed requests"

unset multiplot
