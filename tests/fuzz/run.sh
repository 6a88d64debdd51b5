#!/bin/sh
# Run the libFuzzer targets (tests/fuzz/fuzz_*.c) for SECONDS each.
#   tests/fuzz/run.sh BUILD_FUZZ_DIR SECONDS TARGET...
# Each target starts from its committed seeds (tests/fuzz/corpus/<target>/)
# plus what earlier runs found (BUILD_FUZZ_DIR/corpus/<target>/, where new
# interesting inputs go: the committed corpus is never written). A crash,
# leak, sanitizer report or failed check fails the target; the input is
# saved as BUILD_FUZZ_DIR/crashes/<target>-crash-<sha1> (replay it with
# `BUILD_FUZZ_DIR/fuzz_<target> FILE`). Every target runs; the exit status
# is 1 when any failed.
set -u

dir=$1
secs=$2
shift 2
here=$(dirname "$0")
failed=""

mkdir -p "$dir/crashes"
for t in "$@"; do
	mkdir -p "$dir/corpus/$t"
	dict=""
	[ -f "$here/$t.dict" ] && dict="-dict=$here/$t.dict"
	log="$dir/$t.log"
	echo "  FUZZ    $t (${secs}s)"
	# CRUDDUR_DISABLED: the core's constructor, if linked in, stays idle.
	# -timeout: one input taking 10 s is a hang (inputs are <= max_len).
	# -rss_limit_mb: the default 2 GB, stated; two targets never run at once.
	if CRUDDUR_DISABLED=1 "$dir/fuzz_$t" $dict -max_total_time="$secs" -timeout=10 \
		-max_len=8192 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$dir/crashes/$t-" \
		"$dir/corpus/$t" "$here/corpus/$t" >"$log" 2>&1; then
		awk '/DONE/ { for (i = 1; i <= NF; i++) if ($i == "cov:" || $i == "corp:") v[$i] = $(i + 1) }
		     /^stat::number_of_executed_units:/ { runs = $2 }
		     /^stat::new_units_added:/ { added = $2 }
		     END { printf "          %s runs, coverage %s, corpus %s, %s new inputs\n",
			   runs, v["cov:"], v["corp:"], added }' "$log"
	else
		echo "  FAILED  $t: see $log and $dir/crashes/" >&2
		grep -E 'ERROR|fuzz_[a-z0-9]+: |SUMMARY|Test unit written' "$log" | head -20 >&2
		failed="$failed $t"
	fi
done
if [ -n "$failed" ]; then
	echo "fuzz: failed:$failed" >&2
	exit 1
fi
