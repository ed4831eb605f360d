#!/usr/bin/env bash
# Sharded vs unsharded synthesis of the same subjects (issue 18): same files, same cohort table?
#   bash benchmarks/shard_comparison.sh COHORT N_SUBJECTS OUT   (e.g. runs/heldout-v2 4 runs/shards)
set -euo pipefail
cohort=$1; n=$2; out=$3
mkdir -p "$out/t1s"
for sub in $(ls -d "$cohort"/sub-* | head -n "$n"); do
    id=$(basename "$sub"); cp "$sub/anat/${id}_T1w.nii.gz" "$out/t1s/"
done
start=$(date +%s.%N)
OMP_NUM_THREADS=1 mri2pet synthesize "$out/t1s" -o "$out/whole" >"$out/whole.log" 2>&1 || true
middle=$(date +%s.%N)
seq 1 2 | xargs -P 2 -I{} sh -c "OMP_NUM_THREADS=1 mri2pet synthesize $out/t1s -o $out/sharded --shard {}/2 >$out/shard-{}.log 2>&1 || true"
mri2pet merge "$out/sharded" >"$out/merge.log" 2>&1 || true
end=$(date +%s.%N)
files() { (cd "$1" && find . -type f -not -path "./shards/*" | sort); }
echo "unsharded: $(echo "$middle - $start" | bc) s; 2 shards (xargs -P 2) + merge: $(echo "$end - $middle" | bc) s"
if diff <(files "$out/whole") <(files "$out/sharded") >/dev/null; then echo "same file names: yes"; else echo "same file names: NO"; fi
for f in cohort_roi.csv batch_summary.json batch_failures.tsv; do
    cmp -s "$out/whole/$f" "$out/sharded/$f" && echo "$f identical" || echo "$f DIFFERS"
done
same=0; total=0
for pet in $(cd "$out/whole" && find . -name "*_pet.nii.gz"); do
    total=$((total + 1)); cmp -s "$out/whole/$pet" "$out/sharded/$pet" && same=$((same + 1))
done
echo "PET files byte-identical: $same of $total"
